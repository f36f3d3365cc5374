import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkLargeHistory, runConcurrentBudget, runStoreContract } from './contract.test-suite.ts';
import { DatabaseSync } from 'node:sqlite';
import { checkLedgerUpgrade, checkLedgerUpgradeTo008 } from './ledger-upgrade.test-suite.ts';
import { checkAgentKeyBackfill, checkConcurrentRotations } from './agent-keys.contract.test-suite.ts';
import { runLightningStoreContract } from './lightning.contract.test-suite.ts';
import { sqliteMigrations } from './sqlite/migrations/index.ts';
import { openSqliteStore } from './sqlite/sqlite-store.ts';
import { openStore } from './index.ts';
import { AUDIT_OUTSIDE_TREE_SQL } from './sqlite/audit.ts';
import { AuditLogVerifier } from '@airlock/core';

const dir = mkdtempSync(join(tmpdir(), 'airlock-store-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const tempPath = () => join(dir, `store-${++n}.db`);

runStoreContract('sqlite (temp file)', () => openSqliteStore(tempPath()));
runStoreContract('sqlite (:memory:)', () => openSqliteStore(':memory:'));
runStoreContract('sqlite (temp file, checkpoints in a worker thread, WAL synced off the event loop, as the daemon opens it)', () => openSqliteStore(tempPath(), { backgroundCheckpoints: true, syncOffLoop: true }));
runLightningStoreContract(() => openSqliteStore(tempPath()));

test('sqlite: two Store instances on one file (two processes) still append exactly 50 of 200', async () => {
  const path = tempPath();
  const a = await openSqliteStore(path);
  const b = await openSqliteStore(path);
  try {
    await Promise.all([a.migrate(), b.migrate()]);
    assert.deepEqual(await runConcurrentBudget([a, b]), { appended: 50, total: 50 });
  } finally {
    await a.close();
    await b.close();
  }
});

// A write transaction remembers the ledger heads it has read or written (one statement less per charge).
// Another connection's charges between two of its transactions must be seen: the running totals of the
// series stay exact and its entries stay numbered 1, 2, 3, … whichever instance wrote them.
test('sqlite: two instances charging one series in turn, several charges per batch, keep its running totals exact', async () => {
  const path = tempPath();
  const a = await openSqliteStore(path);
  const b = await openSqliteStore(path);
  const series = 'fleet';
  const charge = (store: typeof a, amount: bigint, at: number) =>
    store.transaction((tx) => tx.appendLedger([{ series, asset: 'usdc', amount, count: 1 }], at, 1));
  try {
    await a.migrate();
    let expected = 0n;
    let count = 0;
    for (let round = 0; round < 5; round++) {
      // Three at once on each instance: one batch each, the same series charged three times in it.
      const amounts = [1n, 10n, 100n].map((x) => x * BigInt(round + 1));
      await Promise.all(amounts.map((x, i) => charge(a, x, 1000 * round + i)));
      await Promise.all(amounts.map((x, i) => charge(b, x * 7n, 1000 * round + 500 + i)));
      expected += amounts.reduce((s, x) => s + x + x * 7n, 0n);
      count += 6;
      for (const store of [a, b]) {
        const [total] = await store.transaction((tx) => tx.windowTotals([{ series, asset: 'usdc', sinceMs: 0 }]));
        assert.deepEqual(total, { amount: expected, count }, `round ${round}`);
      }
    }
  } finally {
    await a.close();
    await b.close();
  }
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    const seqs = db.prepare('SELECT seq FROM ledger WHERE series = ? ORDER BY seq').all(series).map((r) => Number(r.seq));
    assert.deepEqual(seqs, Array.from({ length: 30 }, (_, i) => i + 1));
  } finally {
    db.close();
  }
});

test('sqlite: window totals stay exact over 100,000 ledger rows', async () => {
  const store = await openSqliteStore(tempPath());
  try {
    await store.migrate();
    await checkLargeHistory(store, (series, asset, rows) =>
      store.transaction(async (tx) => {
        for (let i = 1; i <= rows; i++) await tx.appendLedger([{ series, asset, amount: 3n, count: 1 }], i * 1000, i);
      }),
    );
  } finally {
    await store.close();
  }
});

test('sqlite: migration 006 keeps every window total of a ledger written by the old code', async () => {
  const path = tempPath();
  const store = await openSqliteStore(path);
  const reader = new DatabaseSync(path, { readOnly: false });
  try {
    // Schema as of version 5, applied the way migrate() applies it.
    await store.rawExec('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL) STRICT');
    for (const [version, migration] of [...sqliteMigrations].filter(([v]) => v <= 5).sort(([a], [b]) => a - b)) {
      for (const sql of migration.statements) await store.rawExec(sql);
      await store.rawExec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (${version}, '${migration.name}', 0)`);
    }
    await checkLedgerUpgrade({ store, query: async (sql) => reader.prepare(sql).all() as Record<string, unknown>[] });
  } finally {
    reader.close();
    await store.close();
  }
});

test('sqlite: migration 008 keeps every window total of a ledger written by the 006-007 code', async () => {
  const path = tempPath();
  const store = await openSqliteStore(path);
  const reader = new DatabaseSync(path, { readOnly: false });
  try {
    // Schema as of version 7, applied the way migrate() applies it.
    await store.rawExec('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL) STRICT');
    for (const [version, migration] of [...sqliteMigrations].filter(([v]) => v <= 7).sort(([a], [b]) => a - b)) {
      for (const sql of migration.statements) await store.rawExec(sql);
      await store.rawExec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (${version}, '${migration.name}', 0)`);
    }
    await checkLedgerUpgradeTo008({ store, query: async (sql) => reader.prepare(sql).all() as Record<string, unknown>[] });
  } finally {
    reader.close();
    await store.close();
  }
});

