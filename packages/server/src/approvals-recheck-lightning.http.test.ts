// A held Lightning payment is judged again under the policy in force when it is approved (as EVM requests are:
// approvals-recheck.http.test.ts): a cap lowered meanwhile refuses it (409 approval_policy_denies) and nothing is
// paid; a budget that the held payment fits by itself (amount + fee limit, its own hold not counted twice) pays it.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { BITCOIN_CHAINS, bitcoinAsset } from '@airlock/core';
import { LightningNetwork, SimulatedBackend } from '../../../testing/lightning-network.ts';
import { provisionAgent, startHarness, type Harness, type StoreKind } from './testing/harness.ts';

const BTC = bitcoinAsset(BITCOIN_CHAINS.regtest);
const ACTIONS = ['lightning.pay'];
const LIGHTNING = { backend: 'lnd' as const, network: 'regtest' as const, payTimeoutSeconds: 2, notFoundGraceSeconds: 60, defaultFeePercent: 1 };

function policy(payees: string[], perPayment: string, daily: string) {
  return {
    version: 1,
    sets: { shops: payees },
    rules: [
      { type: 'allow', name: 'pay-shops', match: { actions: ['lightning.pay'] } },
      { type: 'destinations', name: 'only-shops', allow: '$shops', match: { actions: ['lightning.pay'] } },
      { type: 'max_amount', name: 'per-payment', asset: BTC, max: perPayment },
      { type: 'budget', name: 'daily', asset: BTC, max: daily, window: '24h' },
      { type: 'approval_tier', name: 'big-by-hand', asset: BTC, above: '60000' },
    ],
  };
}

for (const store of ['sqlite', 'postgres'] as StoreKind[]) describe(`Lightning approvals judged under the policy in force at grant time (${store})`, () => {
  let h: Harness;
  let ln: LightningNetwork;
  let shop: ReturnType<LightningNetwork['payee']>;
  before(async () => {
    ln = new LightningNetwork();
    ln.feeBaseMsat = 10n; // 10 msat + 0.1 %: within the default fee limit (1 %, at least 1000 msat)
    shop = ln.payee();
    h = await startHarness({ store, manualClock: true, lightningBackend: new SimulatedBackend(ln), config: { lightning: LIGHTNING } });
  });
  after(async () => h.close());
  const pay = (token: string, invoice: string) => (h.clock!.set(Date.now()), h.call('POST', '/v1/lightning/pay', { token, body: { invoice } }));

  test('a per-payment cap lowered below the held invoice: approve is refused, the approval closed, nothing paid', async () => {
    const { agent, token } = await provisionAgent(h, { policy: policy([shop.node.nodeId], '120000', '500000'), actions: ACTIONS });
    const big = shop.invoice({ amountMsat: 100_000n });
    const held = await pay(token, big.invoice);
    assert.equal(held.status, 202, JSON.stringify(held.body));
    assert.equal((await h.admin('PUT', `/v1/policies/${agent.name}`, { document: policy([shop.node.nodeId], '90000', '500000') })).status, 200);

    const res = await h.admin('POST', `/v1/approvals/${held.body.approvalId}/approve`);
    assert.equal(res.status, 409, JSON.stringify(res.body));
    assert.equal(res.body.error.code, 'approval_policy_denies');
    assert.deepEqual(res.body.error.violations.map((v: any) => [v.rule, v.code]), [['agent/per-payment', 'amount_exceeds_max']]);
    assert.ok(!ln.isPaid(big.paymentHash), 'nothing paid');
    assert.equal(ln.attempts.filter((hash) => hash === big.paymentHash).length, 0, 'the backend was never asked');
    const approval = (await h.admin('GET', `/v1/approvals/${held.body.approvalId}`)).body;
    assert.deepEqual([approval.state, approval.decidedBy], ['denied', 'system']);
    const denied = (await h.admin('GET', `/v1/audit?agent=${agent.name}&type=approval.denied`)).body.entries;
    assert.deepEqual(denied.map((e: any) => [e.actor, e.data.reason, e.data.rules]), [['system', 'policy_denies', ['agent/per-payment']]]);
    const totals = await h.airlock.store.transaction((tx) => tx.windowTotals([{ series: `agent:${agent.id}`, asset: BTC, sinceMs: 0 }]));
    assert.equal(totals[0]!.amount, 0n, 'the hold was released');
  });

  test('a budget lowered to exactly the held worst case (amount + fee limit): the payment fits by itself and is paid', async () => {
    const { agent, token } = await provisionAgent(h, { policy: policy([shop.node.nodeId], '120000', '500000'), actions: ACTIONS });
    const big = shop.invoice({ amountMsat: 100_000n });
    const held = await pay(token, big.invoice);
    assert.equal(held.status, 202, JSON.stringify(held.body));
    assert.equal(held.body.intent.lightning.maxFeeMsat, '1000');
    assert.equal((await h.admin('PUT', `/v1/policies/${agent.name}`, { document: policy([shop.node.nodeId], '120000', '101000') })).status, 200);

    const res = await h.admin('POST', `/v1/approvals/${held.body.approvalId}/approve`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.result.status, 'succeeded', JSON.stringify(res.body.result));
    assert.ok(ln.isPaid(big.paymentHash));
    const [granted] = (await h.admin('GET', `/v1/audit?agent=${agent.name}&type=approval.granted`)).body.entries;
    assert.match(granted.data.policyVersion, /(^|,)agent@2:/);
  });
});
