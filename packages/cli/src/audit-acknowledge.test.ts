// `airlock audit acknowledge` as an operator runs it after an audit integrity alert (docs/operations.md, "Audit
// integrity alert", step 3): a real daemon on a temporary SQLite data directory, its log truncated below the
// anchor by hand, then the command. What the operator reads must say where the log was re-anchored: the tree
// size, root and generation the API answers (AuditAcknowledgement: anchor {generation, treeSize, rootHash}).
// Found by a docs review: the CLI read `anchor.seq`, which the API never sends, and printed "anchored at entry
// undefined".
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { DatabaseSync } from 'node:sqlite';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cliEnv, runCli, startDaemon, type Daemon } from './testing/cli-process.ts';

const PASSPHRASE = 'acknowledge passphrase 7c1e0a';

/** Polls `check` every 200 ms until it returns something, for up to 20 s. */
async function until<T>(what: string, check: () => Promise<T | undefined> | T | undefined): Promise<T> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const found = await check();
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('airlock audit acknowledge after a truncated log', () => {
  const dir = mkdtempSync(join(tmpdir(), 'airlock-audit-ack-'));
  const dataDir = join(dir, 'data');
  const dbPath = join(dataDir, 'airlock.db');
  let daemon: Daemon;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    daemon = await startDaemon(cliEnv({ AIRLOCK_DATA_DIR: dataDir, AIRLOCK_PASSPHRASE: PASSPHRASE, AIRLOCK_CHECKPOINT_INTERVAL: '1s' }));
    const token = /export AIRLOCK_ADMIN_TOKEN=(adm_\S+)/.exec(readFileSync(join(dataDir, 'first-run-secrets.txt'), 'utf8'))![1]!;
    env = cliEnv({ AIRLOCK_URL: daemon.url, AIRLOCK_ADMIN_TOKEN: token, AIRLOCK_DATA_DIR: dataDir });
  });
  after(async () => {
    await daemon?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('prints the tree size, root and generation it re-anchored at and the anchor given up (no "undefined")', async () => {
    for (let i = 0; i < 3; i++) assert.equal((await runCli(['agent', 'create', '--name', `ack-${i}`], env)).code, 0);
    // A signed head over every entry so far: the anchor the truncation then goes below.
    const db = new DatabaseSync(dbPath);
    try {
      await until('a signed tree head over the entries', () => {
        const { entries } = db.prepare('SELECT count(*) AS entries FROM audit_entries').get() as { entries: number };
        const { size } = db.prepare('SELECT max(tree_size) AS size FROM audit_tree_heads').get() as { size: number | null };
        return size !== null && size >= entries ? size : undefined;
      });
      // The database's owner truncates the log below the anchor and removes the heads (operations.md: "entries ...
      // deleted or truncated below the anchor").
      const { m } = db.prepare('SELECT max(seq) AS m FROM audit_entries').get() as { m: number };
      db.exec(`DROP TRIGGER audit_entries_no_delete; DROP TRIGGER audit_tree_heads_no_delete; DROP TRIGGER audit_tree_nodes_no_delete;
               DELETE FROM audit_entries WHERE seq >= ${m - 1}; DELETE FROM audit_tree_heads; DELETE FROM audit_tree_nodes;`);
    } finally {
      db.close();
    }
    await until('the alert.audit_integrity entry', async () => {
      const tail = await runCli(['audit', 'tail', '--decision', 'error'], env);
      return /alert\.audit_integrity/.test(tail.stdout) ? true : undefined;
    });

    const ack = await runCli(['audit', 'acknowledge'], env);
    assert.equal(ack.code, 0, ack.stdout + ack.stderr);
    assert.doesNotMatch(ack.stdout, /undefined/, ack.stdout);
    const [line, gaveUp] = ack.stdout.trimEnd().split('\n');
    const m = /^acknowledged \(.+\): re-anchored at tree size (\d+), root ([0-9a-f]{16})…, generation 1; signing resumes$/.exec(line!);
    assert.ok(m, `acknowledge printed: ${ack.stdout}`);
    assert.match(gaveUp!, /^ {2}gave up: generation 0, tree size \d+, root [0-9a-f]{16}…$/, ack.stdout);

    // The size and root it names are the log's as the operator's next `audit verify` sees it.
    const verify = await runCli(['audit', 'verify', '--json'], env);
    const result = JSON.parse(verify.stdout) as { ok: boolean; entries: number; rootHash: string };
    assert.equal(result.ok, true, verify.stdout + verify.stderr);
    assert.equal(result.entries, Number(m![1]), `acknowledge printed ${line}, verify: ${verify.stdout}`);
    assert.equal(result.rootHash.slice(0, 16), m![2], `acknowledge printed ${line}, verify: ${verify.stdout}`);
  });
});
