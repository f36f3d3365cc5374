// Secrets in the settings never reach the terminal: a store URL's password (in the authority, with an unencoded @,
// or as ?password=), a relay's access token, an admin token holding a control character, and a daemon URL with
// user:pass@. Everything through the `airlock` command as child processes, as an operator's shell runs it.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { PG_URL } from '../../server/src/testing/harness.ts';
import { cliEnv, runCli, startDaemon, type CliResult, type Daemon } from './testing/cli-process.ts';

const PASSPHRASE = 'secrets redaction passphrase 7e21';
const skipPg = process.env.AIRLOCK_SKIP_PG === '1' ? 'AIRLOCK_SKIP_PG=1' : false;
const dir = mkdtempSync(join(tmpdir(), 'airlock-secrets-redaction-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Fails with the whole output when `secret` (or any part of it) shows anywhere in it. */
function assertHidden(output: string, ...secrets: string[]): void {
  for (const s of secrets) assert.ok(!output.includes(s), `"${s}" was printed:\n${output}`);
}

const text = (r: CliResult) => `${r.stdout}${r.stderr}`;

async function waitFor(daemon: Daemon, part: string, hidden: string, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!daemon.output().includes(part)) {
    assertHidden(daemon.output(), hidden);
    if (Date.now() > end) assert.fail(`the daemon never printed "${part}":\n${daemon.output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('a PostgreSQL store URL with a password: `airlock init` and the start banner print it redacted', { skip: skipPg }, () => {
  const pgBase = new URL(PG_URL);
  const user = pgBase.username || 'postgres';
  const schemas: string[] = [];
  after(async () => {
    const client = new pg.Client({ connectionString: PG_URL });
    await client.connect();
    for (const s of schemas) await client.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`);
    await client.end();
  });

  // The test server trusts local connections: the password is ignored, so init and start succeed with it there.
  const cases = [
    { name: 'as ?password= (node-postgres reads it as the password)', secrets: ['PgQuerySecret123'], url: (schema: string) => `${pgBase.protocol}//${user}@${pgBase.host}${pgBase.pathname}?schema=${schema}&password=PgQuerySecret123` },
    { name: 'with an unencoded @ in it', secrets: ['Pa@ssTail987', 'ssTail987'], url: (schema: string) => `${pgBase.protocol}//${user}:Pa@ssTail987@${pgBase.host}${pgBase.pathname}?schema=${schema}` },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      const schema = `airlock_redact_${randomBytes(4).toString('hex')}`;
      schemas.push(schema);
      const dataDir = join(dir, schema);
      const env = cliEnv({ AIRLOCK_DATA_DIR: dataDir, AIRLOCK_PASSPHRASE: PASSPHRASE, AIRLOCK_STORE: c.url(schema) });
      const expected = `${pgBase.protocol}//***@${pgBase.host}${pgBase.pathname}?schema=${schema}`;

      const init = await runCli(['init'], env);
      assert.equal(init.code, 0, text(init));
      assertHidden(text(init), ...c.secrets);
      assert.ok(init.stdout.split('\n').includes(`Store: ${expected}`), init.stdout);

      const daemon = await startDaemon(env);
      try {
        assert.ok(daemon.output().includes(`(store: ${expected}, `), daemon.output());
      } finally {
        await daemon.stop();
      }
      assertHidden(daemon.output(), ...c.secrets);
    });
  }
});

