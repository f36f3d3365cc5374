// What a Lightning backend says about a payment hash is not always about this request's payment (found by review).
// Three attacks through the HTTP API, each against a real backend client over its real protocol:
// - NWC (NwcBackend, NIP-47 over a loopback relay, testing/nwc-wallet-service): the wallet pays one copy of the
//   request (Airlock sends one per relay), refuses another with RATE_LIMITED, and does not answer the confirming
//   lookup. A refusal confirmed by nothing released the hold, and the budget paid a second invoice.
// - LND (LndRestBackend against testing/lnd-rest-double): the operator paid an amountless invoice from the same node
//   (lncli); the agent sent the same invoice naming 1 msat, LND refused the duplicate, and the lookup of the
//   operator's payment was taken for the agent's: 200, the operator's preimage, 1 msat charged.
// - A success read back with another amount than the request holds is not concluded: the hold stays, an alert.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { BITCOIN_CHAINS, bitcoinAsset } from '@airlock/core';
import { LightningNetwork } from '../../../testing/lightning-network.ts';
import { startLndRestDouble, type LndRestDouble } from '../../../testing/lnd-rest-double/server.ts';
import { LndRestBackend } from './lightning/lnd-rest.ts';
import { provisionAgent, startHarness, type Harness, type StoreKind } from './testing/harness.ts';
import { startNwcStack, type NwcStack } from './testing/nwc-stack.ts';

const BTC = bitcoinAsset(BITCOIN_CHAINS.regtest);
const sha256hex = (hex: string) => createHash('sha256').update(Buffer.from(hex, 'hex')).digest('hex');

