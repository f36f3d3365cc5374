// A payee's route hints cannot make a payment cost more than its fee limit (found by review). The `r` fields of a
// BOLT 11 invoice are the payee's to write: a hostile L402 server or payee issues a genuine invoice for 1,000 sat
// whose only hint passes a hop charging a base fee of 4,294,967,295 msat (about 4,295 sat) or a huge proportional
// fee. An NWC wallet is handed no fee limit (`pay_invoice` has no such parameter) and routes through the hint;
// policy and budgets had judged the agent's maxFeeMsat ("0"), and Airlock charged the wallet's reported fee after the
// fact, past the budget, with only an alert. Now such an invoice is refused before anything is held or paid.
// Driven over the real HTTP app, with the real NwcBackend and the NIP-47 wallet-service double over a loopback relay;
// the invoices are real signed BOLT 11 invoices carrying the hints.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BITCOIN_CHAINS, bitcoinAsset, COUNT_ASSET, seriesFor } from '@airlock/core';
import { LightningNetwork, SimulatedBackend, TestNode } from '../../../testing/lightning-network.ts';
import { provisionAgent, startHarness, type Harness } from './testing/harness.ts';
import { startNwcStack, type NwcStack } from './testing/nwc-stack.ts';

const BTC = bitcoinAsset(BITCOIN_CHAINS.regtest);
const policy = { version: 1, rules: [{ type: 'allow', name: 'pay', match: { actions: ['lightning.pay'] } }, { type: 'budget', name: 'daily', asset: BTC, max: '1100000', window: '24h' }] };
const hop = (feeBaseMsat: number, feeProportionalMillionths: number) => ({ pubkey: new TestNode().nodeId, feeBaseMsat, feeProportionalMillionths });
const U32_MAX = 4_294_967_295;

describe('Lightning over LND: a costly route hint is left to the node, which holds the fee limit', () => {
  test('an invoice with a costly hint is paid within the limit (fee_limit_msat), not refused', async () => {
    const network = new LightningNetwork();
    network.feeBaseMsat = 10n;
    const h = await startHarness({ lightningBackend: new SimulatedBackend(network), config: { lightning: { backend: 'lnd', network: 'regtest', payTimeoutSeconds: 5, notFoundGraceSeconds: 60, defaultFeePercent: 1 } } });
    try {
      const { token } = await provisionAgent(h, { policy, actions: ['lightning.pay'] });
      const issued = network.payee().invoice({ amountMsat: 1_000_000n, routeHints: [[hop(U32_MAX, 0)]] });
      const res = await h.call('POST', '/v1/lightning/pay', { token, body: { invoice: issued.invoice, maxFeeMsat: '5000' } });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.intent.lightning.routeHintFeeMsat, String(U32_MAX));
      assert.ok(BigInt(res.body.feeMsat) <= 5000n);
      assert.ok(network.isPaid(issued.paymentHash));
    } finally {
      await h.close();
    }
  });
});