describe('relay URLs holding a token: the daemon\'s log lines name the relay by host only', () => {
  const TOKEN = 'RelayTokSecret456';
  const relay = `ws://127.0.0.1:1/?token=${TOKEN}`;

  test('AIRLOCK_NOSTR_RELAYS: the bunker\'s "unreachable" and "reconnect failed" lines', async () => {
    const dataDir = join(dir, 'nostr');
    const daemon = await startDaemon(cliEnv({ AIRLOCK_DATA_DIR: dataDir, AIRLOCK_PASSPHRASE: PASSPHRASE, AIRLOCK_NOSTR_RELAYS: relay }));
    try {
      await waitFor(daemon, 'relay ws://127.0.0.1:1 unreachable at start; retrying', TOKEN);
      await waitFor(daemon, 'relay ws://127.0.0.1:1: reconnect failed; retrying', TOKEN);
    } finally {
      await daemon.stop();
    }
    assertHidden(daemon.output(), TOKEN, 'token=');
  });

  test('an NWC connection string whose relay is down: start fails, naming the relay by host', async () => {
    const dataDir = join(dir, 'nwc');
    const nwcFile = join(dir, 'nwc-url');
    const hex = () => randomBytes(32).toString('hex');
    // Any x-only point will do for a wallet that is never reached: the generator's x coordinate.
    const walletPubkey = '79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798';
    writeFileSync(nwcFile, `nostr+walletconnect://${walletPubkey}?relay=${encodeURIComponent(relay)}&secret=${hex()}\n`, { mode: 0o600 });
    const env = cliEnv({ AIRLOCK_DATA_DIR: dataDir, AIRLOCK_PASSPHRASE: PASSPHRASE, AIRLOCK_LIGHTNING_BACKEND: 'nwc', AIRLOCK_LIGHTNING_NETWORK: 'regtest', AIRLOCK_NWC_URL_FILE: nwcFile });
    const failed = await startDaemon(env).then(
      async (d) => {
        await d.stop();
        return assert.fail(`started with no reachable NWC relay:\n${d.output()}`);
      },
      (e: { output?: string }) => e.output ?? String(e),
    );
    assert.ok(failed.includes('nwc: relay ws://127.0.0.1:1 unreachable at start; retrying'), failed);
    assertHidden(failed, TOKEN, 'token=');
  });
});

describe('an admin token with a control character in it is refused unquoted', () => {
  const secretPart = 'TokSecret789';
  // A line break inside: fetch refuses the header quoting it whole ("Headers.append: "Bearer adm_…" is an invalid
  // header value."), and the CLI printed that. Another control character: fetch fails, and the CLI said the
  // daemon was unreachable.
  const badTokens = [`adm_${'A'.repeat(20)}\n${secretPart}${'B'.repeat(10)}`, `adm_${'A'.repeat(20)}\u0001${secretPart}${'B'.repeat(10)}`];

  test('from AIRLOCK_ADMIN_TOKEN and from --token, plain and --json', async () => {
    for (const badToken of badTokens) {
      for (const [args, env] of [
        [['agent', 'list'], { AIRLOCK_ADMIN_TOKEN: badToken }],
        [['agent', 'list', '--json'], { AIRLOCK_ADMIN_TOKEN: badToken }],
        [['agent', 'list', '--token', badToken], {}],
      ] as const) {
        const r = await runCli([...args], cliEnv({ AIRLOCK_URL: 'http://127.0.0.1:1', ...env }));
        assert.equal(r.code, 1, text(r));
        assertHidden(text(r), secretPart, '\u0001');
        if ((args as readonly string[]).includes('--json')) assert.equal(JSON.parse(r.stderr).error.code, 'unauthenticated', r.stderr);
        else assert.match(r.stderr, /^error \[unauthenticated\]: The admin token does not look like one/);
      }
    }
  });
});

describe('a daemon URL with user:pass@ is refused unquoted', () => {
  const secret = 'UrlPassSecret321';
  const url = `http://operator:${secret}@127.0.0.1:1`;
  const adminToken = `adm_${'A'.repeat(43)}`;

  test('a command that calls the daemon, from AIRLOCK_URL and from --url', async () => {
    for (const [args, env] of [
      [['agent', 'list'], { AIRLOCK_URL: url }],
      [['agent', 'list', '--json'], { AIRLOCK_URL: url }],
      [['agent', 'list', '--url', url], {}],
    ] as const) {
      const r = await runCli([...args], cliEnv({ AIRLOCK_ADMIN_TOKEN: adminToken, ...env }));
      assert.equal(r.code, 1, text(r));
      assertHidden(text(r), secret);
      // The CLI's usual error output (an uncaught error would print a stack trace instead).
      if ((args as readonly string[]).includes('--json')) assert.equal(JSON.parse(r.stderr).error.code, 'invalid_request', r.stderr);
      else assert.match(r.stderr, /^error \[invalid_request\]: The daemon URL carries a user name or password[^\n]*\n\s+hint: /);
    }
  });

  test('`airlock status`, which printed the URL it checked', async () => {
    const r = await runCli(['status'], cliEnv({ AIRLOCK_URL: url, AIRLOCK_DATA_DIR: join(dir, 'status') }));
    assert.equal(r.code, 1, text(r));
    assertHidden(text(r), secret);
    assert.match(r.stderr, /^error \[invalid_request\]: The daemon URL carries a user name or password/);
  });
});