test('sqlite: a malformed ledger total fails the window check instead of reading as zero', async () => {
  const store = await openSqliteStore(tempPath());
  try {
    await store.migrate();
    await store.rawExec(`INSERT INTO ledger (series, at, seq, audit_seq, charges, kept_totals) VALUES
      ('agent:bad', 1000, 1, 1, '{}', '{"x": [null, 1], "y": "oops", "z": ["5", 2]}')`);
    const window = (asset: string) => store.transaction((tx) => tx.windowTotals([{ series: 'agent:bad', asset, sinceMs: 0 }]));
    assert.deepEqual(await window('z'), [{ amount: 5n, count: 2 }]);
    await assert.rejects(window('x'));
    await assert.rejects(window('y'));
  } finally {
    await store.close();
  }
});

test('sqlite: data survives reopening the file', async () => {
  const path = tempPath();
  const first = await openStore(`sqlite:${path}`);
  await first.migrate();
  const entry = await first.transaction((tx) => tx.appendAudit({ at: 1, type: 't', actor: 'system', data: {} }));
  await first.close();
  const second = await openStore(`sqlite:${path}`);
  await second.migrate();
  assert.deepEqual(await second.auditHead(), { seq: 1, hash: entry.hash, treeSize: 1 });
  await second.close();
  await assert.rejects(second.auditHead(), (e: { code?: string }) => e.code === 'store_unavailable');
});

test('openStore rejects unknown URLs', async () => {
  await assert.rejects(openStore('mysql://x'), (e: { code?: string }) => e.code === 'invalid_request');
});

