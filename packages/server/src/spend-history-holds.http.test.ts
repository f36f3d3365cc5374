// GET /v1/spend counts requests per bucket as a rate limit does (docs/console.md): a request held for approval counts
// in the bucket it was made in while it waits, with no amount; denied, it leaves it. A review of c0c93bf (held counts
// age out of windows) found the docs described counts as charges only.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ALICE, USDC_ASSET, provisionAgent, startHarness, usdcPolicy, usdcTransfer, type Harness, type StoreKind } from './testing/harness.ts';

const U = 1_000_000n;

for (const store of ['sqlite', 'postgres'] as StoreKind[]) {
  describe(`spend history and a request held for approval (${store})`, () => {
    let h: Harness;
    before(async () => { h = await startHarness({ store, manualClock: true }); });
    after(async () => h.close());

    test('a held request is counted in its bucket (amount 0) while it waits, and leaves it when denied', async () => {
      const p = await provisionAgent(h, { policy: usdcPolicy({ approvalAbove: (1n * U).toString() }), ttl: '24h' });
      h.clock!.advance(60_000);
      const start = h.clock!.now();
      h.clock!.advance(1_000);
      const held = await h.call('POST', '/v1/sign/transaction', { token: p.token, body: usdcTransfer(ALICE, 2n * U, 0) });
      assert.equal(held.status, 202, JSON.stringify(held.body));
      h.clock!.advance(120_000);
      const spend = async () => {
        const res = await h.admin('GET', `/v1/spend?agent=${p.agent.name}&bucket=1m&since=${start}&until=${start + 120_000}&asset=${encodeURIComponent(USDC_ASSET)}`);
        assert.equal(res.status, 200, JSON.stringify(res.body));
        return res.body.assets.find((a: any) => a.asset === USDC_ASSET.toLowerCase());
      };
      const pending = await spend();
      // Nothing was charged: amounts 0 in every bucket; the request waiting on its hold is counted in the first.
      assert.deepEqual(pending.amounts, ['0', '0']);
      assert.deepEqual(pending.counts, [1, 0], JSON.stringify(pending));

      assert.equal((await h.admin('POST', `/v1/approvals/${held.body.approvalId}/deny`)).status, 200);
      const denied = await spend();
      // Denied: it was never a request that signed, and leaves the bucket.
      assert.deepEqual(denied.counts, [0, 0], JSON.stringify(denied));
    });
  });
}
