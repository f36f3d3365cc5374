// The disk refuses to confirm a write, through the HTTP API on SQLite (the embedded default). The store commits a
// signing transaction and then syncs the WAL off the event loop (packages/store/src/sqlite/wal-sync.ts); the
// signature is made beside that sync and released only after it. Here fdatasync(2) fails with EIO, as the
// kernel reports a disk that lost a write: the agent gets a 503 that says the request may or may not have been
// recorded and no signature, every request after it is refused until the daemon restarts (a later sync may
// succeed without the lost pages: fsyncgate), and after the restart the same request under the same
// Idempotency-Key is a replay of the one recorded, charged once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { recoverTransactionAddress, type TransactionSerialized } from 'viem';
import { ALICE, provisionAgent, startHarness, usdcPolicy, usdcTransfer } from './testing/harness.ts';

/** Makes every fdatasync(2) of this process fail with EIO until the returned function is called. */
function failDiskSyncs(): { restore: () => void; failed: () => number } {
  const original = fs.fdatasync;
  let failed = 0;
  fs.fdatasync = ((fd: number, callback: (e: NodeJS.ErrnoException | null) => void) => {
    failed++;
    setImmediate(() => callback(Object.assign(new Error(`EIO: i/o error, fdatasync`), { code: 'EIO', errno: -5, syscall: 'fdatasync' })));
  }) as typeof fs.fdatasync;
  // The store imports fdatasync by name: its live binding follows the module object only once synced.
  syncBuiltinESMExports();
  return {
    restore: () => {
      fs.fdatasync = original;
      syncBuiltinESMExports();
    },
    failed: () => failed,
  };
}

test('a failed disk sync: no signature, a 503 that says it may have been recorded, refusals until restart, then a replay charged once', async () => {
  const h = await startHarness();
  try {
    // Budget for 5 units: 1 signed before the fault, 2 in the request the disk fails.
    const { agent, token } = await provisionAgent(h, { policy: usdcPolicy({ daily: '5' }) });
    const first = await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 1n, 0) });
    assert.equal(first.status, 200);

    const disk = failDiskSyncs();
    let faulted;
    try {
      faulted = await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 2n, 1), headers: { 'idempotency-key': 'disk-fault-1' } });
      assert.ok(disk.failed() >= 1, 'the request never asked the disk to sync');
    } finally {
      disk.restore();
    }
    assert.equal(faulted.status, 503);
    assert.equal(faulted.body.error.code, 'store_unavailable');
    assert.match(faulted.body.error.message, /may or may not have been recorded/);
    assert.equal(faulted.body.signedTransaction, undefined);
    assert.equal(JSON.stringify(faulted.body).includes('0x02f8'), false, 'a signed transaction leaked in the error');
    // Fails closed: the disk answers again, but requests are refused without being decided until a restart
    // (a later sync could succeed without the pages the failed one lost).
    const after = await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 1n, 3) });
    assert.equal(after.status, 503, 'the store must stay refused once a sync failed');
    assert.equal(after.body.error.code, 'store_unavailable');
    assert.equal((await h.call('GET', '/v1/health')).status, 503, 'health must show the refusing store');

    await h.restart();
    // The commit was in the kernel's cache (no power was lost): the retry under the same key is its replay.
    const retry = await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 2n, 1), headers: { 'idempotency-key': 'disk-fault-1' } });
    assert.equal(retry.status, 200);
    assert.equal(retry.body.replayed, true);
    assert.equal((await recoverTransactionAddress({ serializedTransaction: retry.body.signedTransaction as TransactionSerialized })).toLowerCase(), agent.address.toLowerCase());
    // Charged once: 1 + 2 of 5 spent, so 2 more fit and then nothing.
    assert.equal((await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 2n, 4) })).status, 200);
    const over = await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 1n, 5) });
    assert.equal(over.status, 403);
    assert.equal(over.body.error.code, 'policy_denied');
    const requests = (await h.admin('GET', `/v1/audit?agent=${agent.name}&type=sign.request&limit=100`)).body.entries as { decision: string }[];
    assert.equal(requests.filter((e) => e.decision === 'allow').length, 3, 'one allow entry each for the three signatures charged');
  } finally {
    await h.close();
  }
});
