import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkLargeHistory, runConcurrentBudget, runStoreContract } from './contract.test-suite.ts';
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
