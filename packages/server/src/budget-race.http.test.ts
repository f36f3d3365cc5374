// Budgets cannot race: 200 concurrent requests against a budget that allows exactly 50.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { ALICE, provisionAgent, startHarness, usdcPolicy, usdcTransfer, type StoreKind } from './testing/harness.ts';

for (const store of ['sqlite', 'postgres'] as StoreKind[]) {
  describe(`budget race (${store})`, () => {
    test('200 concurrent requests, budget for 50: exactly 50 signatures and 150 named denials', async () => {
      const h = await startHarness({ store });
      try {
        // 50 x 1 USDC fits a 50 USDC daily budget exactly.
        const { token } = await provisionAgent(h, { policy: usdcPolicy({ daily: '50000000' }) });
        const results = await Promise.all(
          Array.from({ length: 200 }, (_, i) => h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 1_000_000n, i) })),
        );
        const signed = results.filter((r) => r.status === 200 && r.body.signedTransaction);
        const denied = results.filter((r) => r.status === 403);
        assert.equal(signed.length, 50);
        assert.equal(denied.length, 150);
        for (const d of denied) {
          assert.equal(d.body.error.violations[0].rule, 'agent/usdc-daily');
          assert.equal(d.body.error.violations[0].code, 'budget_exceeded');
        }
        // Every signature has its own audit entry, and the ledger agrees with what was signed.
        const seqs = new Set(signed.map((r) => r.body.auditSeq));
        assert.equal(seqs.size, 50);
        const allowed = await h.admin('GET', '/v1/audit?decision=allow&type=sign.request&limit=1000');
        assert.deepEqual(new Set(allowed.body.entries.map((e: any) => e.seq)), seqs);
        const verify = await h.admin('POST', '/v1/audit/verify');
        assert.equal(verify.body.ok, true);
      } finally {
        await h.close();
      }
    });

    test('fleet-wide budget shared by 4 agents holds under concurrency', async () => {
      const h = await startHarness({ store });
      try {
        const fleetPolicy = { version: 1, rules: [{ name: 'fleet-daily', type: 'budget', asset: 'eip155:8453/erc20:0x833589fcd6edb6e08f4c7c32d4f71b54bda02913', max: '30000000', window: '24h', scope: 'fleet' }] };
        assert.equal((await h.admin('PUT', '/v1/policies/fleet', { document: fleetPolicy })).status, 200);
        const tokens = await Promise.all(Array.from({ length: 4 }, () => provisionAgent(h, { policy: usdcPolicy() }).then((p) => p.token)));
        const results = await Promise.all(
          Array.from({ length: 120 }, (_, i) => h.call('POST', '/v1/sign/transaction', { token: tokens[i % 4]!, body: usdcTransfer(ALICE, 1_000_000n, i) })),
        );
        assert.equal(results.filter((r) => r.status === 200).length, 30);
        assert.ok(results.filter((r) => r.status === 403).every((r) => r.body.error.violations.some((v: any) => v.rule === 'fleet/fleet-daily')));
      } finally {
        await h.close();
      }
    });
  });
}
