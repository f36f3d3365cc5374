// A request held for approval is no payment: its payee is not one the fleet knew, however old the hold. Found by a
// review of c0c93bf (a held request's count ages out of windows): the detector compared a count over all time with
// one over its window, so a pending hold older than the window made its payee look paid before it, and a wave of
// three fresh agents paying it went unseen. Whether the fleet knew the payee is now read from the ledger alone.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, type Harness, type StoreKind, USDC_ASSET } from './testing/harness.ts';
import { fleetPolicyWorld } from './testing/fleet-policy-world.ts';

const RULE = 'detector/fleet/lateral';
const policy = {
  version: 1,
  rules: [
    { name: 'usdc-anywhere', type: 'allow', match: { chains: [BASE], kinds: ['erc20.transfer'], assets: [USDC_ASSET] } },
    { name: 'fees', type: 'fee_cap', max_fee_per_gas: '100000000000' },
    { name: 'big-by-hand', type: 'approval_tier', asset: USDC_ASSET, above: '500' },
  ],
  detectors: [{ name: 'lateral', type: 'destination_wave', agents: 3, window: '1h', action: 'freeze' }],
};

for (const store of ['sqlite', 'postgres'] as StoreKind[]) {
  describe(`destination_wave and a held request older than its window (${store})`, () => {
    const world = fleetPolicyWorld(store, policy, 'wave');
    const { agent } = world;
    let h: Harness;
    before(() => {
      h = world.h;
    });
    const pay = (a: { token: string }, to: string, amount: bigint) => {
      h.clock!.advance(1000);
      return world.transfer(a, to, amount);
    };

    test('three fresh agents paying a fresh payee: the third trips the wave', async () => {
      const to = '0x' + '7'.repeat(40);
      const [a, b, c] = [await agent(), await agent(), await agent()];
      assert.equal((await pay(a, to, 100n)).status, 200);
      assert.equal((await pay(b, to, 100n)).status, 200);
      const third = await pay(c, to, 100n);
      assert.equal(third.status, 403, JSON.stringify(third.body));
      assert.ok(third.body.error.violations.some((v: any) => v.code === 'breaker_tripped' && v.rule === RULE));
    });

    test('a payee the fleet paid before the window is one it knew: three payers within the window trip nothing', async () => {
      const to = '0x' + '9'.repeat(40);
      assert.equal((await pay(await agent(), to, 100n)).status, 200);
      h.clock!.advance(3_601_000);
      const [b, c, d] = [await agent(), await agent(), await agent()];
      assert.equal((await pay(b, to, 100n)).status, 200);
      assert.equal((await pay(c, to, 100n)).status, 200);
      assert.equal((await pay(d, to, 100n)).status, 200, 'paid an hour before: not a new payee');
    });

    test('a still-pending held request to the payee, aged past the window, does not make it known: the third payer trips the wave', async () => {
      const to = '0x' + '8'.repeat(40);
      const seed = await agent();
      const held = await pay(seed, to, 1000n);
      assert.equal(held.status, 202, JSON.stringify(held.body));
      h.clock!.advance(3_601_000); // the held request (still pending, nothing paid) is now older than the 1h window
      const [b, c, d] = [await agent(), await agent(), await agent()];
      assert.equal((await pay(b, to, 100n)).status, 200);
      assert.equal((await pay(c, to, 100n)).status, 200);
      const third = await pay(d, to, 100n);
      // On the old code: 200, and nothing froze the wave.
      assert.equal(third.status, 403, JSON.stringify(third.body));
      assert.ok(third.body.error.violations.some((v: any) => v.code === 'breaker_tripped' && v.rule === RULE), JSON.stringify(third.body));
      assert.equal((await h.admin('GET', `/v1/agents/${d.name}`)).body.status, 'frozen', 'the wave froze its agents');
      // The approval is still pending: the payee was never paid by the fleet before the wave.
      const approval = await h.admin('GET', `/v1/approvals/${held.body.approvalId}`);
      assert.equal(approval.body.state ?? approval.body.approval?.state, 'pending', JSON.stringify(approval.body));
    });
  });
}
