// `audit verify` in worker threads (each with its own store connection) gives exactly the one-thread
// result, on a clean log and on tampered ones, with ranges small enough that every seam is exercised.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { verifyStoredAudit, type ParallelVerifyOptions } from '@airlock/core';
import { auditVerifyOptions, verifySchnorr } from './runtime.ts';
import { rawAudit, rewriteEntry } from './testing/forge-audit.ts';
import { ALICE, provisionAgent, startHarness, usdcPolicy, usdcTransfer, type StoreKind } from './testing/harness.ts';

for (const store of ['sqlite', 'postgres'] as StoreKind[]) {
  describe(`audit verify in worker threads (${store})`, () => {
    test('the same result as one thread: clean, an edited leaf, a deleted range, a forged head size', async () => {
      const h = await startHarness({ store });
      try {
        const { token } = await provisionAgent(h, { policy: usdcPolicy() });
        for (let i = 0; i < 10; i++) {
          assert.equal((await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 1_000n, i) })).status, 200);
          if (i === 3 || i === 6) assert.ok(await h.airlock.audit.checkpoint(), 'heads at sizes inside ranges');
        }
        assert.ok(await h.airlock.audit.checkpoint());
        const key = await h.airlock.audit.auditPublicKey();
        const workers = auditVerifyOptions(h.config.storeUrl).workers;
        assert.ok(workers, 'a file or PostgreSQL store is reachable from workers');
        const options: ParallelVerifyOptions = { workers: { ...workers, threads: 2 }, minEntriesForWorkers: 0, rangeLeaves: 4 };
        const both = async () => {
          const [one, many] = [await verifyStoredAudit(h.airlock.store, verifySchnorr, key), await verifyStoredAudit(h.airlock.store, verifySchnorr, key, [], options)];
          assert.deepEqual(many, one);
          return many;
        };
        const clean = await both();
        assert.equal(clean.ok, true, JSON.stringify(clean));
        assert.equal(clean.treeHeads, 3);
        assert.ok(clean.entries > 12);

        await rewriteEntry(h, store, 10, (e) => ({ ...e, decision: 'deny' }));
        const edited = await both();
        assert.equal(edited.ok, false);
        // A self-consistent leaf is only told apart by the first signed head that covers it.
        const covering = (await h.airlock.store.listTreeHeads()).find((t) => t.treeSize >= 10)!;
        assert.deepEqual(edited.firstBad, { seq: covering.treeSize, reason: `the tree up to the entry at leaf ${covering.treeSize - 1} does not match the signed tree head of size ${covering.treeSize}` });

        await rawAudit(h, store, 'DELETE FROM audit_entries WHERE leaf_index >= 4 AND leaf_index < 8');
        const deleted = await both();
        assert.equal(deleted.ok, false);
        assert.equal(deleted.firstBad!.seq, 5);
        assert.match(deleted.firstBad!.reason, /missing/);
      } finally {
        await h.close();
      }
    });
  });
}
