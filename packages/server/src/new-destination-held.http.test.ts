// A request held for approval is no payment: new_destination asks whether the fleet was ever charged for a payee,
// from the ledger alone. Found by review: the detector read the payee's fleet series with every pending hold added,
// so agent A's payment to an attacker's address, held by the detector itself, made that address look paid, and
// agent B's payment to it was signed with no finding.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, type Harness, type StoreKind, USDC_ASSET } from './testing/harness.ts';
import { fleetPolicyWorld } from './testing/fleet-policy-world.ts';

const RULE = 'detector/fleet/newdest';
const policy = {
  version: 1,
  rules: [
    { name: 'usdc-anywhere', type: 'allow', match: { chains: [BASE], kinds: ['erc20.transfer'], assets: [USDC_ASSET] } },
    { name: 'fees', type: 'fee_cap', max_fee_per_gas: '100000000000' },
  ],
  detectors: [{ name: 'newdest', type: 'new_destination', action: 'require_approval' }],
};

for (const store of ['sqlite', 'postgres'] as StoreKind[]) {
  describe(`new_destination and a held request to the same payee (${store})`, () => {
    const world = fleetPolicyWorld(store, policy, 'nd');
    const { agent } = world;
    let h: Harness;
    before(() => {
      h = world.h;
    });
    const pay = (a: { token: string }, to: string) => {
      h.clock!.advance(1000);
      return world.transfer(a, to, 1000n);
    };
    const tripped = (body: unknown) => JSON.stringify(body).includes('breaker_tripped') && JSON.stringify(body).includes(RULE);

    test('a payee only held for one agent is still new to the fleet: the next agent paying it trips the detector', async () => {
      const D = '0x7777777777777777777777777777777777777777';
      const [A, B] = [await agent(), await agent()];
      const first = await pay(A, D);
      assert.equal(first.status, 202, JSON.stringify(first.body));
      assert.ok(tripped(first.body), JSON.stringify(first.body));
      const second = await pay(B, D);
      assert.equal(second.status, 202, JSON.stringify(second.body));
      assert.ok(tripped(second.body), JSON.stringify(second.body));
      assert.equal(second.body.signature, undefined, 'nothing signed');
      assert.equal((await h.admin('GET', `/v1/approvals/${first.body.approvalId}`)).body.state, 'pending', 'A\'s request was never granted');
    });

    test('once a held payment is granted (charged to the ledger), the payee is known: a third agent pays it without a finding', async () => {
      const D = '0x7878787878787878787878787878787878787878';
      const [A, C] = [await agent(), await agent()];
      const first = await pay(A, D);
      assert.equal(first.status, 202, JSON.stringify(first.body));
      const granted = await h.admin('POST', `/v1/approvals/${first.body.approvalId}/approve`, {});
      assert.equal(granted.status, 200, JSON.stringify(granted.body));
      const third = await pay(C, D);
      assert.equal(third.status, 200, JSON.stringify(third.body));
      assert.ok(third.body.signature, JSON.stringify(third.body));
    });
  });
}
