// A request held for a human is not spend of the last minute, however long it waits: the burst detectors count a
// pending hold, amount and count alike, only in the windows its time is in. Found by review: they read windows as
// a budget does, with every held amount in every window, so one agent's request held ten minutes ago plus another
// agent's ordinary payment tripped a fleet-scope freeze (observed 1100 against min_amount 1000).
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, type Harness, type StoreKind, USDC_ASSET } from './testing/harness.ts';
import { fleetPolicyWorld } from './testing/fleet-policy-world.ts';

const RULE = 'detector/fleet/fleetburst';
const policy = {
  version: 1,
  rules: [
    { name: 'usdc-anywhere', type: 'allow', match: { chains: [BASE], kinds: ['erc20.transfer'], assets: [USDC_ASSET] } },
    { name: 'fees', type: 'fee_cap', max_fee_per_gas: '100000000000' },
    { name: 'big-by-hand', type: 'approval_tier', asset: USDC_ASSET, above: '500' },
  ],
  detectors: [{ name: 'fleetburst', type: 'fleet_spend_burst', asset: USDC_ASSET, window: '1m', baseline: '24h', min_amount: '1000', action: 'freeze', scope: 'fleet' }],
};

for (const store of ['sqlite', 'postgres'] as StoreKind[]) {
  describe(`fleet_spend_burst and a pending hold older than its window (${store})`, () => {
    const world = fleetPolicyWorld(store, policy, 'fb');
    const { agent, status } = world;
    let h: Harness;
    before(() => {
      h = world.h;
    });
    const pay = world.transfer;

    test('within the window a held amount counts: 900 held, then 200 within the minute trips the breaker', async () => {
      h.clock!.advance(25 * 3_600_000); // a fresh baseline: nothing of earlier tests in the last 24h
      const [A, B] = [await agent(), await agent()];
      const held = await pay(A, '0x1111111111111111111111111111111111111111', 900n);
      assert.equal(held.status, 202, JSON.stringify(held.body));
      h.clock!.advance(10_000);
      const burst = await pay(B, '0x2222222222222222222222222222222222222222', 200n);
      assert.equal(burst.status, 403, JSON.stringify(burst.body));
      const v = burst.body.error.violations.find((x: { code: string }) => x.code === 'breaker_tripped');
      assert.equal(v.rule, RULE);
      assert.equal(v.used, '1100');
      const breakers = await h.admin('GET', '/v1/breakers?state=tripped');
      for (const b of breakers.body.breakers ?? breakers.body) assert.equal((await h.admin('POST', `/v1/breakers/${b.id}/reset`, {})).status, 200);
      assert.equal(await status(A), 'active');
    });

    test('a held request ten minutes old is not spend of the last minute: an ordinary 200 is signed, no one frozen', async () => {
      h.clock!.advance(25 * 3_600_000);
      const [A, B, C] = [await agent(), await agent(), await agent()];
      const held = await pay(A, '0x3333333333333333333333333333333333333333', 900n);
      assert.equal(held.status, 202, JSON.stringify(held.body));
      assert.ok(!JSON.stringify(held.body).includes('breaker_tripped'), 'the held request alone is under min_amount');
      h.clock!.advance(10 * 60_000);
      const ordinary = await pay(B, '0x4444444444444444444444444444444444444444', 200n);
      assert.equal(ordinary.status, 200, JSON.stringify(ordinary.body));
      assert.ok(ordinary.body.signature, JSON.stringify(ordinary.body));
      for (const a of [A, B, C]) assert.equal(await status(a), 'active', a.name);
      assert.equal((await h.admin('GET', `/v1/approvals/${held.body.approvalId}`)).body.state, 'pending', 'still held: its amount still counts for budgets');
    });
  });
}
