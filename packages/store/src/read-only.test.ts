// The key process's view of the store (openStore(url, { readOnly: true })): it reads what the daemon committed
// and cannot write, on both dialects.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { openStore } from './index.ts';

const PG_URL = process.env.AIRLOCK_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

async function checkReadOnly(url: string): Promise<void> {
  const writer = await openStore(url);
  await writer.migrate();
  await writer.setMeta('vault_fingerprint', 'abcd1234');
  await writer.transaction((tx) => tx.appendAudit({ at: 1, type: 'vault.initialized', actor: 'operator', data: {} }));
  const reader = await openStore(url, { readOnly: true });
  try {
    assert.equal(await reader.getMeta('vault_fingerprint'), 'abcd1234');
    assert.equal((await reader.readAudit(1, 1))[0]?.type, 'vault.initialized');
    // Committed later by the writer: visible to the reader's next read.
    await writer.transaction((tx) => tx.appendAudit({ at: 2, type: 'agent.created', actor: 'operator', data: {} }));
    assert.equal((await reader.readAudit(2, 1))[0]?.type, 'agent.created');
    await assert.rejects(reader.setMeta('vault_fingerprint', 'ffff'), (e: any) => e.code === 'store_unavailable' || /read.?only/i.test(String(e.message) + String(e.cause?.message)));
    await assert.rejects(reader.transaction((tx) => tx.appendAudit({ at: 3, type: 'forged', actor: 'operator', data: {} })));
    assert.equal(await writer.getMeta('vault_fingerprint'), 'abcd1234');
    assert.equal((await writer.readAudit(3, 1)).length, 0, 'nothing was written through the read-only store');
  } finally {
    await reader.close();
    await writer.close();
  }
}

test('SQLite opened read-only reads committed entries and refuses every write', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'airlock-ro-'));
  try {
    await checkReadOnly(`sqlite:${join(dir, 'airlock.db')}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('PostgreSQL opened read-only (default_transaction_read_only) reads committed entries and refuses every write', async () => {
  const schema = `airlock_ro_${process.pid}_${Date.now() % 100000}`;
  try {
    await checkReadOnly(`${PG_URL}?schema=${schema}`);
  } finally {
    const client = new pg.Client({ connectionString: PG_URL });
    await client.connect();
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await client.end();
  }
});
