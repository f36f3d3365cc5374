import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkLargeHistory, runConcurrentBudget, runStoreContract } from './contract.test-suite.ts';
import { DatabaseSync } from 'node:sqlite';
import { checkLedgerUpgrade } from './ledger-upgrade.test-suite.ts';
import { sqliteMigrations } from './sqlite/migrations/index.ts';
import { openSqliteStore } from './sqlite/sqlite-store.ts';
import { openStore } from './index.ts';

const dir = mkdtempSync(join(tmpdir(), 'airlock-store-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const tempPath = () => join(dir, `store-${++n}.db`);

runStoreContract('sqlite (temp file)', () => openSqliteStore(tempPath()));
runStoreContract('sqlite (:memory:)', () => openSqliteStore(':memory:'));

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

test('sqlite: data survives reopening the file', async () => {
  const path = tempPath();
  const first = await openStore(`sqlite:${path}`);
  await first.migrate();
  const entry = await first.transaction((tx) => tx.appendAudit({ at: 1, type: 't', actor: 'system', data: {} }));
  await first.close();
  const second = await openStore(`sqlite:${path}`);
  await second.migrate();
  assert.deepEqual(await second.auditHead(), { seq: 1, hash: entry.hash });
  await second.close();
  await assert.rejects(second.auditHead(), (e: { code?: string }) => e.code === 'store_unavailable');
});

test('openStore rejects unknown URLs', async () => {
  await assert.rejects(openStore('mysql://x'), (e: { code?: string }) => e.code === 'invalid_request');
});
