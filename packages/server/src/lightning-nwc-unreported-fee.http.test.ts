// A wallet that does not say what a payment's route cost (NIP-47 makes `fees_paid` optional) behind the real
// NwcBackend, over the real HTTP app. NWC has no fee-limit parameter, so the wallet pays what its own fee reserve
// allows whatever limit the agent named. Found by review: such a payment was charged the request's `maxFeeMsat`,
// which the agent chooses (0 is accepted), so an agent paid routes for free against its budgets; and a wallet whose
// records never carry `fees_paid` left a payment whose answer was lost in flight forever (its lookup threw), the
// hold never released. Now the fee is charged as at least the default limit for the amount, the
// `lightning.succeeded` entry says `feeUnreported`, and an `alert.lightning` (`fee_unreported`) tells operators.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { BITCOIN_CHAINS, bitcoinAsset, COUNT_ASSET, seriesFor } from '@airlock/core';
import type { LightningNetwork } from '../../../testing/lightning-network.ts';
import type { TestWalletService } from '../../../testing/nwc-wallet-service/wallet-service.ts';
import { provisionAgent, type Harness } from './testing/harness.ts';
import { startNwcStack, type NwcStack } from './testing/nwc-stack.ts';

const BTC = bitcoinAsset(BITCOIN_CHAINS.regtest);
const policy = { version: 1, rules: [{ type: 'allow', name: 'pay', match: { actions: ['lightning.pay'] } }, { type: 'budget', name: 'daily', asset: BTC, max: '100000000', window: '24h' }] };

async function used(h: Harness, agentId: string): Promise<{ amount: bigint; count: number }> {
  const [btc, count] = await h.airlock.store.transaction((tx) => tx.windowTotals([{ series: seriesFor.agent(agentId), asset: BTC, sinceMs: 0 }, { series: seriesFor.agent(agentId), asset: COUNT_ASSET, sinceMs: 0 }]));
  return { amount: btc!.amount, count: count!.count };
}

async function auditOf(h: Harness, agentName: string, type: string): Promise<any[]> {
  return (await h.admin('GET', `/v1/audit?agent=${agentName}&type=${type}&limit=1000`)).body.entries;
}

describe('an NWC wallet that never reports fees_paid', () => {
  let h: Harness;
  let ln: LightningNetwork;
  let wallet: TestWalletService;
  let stack: NwcStack;
  before(async () => {
    // Default fee limit: 1 % of the amount, at least 1,000 msat.
    stack = await startNwcStack('sqlite', { wallet: { omitFeesPaid: true }, requestTimeoutMs: 5_000 });
    ({ h, network: ln, wallet } = stack);
  });
  after(() => stack.close());

  test('a request naming a fee limit of 0 is charged the default limit for its amount, and operators are alerted', async () => {
    const { agent, token } = await provisionAgent(h, { policy, actions: ['lightning.pay'] });
    const invoice = ln.payee().invoice({ amountMsat: 1_000_000n });
    ln.script(invoice.paymentHash, { kind: 'succeed', feeMsat: 7_000n });
    const res = await h.call('POST', '/v1/lightning/pay', { token, body: { invoice: invoice.invoice, maxFeeMsat: '0' } });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.status, 'succeeded');
    assert.equal(res.body.feeMsat, '10000');
    // The wallet paid 7,000 msat of fees it did not report: charging the agent's 0 let it route for free.
    assert.deepEqual(await used(h, agent.id), { amount: 1_010_000n, count: 1 });
    const [succeeded] = await auditOf(h, agent.name, 'lightning.succeeded');
    assert.equal(succeeded.data.feeMsat, '10000');
    assert.equal(succeeded.data.feeUnreported, true);
    const alerts = (await auditOf(h, agent.name, 'alert.lightning')).map((e) => e.data);
    assert.deepEqual(alerts.map((a) => [a.reason, a.feeMsat, a.maxFeeMsat]), [['fee_unreported', '10000', '0']]);
  });

  test('a limit above the default is what is charged (never less than the request allowed)', async () => {
    const { agent, token } = await provisionAgent(h, { policy, actions: ['lightning.pay'] });
    const invoice = ln.payee().invoice({ amountMsat: 1_000_000n });
    ln.script(invoice.paymentHash, { kind: 'succeed', feeMsat: 7_000n });
    const res = await h.call('POST', '/v1/lightning/pay', { token, body: { invoice: invoice.invoice, maxFeeMsat: '25000' } });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(await used(h, agent.id), { amount: 1_025_000n, count: 1 });
    assert.deepEqual((await auditOf(h, agent.name, 'alert.lightning')).map((e) => e.data.reason), ['fee_unreported']);
  });

  test('a payment whose answer was lost is charged by the reconciler from a record without fees_paid (not left in flight)', async () => {
    const { agent, token } = await provisionAgent(h, { policy, actions: ['lightning.pay'] });
    const invoice = ln.payee().invoice({ amountMsat: 500_000n });
    ln.script(invoice.paymentHash, { kind: 'succeed', feeMsat: 3_000n });
    // The wallet answers only after Airlock stopped waiting (a late relay, a busy wallet).
    const w = wallet as unknown as { pay: (...a: unknown[]) => Promise<unknown> };
    const original = w.pay.bind(wallet);
    w.pay = async (...a: unknown[]) => {
      await new Promise((r) => setTimeout(r, 2_500));
      return original(...a);
    };
    try {
      const res = await h.call('POST', '/v1/lightning/pay', { token, body: { invoice: invoice.invoice, maxFeeMsat: '0' } });
      assert.equal(res.status, 202, JSON.stringify(res.body));
      assert.equal(res.body.status, 'in_flight');
      const until = Date.now() + 10_000;
      while (wallet.payments.get(invoice.paymentHash)?.state !== 'settled') {
        if (Date.now() > until) throw new Error('the wallet never settled the payment');
        await new Promise((r) => setTimeout(r, 20));
      }
    } finally {
      w.pay = original;
    }
    // Without the fix the lookup threw ("settled but not the fee"): checked 1, errors 1, and the hold stayed.
    assert.deepEqual((await h.admin('POST', '/v1/lightning/reconcile')).body, { checked: 1, succeeded: 1, failed: 0, errors: 0 });
    assert.deepEqual(await used(h, agent.id), { amount: 505_000n, count: 1 });
    const [succeeded] = await auditOf(h, agent.name, 'lightning.succeeded');
    assert.deepEqual([succeeded.data.feeMsat, succeeded.data.feeUnreported, succeeded.data.evidence], ['5000', true, 'lookup']);
    assert.deepEqual((await auditOf(h, agent.name, 'alert.lightning')).map((e) => e.data.reason), ['fee_unreported']);
  });
});