test('sqlite: a full database in the middle of a group commit loses nothing acknowledged and keeps nothing refused', async () => {
  const path = tempPath();
  const store = await openSqliteStore(path);
  try {
    await store.migrate();
    await store.transaction((tx) => tx.appendAudit({ at: 1, type: 'before', actor: 'system', data: {} }));
    // Cap the file just above its size: a request writing a large entry hits SQLITE_FULL. SQLite may then
    // undo only that statement or the whole transaction (https://sqlite.org/lang_transaction.html, "Response
    // To Errors Within A Transaction"); either way every answer must match what is stored.
    await store.rawExec('PRAGMA max_page_count = ' + String((await pageCount(store)) + 8));
    const small = (tag: string) => store.transaction(async (tx) => (await tx.appendAudit({ at: 2, type: 'small', actor: 'system', data: { tag } })).seq);
    const results = await Promise.allSettled([
      small('a'),
      store.transaction(async (tx) => (await tx.appendAudit({ at: 2, type: 'big', actor: 'system', data: { blob: 'x'.repeat(2_000_000) } })).seq),
      small('c'),
      small('d'),
    ]);
    assert.equal(results[1]!.status, 'rejected');
    assert.equal((results[1] as PromiseRejectedResult).reason.code, 'store_unavailable');
    const stored = (await store.readAudit(1, 100)).filter((e) => e.type !== 'before');
    assert.ok(stored.every((e) => e.type === 'small'), 'the refused entry is not stored');
    const storedTags = new Set(stored.map((e) => (e.data as { tag: string }).tag));
    ['a', 'c', 'd'].forEach((tag, i) => {
      const r = results[i === 0 ? 0 : i + 1]!;
      if (r.status === 'fulfilled') assert.ok(storedTags.has(tag), `${tag} was acknowledged (seq ${r.value}) but is not stored`);
      else {
        assert.equal(r.reason.code, 'store_unavailable');
        assert.ok(!storedTags.has(tag), `${tag} was refused but is stored`);
      }
    });
    const verifier = new AuditLogVerifier();
    assert.ok((await store.readAuditLeaves(0, 100)).every((e) => verifier.push(e)), 'the log is intact');
    assert.equal(verifier.finish([], [], { verifyTreeHead: () => false, verifyCheckpoint: () => false }).ok, true);
    // The store works again once there is room.
    await store.rawExec('PRAGMA max_page_count = 1073741823');
    assert.ok(await small('after'));
  } finally {
    await store.close();
  }
});

async function pageCount(store: Awaited<ReturnType<typeof openSqliteStore>>): Promise<number> {
  // The page count through the test-only raw handle: written into meta by SQL, read back through the port.
  await store.rawExec("INSERT OR REPLACE INTO meta (key, value) SELECT 'test.page_count', CAST(page_count AS TEXT) FROM pragma_page_count()");
  return Number(await store.getMeta('test.page_count'));
}

test('sqlite: rotations of one agent from two Store instances on one file each take their own key index', async () => {
  const path = tempPath();
  const a = await openSqliteStore(path);
  const b = await openSqliteStore(path);
  try {
    await Promise.all([a.migrate(), b.migrate()]);
    await checkConcurrentRotations([a, b]);
  } finally {
    await a.close();
    await b.close();
  }
});

test('sqlite: migration 016 backfills the key registry with the key each agent has', async () => {
  const store = await openSqliteStore(tempPath());
  try {
    await store.rawExec('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL) STRICT');
    for (const [version, migration] of [...sqliteMigrations].filter(([v]) => v < 16).sort(([x], [y]) => x - y)) {
      for (const sql of migration.statements) await store.rawExec(sql);
      await store.rawExec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (${version}, '${migration.name}', 0)`);
    }
    await checkAgentKeyBackfill(store);
  } finally {
    await store.close();
  }
});

// `audit verify` ends by asking for rows outside the tree; on a million-entry log a full scan of the table
// for it cost half a second (measured), more than a tenth of the whole verification.
test('sqlite: looking for audit rows outside the tree reads the leaf_index index, never the whole table', async () => {
  const path = tempPath();
  const store = await openSqliteStore(path);
  await store.migrate();
  await store.close();
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    const plan = (db.prepare(`EXPLAIN QUERY PLAN ${AUDIT_OUTSIDE_TREE_SQL}`).all(1) as { detail: string }[]).map((r) => r.detail);
    assert.ok(plan.some((d) => /SEARCH audit_entries USING (COVERING )?INDEX/.test(d)), plan.join(' | '));
    assert.ok(!plan.some((d) => /^SCAN audit_entries/.test(d)), plan.join(' | '));
  } finally {
    db.close();
  }
});
