// One payment in flight whose conclusion throws must not stop the reconcile round for the others (found by review).
// The reconciler concluded payments one after another with no guard: a stored invoice that no longer decoded (an
// operator who moved AIRLOCK_LIGHTNING_NETWORK, a damaged row) threw out of the round, every round, and no payment
// after it was ever concluded: their holds stayed forever and the agents' budgets with them. Now each payment is
// concluded on its own (an error is counted, an `alert.lightning` `finish_error` told once, its hold never released),
// and a stored payment is decoded with its own network, not the backend's current one.
// Over the real HTTP app, with the payment service's simulated backend (testing/lightning-network.ts).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DatabaseSync } from 'node:sqlite';
import { BITCOIN_CHAINS, bitcoinAsset, COUNT_ASSET, seriesFor } from '@airlock/core';
import { LightningNetwork, SimulatedBackend } from '../../../testing/lightning-network.ts';
import { provisionAgent, startHarness, type Harness } from './testing/harness.ts';

const BTC = bitcoinAsset(BITCOIN_CHAINS.regtest);
const policy = { version: 1, rules: [{ type: 'allow', name: 'pay', match: { actions: ['lightning.pay'] } }, { type: 'budget', name: 'daily', asset: BTC, max: '100000000', window: '24h' }] };
const LIGHTNING = { backend: 'lnd' as const, network: 'regtest' as const, payTimeoutSeconds: 1, notFoundGraceSeconds: 60, defaultFeePercent: 1 };

describe('Lightning reconcile: one payment that cannot be concluded does not stop the round', () => {
  let h: Harness;
  let ln: LightningNetwork;
  let backend: SimulatedBackend;
  before(async () => {
    ln = new LightningNetwork();
    backend = new SimulatedBackend(ln);
    h = await startHarness({ store: 'sqlite', lightningBackend: backend, config: { lightning: LIGHTNING } });
  });
  after(() => h.close());

  const used = async (agentId: string) => {
    const [btc, count] = await h.airlock.store.transaction((tx) => tx.windowTotals([{ series: seriesFor.agent(agentId), asset: BTC, sinceMs: 0 }, { series: seriesFor.agent(agentId), asset: COUNT_ASSET, sinceMs: 0 }]));
    return { amount: btc!.amount, count: count!.count };
  };
  /** Pays an invoice that hangs at the network: answered in flight, its hold kept. */
  const payHanging = async (token: string) => {
    const issued = ln.payee().invoice({ amountMsat: 50_000n });
    ln.script(issued.paymentHash, { kind: 'hang' });
    const res = await h.call('POST', '/v1/lightning/pay', { token, body: { invoice: issued.invoice, maxFeeMsat: '1000' } });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    return { issued, paymentId: res.body.paymentId as string };
  };

  test('a stored invoice that no longer decodes: the round goes on, the other payment is charged; the broken one keeps its hold and is alerted once', async () => {
    const broken = await provisionAgent(h, { policy, actions: ['lightning.pay'] });
    const healthy = await provisionAgent(h, { policy, actions: ['lightning.pay'] });
    const first = await payHanging(broken.token); // the older one: concluded first in the round
    await new Promise((r) => setTimeout(r, 5));
    const second = await payHanging(healthy.token);
    // A damaged row: the stored invoice's checksum no longer holds.
    const db = new DatabaseSync(h.config.storeUrl.replace(/^sqlite:/, ''));
    const stored = db.prepare('SELECT invoice FROM lightning_payments WHERE id = ?').get(first.paymentId) as { invoice: string };
    const last = stored.invoice.at(-1) === 'q' ? 'p' : 'q';
    db.prepare('UPDATE lightning_payments SET invoice = ? WHERE id = ?').run(stored.invoice.slice(0, -1) + last, first.paymentId);
    db.close();
    ln.release(first.issued.paymentHash, { succeed: true, feeMsat: 10n });
    ln.release(second.issued.paymentHash, { succeed: true, feeMsat: 20n });

    for (let round = 0; round < 2; round++) {
      const rec = await h.admin('POST', '/v1/lightning/reconcile');
      assert.equal(rec.status, 200, JSON.stringify(rec.body));
      assert.deepEqual(rec.body, round === 0 ? { checked: 2, succeeded: 1, failed: 0, errors: 1 } : { checked: 1, succeeded: 0, failed: 0, errors: 1 });
    }
    assert.equal((await h.call('GET', `/v1/lightning/payments/${second.paymentId}`, { token: healthy.token })).body.status, 'succeeded');
    assert.deepEqual(await used(healthy.agent.id), { amount: 50_020n, count: 1 });
    assert.equal((await h.call('GET', `/v1/lightning/payments/${first.paymentId}`, { token: broken.token })).body.status, 'in_flight');
    assert.deepEqual(await used(broken.agent.id), { amount: 51_000n, count: 1 }, 'never released on an error');
    const alerts = (await h.admin('GET', `/v1/audit?agent=${broken.agent.name}&type=alert.lightning`)).body.entries as any[];
    assert.deepEqual(alerts.map((e) => [e.data.reason, e.data.errorCode, e.data.paymentId]), [['finish_error', 'invoice_malformed', first.paymentId]], 'told once, not once per round');
  });

  test("a payment made before the backend's network was changed is concluded with its own network", async () => {
    const { agent, token } = await provisionAgent(h, { policy, actions: ['lightning.pay'] });
    const paid = await payHanging(token);
    ln.release(paid.issued.paymentHash, { succeed: true, feeMsat: 30n });
    const b = backend as unknown as { network: string };
    b.network = 'testnet'; // the operator moved AIRLOCK_LIGHTNING_NETWORK while the payment was in flight
    try {
      const rec = await h.admin('POST', '/v1/lightning/reconcile');
      assert.equal(rec.body.succeeded, 1, JSON.stringify(rec.body));
    } finally {
      b.network = 'regtest';
    }
    assert.equal((await h.call('GET', `/v1/lightning/payments/${paid.paymentId}`, { token })).body.status, 'succeeded');
    assert.deepEqual(await used(agent.id), { amount: 50_030n, count: 1 });
  });
});
