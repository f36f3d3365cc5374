// `airlock admin rotate-token`, as run in docs/operations.md ("Rotate the admin token"): through a running daemon
// with the current token, and --offline with the vault passphrase for an operator who lost it. Real processes
// on SQLite and on two instances sharing one PostgreSQL store.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ADMIN_TOKEN_STALENESS_MS } from '../../server/src/admin-credential.ts';
import { httpJson, prepareDaemonData, provisionRemoteAgent, readWholeAudit, type DaemonData } from '../../server/src/testing/processes.ts';
import { cliEnv, runCli, startDaemon, transcript, type Daemon } from './testing/cli-process.ts';

const cleanups: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

async function data(store: 'sqlite' | 'postgres' | { url: string }): Promise<DaemonData> {
  const d = await prepareDaemonData(store);
  cleanups.push(() => d.cleanup());
  return d;
}

async function daemon(d: DaemonData): Promise<Daemon> {
  const started = await startDaemon(cliEnv({ AIRLOCK_DATA_DIR: d.dataDir, AIRLOCK_STORE: d.storeUrl, AIRLOCK_PASSPHRASE: d.passphrase, AIRLOCK_HOST: '127.0.0.1' }));
  cleanups.push(() => started.stop());
  return started;
}

const agents = (url: string, token: string) => httpJson(url, 'GET', '/v1/agents', { token });

/** Polls until `token` is refused at `url`; the time from `since` to the last request that was still admitted. */
async function refusedWithinBound(url: string, token: string, since: number): Promise<number> {
  let lastAdmitted = 0;
  while (performance.now() - since < ADMIN_TOKEN_STALENESS_MS + 5_000) {
    const startedAt = performance.now() - since;
    const res = await agents(url, token);
    if (res.status === 401) {
      assert.equal(res.body.error.code, 'unauthenticated');
      return lastAdmitted;
    }
    assert.equal(res.status, 200);
    lastAdmitted = startedAt;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail('the old token was still admitted well after the bound');
}

describe('airlock admin rotate-token', () => {
  test('sqlite: through the daemon with the current token, then --offline with the passphrase; each audited, each old token refused', async () => {
    const d = await data('sqlite');
    const server = await daemon(d);
    const env = (token?: string) => cliEnv({ AIRLOCK_URL: server.url, AIRLOCK_DATA_DIR: d.dataDir, AIRLOCK_STORE: d.storeUrl, ...(token ? { AIRLOCK_ADMIN_TOKEN: token } : {}) });

    // A session token cannot rotate it: the CLI refuses it as no admin token before sending it, without quoting it
    // (the daemon's own 403 forbidden for a session token is tested over HTTP in admin-token.http.test.ts).
    const { token: session } = await provisionRemoteAgent(server.url, d.adminToken);
    const bySession = await runCli(['admin', 'rotate-token'], env(session));
    assert.equal(bySession.code, 1);
    assert.match(bySession.stderr, /^error \[unauthenticated\]: The admin token does not look like one/m);
    assert.ok(!bySession.stderr.includes(session.split('.')[1]!), 'the token is not quoted');

    const online = await runCli(['admin', 'rotate-token'], env(d.adminToken));
    assert.equal(online.code, 0, online.stderr);
    const first = /export AIRLOCK_ADMIN_TOKEN=(adm_\S+)/.exec(online.stdout)![1]!;
    assert.match(online.stdout, /refused from now on by this daemon, and by every other instance on the same store within 5 s/);
    const refused = await agents(server.url, d.adminToken);
    assert.deepEqual([refused.status, refused.body.error.code], [401, 'unauthenticated']);
    assert.equal((await agents(server.url, first)).status, 200);
    // The replaced token cannot rotate again.
    assert.match((await runCli(['admin', 'rotate-token'], env(d.adminToken))).stderr, /^error \[unauthenticated\]/m);

    // Lost it: --offline, against the store, with the vault passphrase. A wrong passphrase changes nothing.
    const wrong = join(d.dataDir, 'wrong-pass');
    writeFileSync(wrong, 'not the passphrase at all', { mode: 0o600 });
    const refusedOffline = await runCli(['admin', 'rotate-token', '--offline', '--passphrase-file', wrong], env());
    assert.equal(refusedOffline.code, 1);
    assert.match(refusedOffline.stderr, /^error \[vault_wrong_passphrase\]/m);
    assert.equal((await agents(server.url, first)).status, 200);
    const pass = join(d.dataDir, 'pass');
    writeFileSync(pass, d.passphrase, { mode: 0o600 });
    const offline = await runCli(['admin', 'rotate-token', '--offline', '--passphrase-file', pass, '--json'], env());
    assert.equal(offline.code, 0, offline.stderr);
    const rotation = JSON.parse(offline.stdout);
    assert.match(rotation.token, /^adm_/);
    assert.equal(rotation.otherInstancesWithinSeconds, 5);
    const since = performance.now();
    // The running daemon did not rotate it: it takes the new token at once and drops the old within the bound.
    assert.equal((await agents(server.url, rotation.token)).status, 200);
    assert.ok((await refusedWithinBound(server.url, first, since)) <= ADMIN_TOKEN_STALENESS_MS);

    const entries = await readWholeAudit(server.url, rotation.token, 'type=admin.token_rotated');
    assert.deepEqual(entries.map((e) => e.data.via), ['api', 'offline']);
    assert.ok(entries.every((e) => e.actor === 'operator'));
    const whole = JSON.stringify(await readWholeAudit(server.url, rotation.token));
    for (const t of [d.adminToken, first, rotation.token]) assert.ok(!whole.includes(t.slice(4)), 'no token in the audit log');
    assert.ok(!transcript.join('\n').includes(d.passphrase), 'the passphrase was never printed');
    assert.equal((await httpJson(server.url, 'POST', '/v1/audit/verify', { token: rotation.token })).body.ok, true);
  });

  test('postgres: rotated on one instance, the old token is refused by the other within the bound; the new one works on both', async () => {
    const d = await data('postgres');
    const [a, b] = [await daemon(d), await daemon(d)];
    assert.equal((await agents(b.url, d.adminToken)).status, 200);
    const rotated = await runCli(['admin', 'rotate-token', '--json'], cliEnv({ AIRLOCK_URL: a.url, AIRLOCK_ADMIN_TOKEN: d.adminToken }));
    assert.equal(rotated.code, 0, rotated.stderr);
    const since = performance.now();
    const { token } = JSON.parse(rotated.stdout);
    assert.equal((await agents(a.url, d.adminToken)).status, 401, 'refused at once where it was rotated');
    assert.ok((await refusedWithinBound(b.url, d.adminToken, since)) <= ADMIN_TOKEN_STALENESS_MS);
    assert.equal((await agents(a.url, token)).status, 200);
    assert.equal((await agents(b.url, token)).status, 200);
  });
});
