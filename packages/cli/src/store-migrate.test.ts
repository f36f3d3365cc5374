// The move a new operator makes: a first run on the embedded SQLite store, then PostgreSQL. Everything
// through the `airlock` command as child processes and real HTTP; PostgreSQL in a fresh schema.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { stringify as toYaml } from 'yaml';
import { ALICE, MALLORY, PG_URL, USDC_ASSET, usdcPolicy, usdcTransfer } from '../../server/src/testing/harness.ts';
import { cliEnv, runCli, startDaemon, type CliResult, type Daemon } from './testing/cli-process.ts';

const PASSPHRASE = 'store migrate passphrase 51c0';
const skip = process.env.AIRLOCK_SKIP_PG === '1' ? 'AIRLOCK_SKIP_PG=1' : false;

describe('airlock store migrate: SQLite first run, then PostgreSQL', { skip }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'airlock-store-migrate-'));
  const dataDir = join(dir, 'data');
  const sqliteUrl = `sqlite:${join(dataDir, 'airlock.db')}`;
  const schema = `airlock_migrate_${randomBytes(4).toString('hex')}`;
  const otherSchema = `${schema}_full`;
  const pgUrl = `${PG_URL}?schema=${schema}`;
  let adminToken = '';
  let daemon: Daemon | undefined;
  const env = (extra: Record<string, string> = {}) => cliEnv({ AIRLOCK_DATA_DIR: dataDir, AIRLOCK_PASSPHRASE: PASSPHRASE, AIRLOCK_URL: daemon?.url, AIRLOCK_ADMIN_TOKEN: adminToken, ...extra });
  const airlock = (...args: string[]) => runCli(args, env());
  const ok = (r: CliResult) => {
    // The daemon's own output too: a call that could not reach it says why only from both sides.
    assert.equal(r.code, 0, `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}\ndaemon output (last 4 KB):\n${daemon?.output().slice(-4096) ?? '(no daemon)'}`);
    return r.stdout;
  };
  const sign = async (token: string, body: unknown) => {
    const res = await fetch(`${daemon!.url}/v1/sign/transaction`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return { status: res.status, body: (await res.json()) as any };
  };
  const policyV1 = join(dir, 'alice-v1.yaml');
  const policyV2 = join(dir, 'alice-v2.yaml');
  writeFileSync(policyV1, `# alice: partners only, comments kept\n${toYaml(usdcPolicy())}`);
  writeFileSync(policyV2, `# alice v2: tighter per request\n${toYaml(usdcPolicy({ perRequest: '6000000' }))}`);

  // What the SQLite deployment held, to compare after the move.
  let agentsBefore: { id: string; name: string; address: string; accountIndex: number }[] = [];
  let sessionToken = '';
  let auditBefore = '';

  after(async () => {
    await daemon?.stop();
    const client = new pg.Client({ connectionString: PG_URL });
    await client.connect();
    for (const s of [schema, otherSchema]) await client.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`);
    await client.end();
    rmSync(dir, { recursive: true, force: true });
  });

  before(async () => {
    // The first run, as `npm start` under a service manager does it: no terminal, so the secrets go to a file.
    daemon = await startDaemon(env());
    const secrets = readFileSync(join(dataDir, 'first-run-secrets.txt'), 'utf8');
    // The same line the README and every hint use, ready to paste.
    adminToken = /^export AIRLOCK_ADMIN_TOKEN=(adm_[A-Za-z0-9_-]+)$/m.exec(secrets)?.[1] ?? '';
    assert.ok(adminToken, secrets);
  });

  test('on SQLite: agents, two policy versions, a session that spends, signatures and a denial', async () => {
    ok(await airlock('agent', 'create', '--name', 'alice'));
    ok(await airlock('agent', 'create', '--name', 'bob'));
    ok(await airlock('policy', 'set', 'alice', policyV1));
    ok(await airlock('policy', 'set', 'alice', policyV2));
    sessionToken = JSON.parse(ok(await airlock('session', 'issue', 'alice', '--actions', 'evm.transaction', '--budget', `${USDC_ASSET}:8000000:24h`, '--json'))).token;
    assert.equal((await sign(sessionToken, usdcTransfer(ALICE, 5_000_000n))).status, 200);
    assert.equal((await sign(sessionToken, usdcTransfer(MALLORY, 1n, 1))).status, 403);
    agentsBefore = JSON.parse(ok(await airlock('agent', 'list', '--json'))).agents;
    auditBefore = ok(await airlock('audit', 'verify'));
    assert.match(auditBefore, /^OK: /);
    assert.equal(await daemon!.stop(), 0);
    daemon = undefined;
  });

  test('pointed at an empty PostgreSQL store, start refuses and names `airlock store migrate`, not `airlock init`', async () => {
    const err = await startDaemon(env({ AIRLOCK_STORE: pgUrl })).then(
      (d) => (daemon = d) && assert.fail('the daemon started on an empty store'),
      (e: { code: number; output: string }) => e,
    );
    assert.equal(err.code, 1);
    assert.match(err.output, /error \[vault_missing\]: This store is empty, but the vault at .*vault\.json belongs to another store\./);
    assert.match(err.output, /hint: Moving from SQLite to PostgreSQL\? .*airlock store migrate --from sqlite:/);
    assert.doesNotMatch(err.output, /Run `airlock init`/);
  });

  test('store migrate copies everything into that (now migrated, still empty) schema and verifies the audit log there', async () => {
    const r = await airlock('store', 'migrate', '--from', sqliteUrl, '--to', pgUrl);
    const out = ok(r);
    assert.match(out, /^TABLE\s+ROWS$/m);
    for (const t of ['agents', 'policies', 'sessions', 'ledger', 'audit_entries', 'audit_tree_nodes', 'meta']) assert.match(out, new RegExp(`^${t}\\s+[1-9]\\d*$`, 'm'), t);
    const root = /root ([0-9a-f]{16})…/.exec(auditBefore)![1]!;
    assert.match(out, new RegExp(`^OK: copied to .*audit log verified there: \\d+ entries, \\d+ signed tree heads, root ${root}… \\(same as the source\\)$`, 'm'));
  });

  test('a second migrate into the same target refuses (not empty) and changes nothing; bad URLs are refused', async () => {
    const [again, wrongWay, missing] = await Promise.all([
      airlock('store', 'migrate', '--from', sqliteUrl, '--to', pgUrl),
      airlock('store', 'migrate', '--from', pgUrl, '--to', pgUrl),
      airlock('store', 'migrate', '--from', `sqlite:${join(dir, 'nope.db')}`, '--to', `${PG_URL}?schema=${otherSchema}`),
    ]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /^error \[conflict\]: The target store is not empty \(rows in .*agents.*\); nothing was copied\./m);
    assert.equal(wrongWay.code, 1);
    assert.match(wrongWay.stderr, /error \[invalid_request\]: --from must be a SQLite store URL/);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /error \[not_found\]: No SQLite store at the --from path\./);
    const usage = await airlock('store', 'migrate', '--to', pgUrl);
    assert.equal(usage.code, 2);
  });

  test('started on PostgreSQL: same agents and addresses, policy history, spent budget still counts, audit verifies, new signatures work', async () => {
    daemon = await startDaemon(env({ AIRLOCK_STORE: pgUrl }));
    assert.match(daemon.output(), /store: postgres/);
    const agentsAfter = JSON.parse(ok(await airlock('agent', 'list', '--json'))).agents;
    const key = (a: { id: string; name: string; address: string; accountIndex: number }) => `${a.id} ${a.name} ${a.address} ${a.accountIndex}`;
    assert.deepEqual(agentsAfter.map(key).sort(), agentsBefore.map(key).sort());

    const versions = ok(await airlock('policy', 'versions', 'alice')).trim().split('\n');
    assert.deepEqual(versions.slice(1).map((l) => l.split(/\s+/)[0]), ['2', '1']);
    assert.match(ok(await airlock('policy', 'show', 'alice', '--version', '1')), /^# alice: partners only, comments kept$/m);

    // 5 of the session's 8 USDC were spent on SQLite: 4 more exceed it, 1 more fits.
    const over = await sign(sessionToken, usdcTransfer(ALICE, 4_000_000n, 2));
    assert.equal(over.status, 403, JSON.stringify(over.body));
    assert.equal(over.body.error.violations[0].code, 'budget_exceeded');
    assert.equal(over.body.error.violations[0].used, '5000000');
    const fresh = await sign(sessionToken, usdcTransfer(ALICE, 1_000_000n, 3));
    assert.equal(fresh.status, 200, JSON.stringify(fresh.body));
    assert.match(fresh.body.signedTransaction, /^0x02/);

    // A new agent takes the next account index: none is reused after the move.
    const [carol] = JSON.parse(ok(await airlock('agent', 'create', '--name', 'carol', '--json'))).agents;
    assert.equal(carol.accountIndex, Math.max(...agentsBefore.map((a) => a.accountIndex)) + 1);
    assert.ok(!agentsBefore.some((a) => a.address === carol.address));

    assert.match(ok(await airlock('audit', 'verify')), /^OK: /);
    assert.equal(await daemon.stop(), 0);
    daemon = undefined;
    assert.match(ok(await runCli(['audit', 'verify', '--offline', '--store', pgUrl], env())), /^OK: /);
  });

  test('a failed start leaves an empty schema that a later `init` (a new deployment) accepts', async () => {
    const url = `${PG_URL}?schema=${otherSchema}`;
    const err = await startDaemon(env({ AIRLOCK_STORE: url })).then(
      async (d) => (await d.stop(), assert.fail('the daemon started on an empty store')),
      (e: { output: string }) => e,
    );
    assert.match(err.output, /error \[vault_missing\]/);
    const r = await runCli(['init', '--data-dir', join(dir, 'fresh'), '--store', url], cliEnv({ AIRLOCK_PASSPHRASE: PASSPHRASE }));
    assert.match(ok(r), /^\s*export AIRLOCK_ADMIN_TOKEN=adm_/m);
  });

  test('the SQLite file is left as it was (a backup), owner-only', () => {
    assert.equal(statSync(join(dataDir, 'airlock.db')).mode & 0o777, 0o600);
  });
});
