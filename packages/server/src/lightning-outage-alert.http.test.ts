// A Lightning backend that cannot answer for a payment past its timeout is an outage an operator must hear about
// (`alert.lightning`, `backend_unavailable`). It was appended every reconcile round (every few seconds by default)
// for as long as the outage lasted, each one firing the `alert.*` webhooks. It is told once when first seen, again
// every hour while it lasts (`reminder: true`, the same `since`), and told anew after a round where the backend
// answered every lookup. Holds stay throughout: silence releases nothing.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BITCOIN_CHAINS, OUTAGE_REMINDER_MS, bitcoinAsset } from '@airlock/core';
import { LightningNetwork, SimulatedBackend } from '../../../testing/lightning-network.ts';
import { provisionAgent, startHarness, type Harness, type StoreKind } from './testing/harness.ts';

const BTC = bitcoinAsset(BITCOIN_CHAINS.regtest);
const LIGHTNING = { backend: 'lnd' as const, network: 'regtest' as const, payTimeoutSeconds: 2, notFoundGraceSeconds: 86_400, defaultFeePercent: 1 };

interface OutageAlert { at: string; data: { reason: string; payments: number; since: string; reminder?: boolean } }

for (const store of ['sqlite', 'postgres'] as StoreKind[]) {
  describe(`Lightning: a backend outage is alerted once, then hourly, not every round (${store})`, () => {
    let h: Harness;
    let ln: LightningNetwork;
    let backend: SimulatedBackend;
    before(async () => {
      ln = new LightningNetwork();
      backend = new SimulatedBackend(ln);
      h = await startHarness({ store, manualClock: true, lightningBackend: backend, config: { lightning: LIGHTNING } });
    });
    after(async () => h.close());

    const outageAlerts = async (): Promise<OutageAlert['data'][]> => {
      const res = await h.admin('GET', '/v1/audit?type=alert.lightning&limit=1000');
      assert.equal(res.status, 200, JSON.stringify(res.body));
      return (res.body.entries as OutageAlert[]).filter((e) => e.data.reason === 'backend_unavailable').map((e) => e.data);
    };
    const rounds = async (n: number) => {
      for (let i = 0; i < n; i++) {
        const round = await h.admin('POST', '/v1/lightning/reconcile');
        assert.equal(round.status, 200, JSON.stringify(round.body));
      }
    };
    const heldMsat = async (agentId: string) => (await h.airlock.store.transaction((tx) => tx.windowTotals([{ series: `agent:${agentId}`, asset: BTC, sinceMs: 0 }])))[0]!.amount;

    test('one alert per outage and an hourly reminder; a round the backend answers ends it, and the next outage is told again', async () => {
      const { agent, token } = await provisionAgent(h, { policy: { version: 1, rules: [{ type: 'allow', name: 'pay', match: { actions: ['lightning.pay'] } }] }, actions: ['lightning.pay'] });
      const invoice = ln.payee().invoice({ amountMsat: 20_000n });
      backend.unreachable = true;
      h.clock!.set(Date.now());
      const res = await h.call('POST', '/v1/lightning/pay', { token, body: { invoice: invoice.invoice } });
      assert.equal(res.status, 202, JSON.stringify(res.body));
      const held = await heldMsat(agent.id);
      assert.ok(held >= 20_000n);

      // Within its timeout, an unanswered lookup is no outage yet.
      await rounds(2);
      assert.deepEqual(await outageAlerts(), []);

      h.clock!.advance((LIGHTNING.payTimeoutSeconds + 1) * 1000);
      const started = new Date(h.clock!.now()).toISOString();
      await rounds(5);
      let alerts = await outageAlerts();
      assert.deepEqual(alerts, [{ reason: 'backend_unavailable', backend: 'simulated', payments: 1, since: started }], 'one alert over five rounds');

      // Still down an hour later: reminded once, naming when it began.
      h.clock!.advance(OUTAGE_REMINDER_MS);
      await rounds(3);
      alerts = await outageAlerts();
      assert.equal(alerts.length, 2, JSON.stringify(alerts));
      assert.deepEqual([alerts[1]!.since, alerts[1]!.reminder], [started, true]);
      assert.equal(await heldMsat(agent.id), held, 'silence releases nothing');
      assert.equal((await h.admin('GET', `/v1/lightning/payments?agent=${agent.name}`)).body.payments[0].state, 'in_flight');

      // The backend answers a round (the payment is unknown to it, within the grace: still in flight), then goes away
      // again: a new outage, told at once.
      backend.unreachable = false;
      await rounds(1);
      backend.unreachable = true;
      h.clock!.advance(1000);
      const again = new Date(h.clock!.now()).toISOString();
      await rounds(3);
      alerts = await outageAlerts();
      assert.equal(alerts.length, 3, JSON.stringify(alerts));
      assert.deepEqual([alerts[2]!.since, alerts[2]!.reminder], [again, undefined]);
      assert.equal(await heldMsat(agent.id), held);
      backend.unreachable = false;
    });
  });
}
