// A success Airlock cannot accept (here: the backend reports the payment paid for another amount than the request
// holds) keeps the hold and tells an operator with an `alert.lightning` entry. The reconciler asks again every round,
// and appended that entry again every round until an operator acted: the audit log (and every `alert.*` webhook)
// filled with copies of one alert. Each distinct alert (payment, reason, reported figures) is appended once, also
// by a service that did not raise it (a restart, another instance on the same store); a changed figure is a new one.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BITCOIN_CHAINS, LightningService, bitcoinAsset } from '@airlock/core';
import { provisionAgent, type Harness, type StoreKind } from './testing/harness.ts';
import { startNwcStack, type NwcStack } from './testing/nwc-stack.ts';

const BTC = bitcoinAsset(BITCOIN_CHAINS.regtest);

interface AlertEntry { type: string; data: { reason: string; paymentId?: string; reportedMsat?: string } }

for (const store of ['sqlite', 'postgres'] as StoreKind[]) {
  describe(`Lightning: an alert is appended once, not once per reconcile round (${store})`, () => {
    let stack: NwcStack;
    let h: Harness;
    let wallet: NwcStack['wallet'];
    let network: NwcStack['network'];
    let backend: NwcStack['backend'];
    before(async () => {
      stack = await startNwcStack(store);
      ({ h, wallet, network, backend } = stack);
    });
    after(async () => stack.close());
    const spent = async (agentId: string) => (await h.airlock.store.transaction((tx) => tx.windowTotals([{ series: `agent:${agentId}`, asset: BTC, sinceMs: 0 }])))[0]!.amount;
    const mismatches = async (agentName: string, paymentId: string): Promise<AlertEntry['data'][]> => {
      const res = await h.admin('GET', `/v1/audit?agent=${agentName}&type=alert.lightning&limit=1000`);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      return (res.body.entries as AlertEntry[]).filter((e) => e.data.paymentId === paymentId && e.data.reason === 'amount_mismatch').map((e) => e.data);
    };
    const rounds = async (n: number) => {
      for (let i = 0; i < n; i++) {
        const rec = await h.admin('POST', '/v1/lightning/reconcile');
        assert.equal(rec.status, 200, JSON.stringify(rec.body));
        assert.equal(rec.body.succeeded, 0, JSON.stringify(rec.body));
      }
    };

    test('amount_mismatch: one entry over several rounds, the hold still held; a changed reported amount is one new entry; a fresh service adds none', async () => {
      const policy = { version: 1, rules: [{ type: 'allow', name: 'pay', match: { actions: ['lightning.pay'] } }] };
      const { token, agent } = await provisionAgent(h, { policy, actions: ['lightning.pay'] });
      const issued = network.payee().invoice({ amountMsat: 50_000n });
      network.script(issued.paymentHash, { kind: 'hang' });
      const res = await h.call('POST', '/v1/lightning/pay', { token, body: { invoice: issued.invoice } });
      assert.equal(res.status, 202, JSON.stringify(res.body));
      const paymentId: string = res.body.paymentId;
      const held = 50_000n + BigInt(res.body.maxFeeMsat);
      network.release(issued.paymentHash, { succeed: true });
      await waitFor(() => wallet.payments.get(issued.paymentHash)?.state === 'settled');
      wallet.reportAmount(issued.paymentHash, 5_000_000n);

      await rounds(4);
      let alerts = await mismatches(agent.name, paymentId);
      assert.equal(alerts.length, 1, `one alert after 4 rounds: ${JSON.stringify(alerts)}`);
      assert.equal(alerts[0]!.reportedMsat, '5000000');
      const payment = await h.call('GET', `/v1/lightning/payments/${paymentId}`, { token });
      assert.equal(payment.body.status, 'in_flight');
      assert.equal(payment.body.preimage, undefined);
      assert.equal(await spent(agent.id), held, 'still held at the amount and fee limit asked');

      // The backend now reports yet another amount: a new alert, once.
      wallet.reportAmount(issued.paymentHash, 6_000_000n);
      await rounds(3);
      alerts = await mismatches(agent.name, paymentId);
      assert.deepEqual(alerts.map((a) => a.reportedMsat), ['5000000', '6000000'], JSON.stringify(alerts));

      // A service with nothing in memory (a restart, another instance on the same store) does not repeat them.
      const fresh = new LightningService(h.airlock.deps, h.airlock.signing, { backend, payTimeoutSeconds: 1, notFoundGraceSeconds: 60 });
      for (let i = 0; i < 2; i++) assert.equal((await fresh.reconcile()).succeeded, 0);
      await rounds(1);
      alerts = await mismatches(agent.name, paymentId);
      assert.deepEqual(alerts.map((a) => a.reportedMsat), ['5000000', '6000000'], JSON.stringify(alerts));
      assert.equal((await h.call('GET', `/v1/lightning/payments/${paymentId}`, { token })).body.status, 'in_flight');
      assert.equal(await spent(agent.id), held);
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
