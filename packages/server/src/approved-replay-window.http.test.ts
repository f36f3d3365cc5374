// A request an approval granted was charged when it was granted (its holds became ledger entries then). Re-sent
// later (the same permit: a replay, as when its first release failed), its own charge is taken out of the windows
// it is in, dated at the grant, so it is counted once. Found by review: dated at the ask, it was counted twice in a
// window that began between the ask and the grant, and refused budget_exceeded against its own charge.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ALICE, BASE, USDC, USDC_ASSET, provisionAgent, startHarness, type Harness, type StoreKind } from './testing/harness.ts';

for (const store of ['sqlite', 'postgres'] as StoreKind[]) {
  describe(`the replay of an approved permit after its ask left the window (${store})`, () => {
    let h: Harness;
    before(async () => { h = await startHarness({ store, manualClock: true }); });
    after(async () => h.close());

    test('a 60-unit permit held, granted 30s later, re-sent 40s after the grant under a 100 / 1m budget is released as a replay', async () => {
      const policy = { version: 1, rules: [
        { name: 'permits', type: 'allow', match: { chains: [BASE], kinds: ['eip2612.permit'], to: [ALICE] } },
        { name: 'by-hand', type: 'approval_tier', match: { kinds: ['eip2612.permit'] } },
        { name: 'per-minute', type: 'budget', asset: USDC_ASSET, max: '100', window: '1m', scope: 'agent' },
      ] };
      const { agent, token } = await provisionAgent(h, { policy, ttl: '24h' });
      const deadline = Math.floor(h.clock!.now() / 1000) + 3600;
      const body = { typedData: {
        domain: { name: 'USD Coin', version: '2', chainId: 8453, verifyingContract: USDC },
        types: { Permit: [{ name: 'owner', type: 'address' }, { name: 'spender', type: 'address' }, { name: 'value', type: 'uint256' }, { name: 'nonce', type: 'uint256' }, { name: 'deadline', type: 'uint256' }] },
        primaryType: 'Permit',
        message: { owner: agent.address, spender: ALICE, value: '60', nonce: '0', deadline: String(deadline) },
      } };
      const held = await h.call('POST', '/v1/sign/typed-data', { token, body });
      assert.equal(held.status, 202, JSON.stringify(held.body));
      h.clock!.advance(30_000);
      const granted = await h.admin('POST', `/v1/approvals/${held.body.approvalId}/approve`);
      assert.equal(granted.status, 200, JSON.stringify(granted.body));
      // Control: re-sent at once (ask and grant both inside the 1m window) it is released as a replay.
      const soon = await h.call('POST', '/v1/sign/typed-data', { token, body });
      assert.equal(soon.status, 200, `control: ${JSON.stringify(soon.body)}`);
      assert.equal(soon.body.replayed, true, JSON.stringify(soon.body));
      h.clock!.advance(40_000); // window starts at t=10s: the ask (t=0) is out of it, the converted charge (t=30s) in it
      const later = await h.call('POST', '/v1/sign/typed-data', { token, body });
      // On the current code: 403 budget_exceeded, used 60 (its own converted charge) + requested 60 > 100.
      assert.equal(later.status, 200, `the approved, already-charged permit is refused against its own charge: ${JSON.stringify(later.body)}`);
      assert.equal(later.body.signature, soon.body.signature);
    });
  });
}
