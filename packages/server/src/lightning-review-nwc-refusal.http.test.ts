// An NWC wallet's refusal is not final while another copy of the request may still arrive (found by review).
// Airlock sends each pay_invoice through every relay of the connection. Relay 1 delivers copy A, the wallet answers
// RATE_LIMITED (or PAYMENT_FAILED), the confirming lookup_invoice says NOT_FOUND (or failed): Airlock recorded the
// payment failed and released its hold at once; relay 2 delivered copy B seconds later, and a wallet that does not
// de-duplicate paid it: money moved, nothing charged (the reconciler reads only payments in flight). Now the payment
// stays in flight, its hold kept, until the pay timeout plus AIRLOCK_LIGHTNING_NOT_FOUND_GRACE has passed; the
// reconciler then finishes it from a lookup, failed, or charged once if the wallet paid meanwhile.
// Over the real HTTP app, with the real NwcBackend and the NIP-47 wallet-service double over a loopback relay.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BITCOIN_CHAINS, bitcoinAsset, COUNT_ASSET, seriesFor } from '@airlock/core';
import { provisionAgent, type Harness } from './testing/harness.ts';
import { startNwcStack, type NwcStack } from './testing/nwc-stack.ts';

const BTC = bitcoinAsset(BITCOIN_CHAINS.regtest);
const policy = { version: 1, rules: [{ type: 'allow', name: 'pay', match: { actions: ['lightning.pay'] } }, { type: 'budget', name: 'daily', asset: BTC, max: '100000000', window: '24h' }] };
/** The stack's pay timeout (1 s) plus its not-found grace (60 s), and a moment. */
const PAST_GRACE_MS = 61_000 + 1_000;

describe('Lightning over NWC: a refusal stands only once no copy of the request can still arrive', () => {
  let stack: NwcStack;
  let h: Harness;
  before(async () => {
    stack = await startNwcStack('sqlite', { manualClock: true });
    ({ h } = stack);
  });
  after(() => stack.close());

  const used = async (agentId: string) => {
    const [btc, count] = await h.airlock.store.transaction((tx) => tx.windowTotals([{ series: seriesFor.agent(agentId), asset: BTC, sinceMs: 0 }, { series: seriesFor.agent(agentId), asset: COUNT_ASSET, sinceMs: 0 }]));
    return { amount: btc!.amount, count: count!.count };
  };
  const auditOf = async (agentName: string, type: string) => (await h.admin('GET', `/v1/audit?agent=${agentName}&type=${type}&limit=1000`)).body.entries as any[];
  const paymentOf = async (token: string, id: string) => (await h.call('GET', `/v1/lightning/payments/${id}`, { token })).body;
  const reconcile = async () => (await h.admin('POST', '/v1/lightning/reconcile')).body;

  for (const refusal of ['RATE_LIMITED', 'PAYMENT_FAILED'] as const) {
    test(`${refusal}, then a lookup that finds nothing paid: the hold stays until the grace, then the reconciler releases it`, async () => {
      const { agent, token } = await provisionAgent(h, { policy, actions: ['lightning.pay'] });
      const issued = stack.network.payee().invoice({ amountMsat: 100_000n });
      // RATE_LIMITED: refused before trying, the lookup says NOT_FOUND. PAYMENT_FAILED: tried, failed, the lookup says failed.
      if (refusal === 'RATE_LIMITED') stack.wallet.refuse(issued.paymentHash, 'RATE_LIMITED');
      else stack.network.script(issued.paymentHash, { kind: 'fail', reason: 'no_route' });

      const res = await h.call('POST', '/v1/lightning/pay', { token, body: { invoice: issued.invoice, maxFeeMsat: '1000' } });
      assert.equal(res.status, 202, JSON.stringify(res.body));
      assert.equal(res.body.status, 'in_flight');
      assert.equal((await paymentOf(token, res.body.paymentId)).status, 'in_flight');
      assert.deepEqual(await used(agent.id), { amount: 101_000n, count: 1 }, 'the amount and the fee limit stay held');

      // Within the grace another copy may still be delivered: the reconciler's lookup changes nothing.
      assert.deepEqual(await reconcile(), { checked: 1, succeeded: 0, failed: 0, errors: 0 });
      assert.deepEqual(await used(agent.id), { amount: 101_000n, count: 1 });

      h.clock!.advance(PAST_GRACE_MS);
      assert.deepEqual(await reconcile(), { checked: 1, succeeded: 0, failed: 1, errors: 0 });
      const payment = await paymentOf(token, res.body.paymentId);
      assert.equal(payment.status, 'failed');
      assert.equal(payment.reason, refusal === 'RATE_LIMITED' ? 'not_found_after_grace' : 'payment_failed');
      assert.deepEqual(await used(agent.id), { amount: 0n, count: 1 }, 'released once no copy can arrive');
      const [failed, ...more] = await auditOf(agent.name, 'lightning.failed');
      assert.equal(more.length, 0);
      assert.equal(failed.data.evidence, 'lookup');
      assert.ok(!stack.network.isPaid(issued.paymentHash));
    });
  }

  test('RATE_LIMITED and a lookup that finds nothing, then another relay\'s copy is paid: charged once, never released', async () => {
    const { agent, token } = await provisionAgent(h, { policy, actions: ['lightning.pay'] });
    const issued = stack.network.payee().invoice({ amountMsat: 100_000n });
    stack.wallet.refuse(issued.paymentHash, 'RATE_LIMITED');
    const res = await h.call('POST', '/v1/lightning/pay', { token, body: { invoice: issued.invoice, maxFeeMsat: '1000' } });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    assert.deepEqual(await used(agent.id), { amount: 101_000n, count: 1 });

    // Copy B, delivered by a second relay seconds later, to a wallet that does not de-duplicate: paid.
    const wallet = stack.wallet as unknown as { pay: (invoice: string, amount: number | undefined, chain: string) => Promise<unknown> };
    await wallet.pay(issued.invoice, undefined, 'regtest');
    assert.ok(stack.network.isPaid(issued.paymentHash));

    assert.deepEqual(await reconcile(), { checked: 1, succeeded: 1, failed: 0, errors: 0 });
    const payment = await paymentOf(token, res.body.paymentId);
    assert.equal(payment.status, 'succeeded');
    assert.equal(payment.preimage, issued.preimage);
    assert.deepEqual(await used(agent.id), { amount: 100_000n + BigInt(payment.feeMsat), count: 1 }, 'charged the amount and the fee paid, once');
    assert.equal((await auditOf(agent.name, 'lightning.succeeded')).length, 1);
    assert.equal((await auditOf(agent.name, 'lightning.failed')).length, 0);
    h.clock!.advance(PAST_GRACE_MS);
    assert.deepEqual(await reconcile(), { checked: 0, succeeded: 0, failed: 0, errors: 0 });
    assert.deepEqual(await used(agent.id), { amount: 100_000n + BigInt(payment.feeMsat), count: 1 });
  });
});