describe('Lightning over NWC: route hints that cost more than the fee limit', () => {
  let stack: NwcStack;
  let h: Harness;
  before(async () => {
    stack = await startNwcStack('sqlite');
    ({ h } = stack);
  });
  after(() => stack.close());

  const used = async (agentId: string) => {
    const [btc, count] = await h.airlock.store.transaction((tx) => tx.windowTotals([{ series: seriesFor.agent(agentId), asset: BTC, sinceMs: 0 }, { series: seriesFor.agent(agentId), asset: COUNT_ASSET, sinceMs: 0 }]));
    return { amount: btc!.amount, count: count!.count };
  };

  test('every hint path too expensive: refused with lightning_route_hint_fee_too_high before anything is paid or charged, and audited', async () => {
    const { agent, token } = await provisionAgent(h, { policy, actions: ['lightning.pay'] });
    // One hint with a hop's base fee at its u32 maximum, one whose second hop charges a huge proportional fee.
    const issued = stack.network.payee().invoice({ amountMsat: 1_000_000n, routeHints: [[hop(U32_MAX, 0)], [hop(0, 0), hop(0, 4_000_000_000)]] });
    for (const [maxFeeMsat, limit] of [['0', '0'], [undefined, '10000']] as const) {
      const res = await h.call('POST', '/v1/lightning/pay', { token, body: { invoice: issued.invoice, ...(maxFeeMsat !== undefined ? { maxFeeMsat } : {}) } });
      assert.equal(res.status, 400, JSON.stringify(res.body));
      assert.equal(res.body.error.code, 'lightning_route_hint_fee_too_high');
      // The costliest hint path: 4,294,967,295 msat (the other costs 1,000,000 x 4,000,000,000 / 10^6).
      assert.deepEqual(res.body.error.details, { maxFeeMsat: limit, routeHintFeeMsat: String(U32_MAX) });
    }
    assert.equal(stack.wallet.received.filter((r) => r.method === 'pay_invoice').length, 0, 'the wallet was never asked to pay');
    assert.ok(!stack.network.attempts.includes(issued.paymentHash));
    assert.deepEqual(await used(agent.id), { amount: 0n, count: 0 }, 'nothing held or charged');
    assert.deepEqual((await h.admin('GET', `/v1/lightning/payments?agent=${agent.name}`)).body.payments, []);
    const entries = (await h.admin('GET', `/v1/audit?agent=${agent.name}&type=sign.request`)).body.entries as any[];
    assert.deepEqual(entries.map((e) => [e.decision, e.data.errorCode]), [['error', 'lightning_route_hint_fee_too_high'], ['error', 'lightning_route_hint_fee_too_high']]);

    // A dry run says the same, and a limit that covers every hint is judged by policy as usual (here: over budget).
    const dry = await h.call('POST', '/v1/dry-run', { token, body: { action: 'lightning.pay', payload: { invoice: issued.invoice, maxFeeMsat: '0' } } });
    assert.equal(dry.body.error?.code, 'lightning_route_hint_fee_too_high', JSON.stringify(dry.body));
    const covered = await h.call('POST', '/v1/lightning/pay', { token, body: { invoice: issued.invoice, maxFeeMsat: String(U32_MAX) } });
    assert.equal(covered.status, 403, JSON.stringify(covered.body));
    assert.deepEqual(covered.body.error.violations.map((v: { code: string }) => v.code), ['budget_exceeded']);
    assert.equal(stack.wallet.received.filter((r) => r.method === 'pay_invoice').length, 0);
  });

  test('a free decoy hint beside a costly one is refused too (the wallet would try the decoy, fail, and take the other)', async () => {
    // Found by a review of the first form, which refused only when every hint cost more than the limit.
    const { agent, token } = await provisionAgent(h, { policy, actions: ['lightning.pay'] });
    const issued = stack.network.payee().invoice({ amountMsat: 1_000_000n, routeHints: [[hop(0, 0)], [hop(U32_MAX, 0)]] });
    const res = await h.call('POST', '/v1/lightning/pay', { token, body: { invoice: issued.invoice, maxFeeMsat: '5000' } });
    assert.deepEqual([res.status, res.body.error?.code, res.body.error?.details], [400, 'lightning_route_hint_fee_too_high', { maxFeeMsat: '5000', routeHintFeeMsat: String(U32_MAX) }]);
    assert.equal(stack.wallet.received.filter((r) => r.method === 'pay_invoice').length, 0, 'the wallet was never asked to pay');
    assert.deepEqual(await used(agent.id), { amount: 0n, count: 0 });
  });

  test('an invoice whose hints all cost less than the limit pays', async () => {
    const { agent, token } = await provisionAgent(h, { policy, actions: ['lightning.pay'] });
    const issued = stack.network.payee().invoice({ amountMsat: 1_000_000n, routeHints: [[hop(0, 0)], [hop(1_000, 100)]] });
    const res = await h.call('POST', '/v1/lightning/pay', { token, body: { invoice: issued.invoice, maxFeeMsat: '5000' } });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.status, 'succeeded');
    assert.equal(res.body.intent.lightning.routeHints, 2);
    assert.equal(res.body.intent.lightning.routeHintFeeMsat, '1100');
    assert.ok(stack.network.isPaid(issued.paymentHash));
    assert.deepEqual(await used(agent.id), { amount: 1_000_000n + BigInt(res.body.feeMsat), count: 1 });
  });
});
