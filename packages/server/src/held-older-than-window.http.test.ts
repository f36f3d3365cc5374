// A hold (a pending approval's, a reserved EIP-3009 payment's) counts in every budget window while it is held,
// whatever its age. Judging it again (an approval granted, the same authorization re-sent) takes that hold out of
// every window, so the request is counted once, as itself. Found by review: it was taken out only of windows the
// request was younger than, so an approval granted more than a window after it was asked was counted twice and
// closed approval_policy_denies, and a reserved authorization re-sent later was refused against its own hold.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ALICE, USDC_ASSET, provisionAgent, startHarness, usdcAuthorization, usdcPolicy, usdcTransfer, type Harness, type StoreKind } from './testing/harness.ts';

const U = 1_000_000n;

for (const store of ['sqlite', 'postgres'] as StoreKind[]) {
  describe(`a hold older than the budget window is counted once when judged again (${store})`, () => {
    let h: Harness;
    before(async () => { h = await startHarness({ store, manualClock: true }); });
    after(async () => h.close());

    test('a 60 USDC request held for approval, granted 2 minutes later under a 100 USDC / 1m budget, is granted (counted once)', async () => {
      const policy = usdcPolicy({ approvalAbove: (50n * U).toString() }) as any;
      policy.rules.push({ name: 'per-minute', type: 'budget', asset: USDC_ASSET, max: (100n * U).toString(), window: '1m', scope: 'agent' });
      const { token } = await provisionAgent(h, { policy, ttl: '24h' });
      const held = await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 60n * U, 0) });
      assert.equal(held.status, 202, JSON.stringify(held.body));
      h.clock!.advance(120_000);
      const res = await h.admin('POST', `/v1/approvals/${held.body.approvalId}/approve`);
      // On the current code: 409 approval_policy_denies, agent/per-minute: used 60000000 + requested 60000000 > 100000000.
      assert.equal(res.status, 200, JSON.stringify(res.body));
    });

    test('a reserved 60 USDC EIP-3009 authorization re-sent byte for byte 2 minutes later under a 100 USDC / 1m budget is released (it is charged already)', async () => {
      const policy = usdcPolicy() as any;
      policy.rules.push({ name: 'per-minute', type: 'budget', asset: USDC_ASSET, max: (100n * U).toString(), window: '1m', scope: 'agent' });
      const { agent, token } = await provisionAgent(h, { policy, ttl: '24h' });
      const auth = usdcAuthorization(agent.address, ALICE, 60n * U, Math.floor(h.clock!.now() / 1000) + 3600, `0x${'cd'.repeat(32)}`);
      const first = await h.call('POST', '/v1/sign/typed-data', { token, body: auth });
      assert.equal(first.status, 200, JSON.stringify(first.body));
      h.clock!.advance(120_000);
      const again = await h.call('POST', '/v1/sign/typed-data', { token, body: auth });
      // On the current code: 403 budget_exceeded, used 60000000 (its own reserved hold) + requested 60000000 > 100000000.
      assert.equal(again.status, 200, JSON.stringify(again.body));
      assert.equal(again.body.signature, first.body.signature);
    });
  });
}
