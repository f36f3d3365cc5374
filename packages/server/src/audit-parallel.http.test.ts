// `audit verify` in worker threads (each with its own raw reader on the store) gives exactly the one-thread
// result, on a clean log and on tampered ones, with ranges small enough that every seam is exercised: an
// edited leaf, a deleted range, every column edited alone, the hash column, and a legacy chain before the
// Merkle leaves.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { verifyStoredAudit, type ParallelVerifyOptions } from '@airlock/core';
import { auditVerifyOptions, verifySchnorr } from './runtime.ts';
import { rawAudit, rewriteEntry } from './testing/forge-audit.ts';
import { ALICE, provisionAgent, startHarness, usdcPolicy, usdcTransfer, type Harness, type StoreKind } from './testing/harness.ts';
import { writeLegacyAuditChain } from './testing/legacy-audit.ts';

/** Verifies on one thread and in two workers with ranges of `rangeLeaves`; both must agree. */
async function verifyBothWays(h: Harness, rangeLeaves: number) {
  const key = await h.airlock.audit.auditPublicKey();
  const workers = auditVerifyOptions(h.config.storeUrl).workers;
  assert.ok(workers, 'a file or PostgreSQL store is reachable from workers');
  const options: ParallelVerifyOptions = { workers: { ...workers, threads: 2 }, minEntriesForWorkers: 0, rangeLeaves };
  const [one, many] = [await verifyStoredAudit(h.airlock.store, verifySchnorr, key), await verifyStoredAudit(h.airlock.store, verifySchnorr, key, [], options)];
  assert.deepEqual(many, one);
  return many;
}

const sqlText = (v: string | undefined) => (v === undefined ? 'NULL' : `'${v.replace(/'/g, "''")}'`);

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

    test('every column edited alone, the hash column, an edited legacy entry: the same result as one thread, named at the entry', async () => {
      const h = await startHarness({ store });
      try {
        await writeLegacyAuditChain(h, store);
        const { token } = await provisionAgent(h, { policy: usdcPolicy() });
        for (let i = 0; i < 5; i++) assert.equal((await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 1_000n, i) })).status, 200);
        assert.ok(await h.airlock.audit.checkpoint());
        const clean = await verifyBothWays(h, 2);
        assert.equal(clean.ok, true, JSON.stringify(clean));

        const entries = await h.airlock.store.readAudit(1, 1000);
        assert.deepEqual(entries.slice(0, 3).map((e) => e.hashVersion), [1, 1, 1], 'a legacy chain first');
        const target = entries.find((e) => e.hashVersion === 3 && e.agentId && e.sessionId && e.action && e.decision)!;
        assert.ok(target, 'a version-3 entry with every optional column set');
        const columns: [column: string, edited: string, original: string][] = [
          ['agent_id', "'ag_other'", sqlText(target.agentId)],
          ['agent_id', 'NULL', sqlText(target.agentId)],
          ['session_id', "'ses_other'", sqlText(target.sessionId)],
          ['action', "'evm.message'", sqlText(target.action)],
          ['decision', 'NULL', sqlText(target.decision)],
          ['decision', "'deny'", sqlText(target.decision)],
          ['type', "'agent.frozen'", sqlText(target.type)],
          ['actor', "'operator'", sqlText(target.actor)],
          ['at', String(target.at + 1), String(target.at)],
        ];
        for (const [column, edited, original] of columns) {
          await rawAudit(h, store, `UPDATE audit_entries SET ${column} = ${edited} WHERE seq = ${target.seq}`);
          const r = await verifyBothWays(h, 2);
          assert.deepEqual(r.firstBad, { seq: target.seq, reason: 'entry fields do not match its stored leaf (edited)' }, `${column} = ${edited}`);
          await rawAudit(h, store, `UPDATE audit_entries SET ${column} = ${original} WHERE seq = ${target.seq}`);
        }
        assert.equal((await verifyBothWays(h, 2)).ok, true, 'every column restored');

        const flipped = `${target.hash.slice(0, -1)}${target.hash.endsWith('0') ? '1' : '0'}`;
        await rawAudit(h, store, `UPDATE audit_entries SET hash = '${flipped}' WHERE seq = ${target.seq}`);
        assert.deepEqual((await verifyBothWays(h, 2)).firstBad, { seq: target.seq, reason: 'entry content does not match its hash (edited)' });
        await rawAudit(h, store, `UPDATE audit_entries SET hash = '${target.hash}' WHERE seq = ${target.seq}`);

        await rawAudit(h, store, `UPDATE audit_entries SET data = '{"scope":"global","version":2}' WHERE seq = 1`);
        assert.deepEqual((await verifyBothWays(h, 2)).firstBad, { seq: 1, reason: 'entry content does not match its hash (edited)' });
      } finally {
        await h.close();
      }
    });
  });
}