for (const store of ['sqlite', 'postgres'] as StoreKind[]) {
  describe(`Lightning: a backend's record of a hash is not always this request's payment (${store})`, () => {
    describe('NWC', () => {
      let stack: NwcStack;
      let h: Harness;
      let wallet: NwcStack['wallet'];
      let network: NwcStack['network'];
      before(async () => {
        stack = await startNwcStack(store);
        ({ h, wallet, network } = stack);
      });
      after(async () => stack.close());
      const spent = async (agentId: string) => (await h.airlock.store.transaction((tx) => tx.windowTotals([{ series: `agent:${agentId}`, asset: BTC, sinceMs: 0 }])))[0]!.amount;

      test('a refusal the lookup did not confirm keeps the hold: the released budget cannot pay a second invoice', async () => {
        const policy = { version: 1, rules: [{ type: 'allow', name: 'pay', match: { actions: ['lightning.pay'] } }, { type: 'budget', name: 'daily', asset: BTC, max: '101000', window: '24h' }] };
        const { token, agent } = await provisionAgent(h, { policy, actions: ['lightning.pay'] });
        const payee = network.payee();
        const one = payee.invoice({ amountMsat: 100_000n });
        const two = payee.invoice({ amountMsat: 100_000n });
        wallet.refuseWhilePaying(one.paymentHash, 'RATE_LIMITED');
        wallet.silenceLookups(one.paymentHash);

        const first = await h.call('POST', '/v1/lightning/pay', { token, body: { invoice: one.invoice } });
        assert.equal(first.status, 202, JSON.stringify(first.body));
        assert.equal(first.body.status, 'in_flight');
        assert.equal(await spent(agent.id), 101_000n, 'the amount and the fee limit stay held');

        const second = await h.call('POST', '/v1/lightning/pay', { token, body: { invoice: two.invoice } });
        assert.equal(second.status, 403, JSON.stringify(second.body));
        assert.deepEqual(second.body.error.violations.map((v: { code: string }) => v.code), ['budget_exceeded']);
        assert.equal(network.isPaid(two.paymentHash), false);

        // The wallet answers again: the reconciler learns the payment succeeded and charges it once.
        assert.equal(network.isPaid(one.paymentHash), true);
        wallet.answerLookups(one.paymentHash);
        const rec = await h.admin('POST', '/v1/lightning/reconcile');
        assert.equal(rec.body.succeeded, 1, JSON.stringify(rec.body));
        const paid = await h.call('GET', `/v1/lightning/payments/${first.body.paymentId}`, { token });
        assert.equal(paid.body.status, 'succeeded');
        assert.equal(sha256hex(paid.body.preimage), one.paymentHash);
        assert.equal(await spent(agent.id), 100_000n + BigInt(paid.body.feeMsat));
      });

      test('a success read back for another amount than the request holds is not concluded: the hold stays and an operator is told', async () => {
        const policy = { version: 1, rules: [{ type: 'allow', name: 'pay', match: { actions: ['lightning.pay'] } }] };
        const { token, agent } = await provisionAgent(h, { policy, actions: ['lightning.pay'] });
        const issued = network.payee().invoice({ amountMsat: 50_000n });
        network.script(issued.paymentHash, { kind: 'hang' });
        const res = await h.call('POST', '/v1/lightning/pay', { token, body: { invoice: issued.invoice } });
        assert.equal(res.status, 202, JSON.stringify(res.body));
        network.release(issued.paymentHash, { succeed: true });
        await waitFor(() => wallet.payments.get(issued.paymentHash)?.state === 'settled');
        wallet.reportAmount(issued.paymentHash, 5_000_000n);

        await h.admin('POST', '/v1/lightning/reconcile');
        const payment = await h.call('GET', `/v1/lightning/payments/${res.body.paymentId}`, { token });
        assert.equal(payment.body.status, 'in_flight');
        assert.equal(payment.body.preimage, undefined);
        assert.equal(await spent(agent.id), 50_000n + BigInt(res.body.maxFeeMsat), 'still held at the amount and fee limit asked');
        const alerts = await h.admin('GET', `/v1/audit?agent=${agent.name}&type=alert.lightning`);
        assert.ok(alerts.body.entries.some((e: { data: { reason: string; reportedMsat?: string } }) => e.data.reason === 'amount_mismatch' && e.data.reportedMsat === '5000000'), JSON.stringify(alerts.body.entries));
      });
    });

    describe('LND', () => {
      let h: Harness;
      let lnd: LndRestDouble;
      let network: LightningNetwork;
      let operatorsLncli: LndRestBackend;
      before(async () => {
        network = new LightningNetwork();
        lnd = await startLndRestDouble({ network });
        const connect = () => new LndRestBackend({ url: lnd.url, macaroon: { hex: lnd.adminMacaroonHex }, tlsCert: { pem: lnd.certPem }, network: 'regtest', payGraceSeconds: 0.4, requestTimeoutMs: 2_000 });
        operatorsLncli = connect();
        h = await startHarness({ store, lightningBackend: connect(), config: { lightning: { backend: 'lnd' as const, network: 'regtest' as const, payTimeoutSeconds: 5, notFoundGraceSeconds: 60, defaultFeePercent: 1 } } });
      });
      after(async () => {
        await h.close();
        await operatorsLncli.close();
        await lnd.close();
      });

      test("an invoice the node paid outside Airlock: refused, no preimage, nothing charged", async () => {
        const issued = network.payee().invoice({}); // amountless
        const theirs = await operatorsLncli.pay({ invoice: issued.invoice, paymentHash: issued.paymentHash, amountMsat: 1_000_000n, maxFeeMsat: 10_000n, timeoutSeconds: 30 });
        assert.equal(theirs.status, 'succeeded');

        const policy = { version: 1, rules: [{ type: 'allow', name: 'tips', match: { actions: ['lightning.pay'], kinds: ['lightning.amountless_payment'] } }] };
        const { token, agent } = await provisionAgent(h, { policy, actions: ['lightning.pay'] });
        const res = await h.call('POST', '/v1/lightning/pay', { token, body: { invoice: issued.invoice, amountMsat: '1' } });
        assert.equal(res.status, 502, JSON.stringify(res.body));
        assert.equal(res.body.error.code, 'lightning_payment_failed');
        assert.equal(res.body.error.details.reason, 'paid_outside_airlock');
        assert.ok(!JSON.stringify(res.body).includes(theirs.status === 'succeeded' ? theirs.preimage : '?'), 'the operator\'s preimage is not handed out');
        const payment = await h.call('GET', `/v1/lightning/payments/${res.body.error.details.paymentId}`, { token });
        assert.equal(payment.body.status, 'failed');
        assert.equal(payment.body.preimage, undefined);
        const charged = (await h.airlock.store.transaction((tx) => tx.windowTotals([{ series: `agent:${agent.id}`, asset: BTC, sinceMs: 0 }])))[0]!.amount;
        assert.equal(charged, 0n);
        const audit = await h.admin('GET', `/v1/audit?agent=${agent.name}&type=lightning.failed`);
        assert.equal(audit.body.entries.length, 1);
        assert.equal(audit.body.entries[0].data.reason, 'paid_outside_airlock');
        assert.equal((await h.admin('GET', `/v1/audit?agent=${agent.name}&type=lightning.succeeded`)).body.entries.length, 0);
      });
    });
  });
}

async function waitFor(condition: () => boolean, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}
