// An invoice paid outside Airlock stays the operator's however often it is asked for (found by review). The operator
// paid an invoice from the node (lncli); the agent's pay call was refused by LND as a duplicate and failed
// `paid_outside_airlock`. Asking again, by the same agent or another, found that failed record, took it for an
// earlier attempt of Airlock's that might have made the payment, and concluded the operator's payment as the
// agent's: 200 with the operator's preimage, the agent charged, a `lightning.succeeded` entry for a payment Airlock
// never made. The same held after an attempt that failed on its own pay call (no route).
// Proves: only a record that may have paid (in flight, succeeded, charged after a failure, or failed on a conclusion
// drawn from the node's records rather than its own pay call's answer) makes a payment read back after a refused
// duplicate Airlock's; the last test is the control that such a record still does.
// LND: the LND REST double (testing/lnd-rest-double) behind the real LndRestBackend; SQLite and PostgreSQL.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { BITCOIN_CHAINS, bitcoinAsset, COUNT_ASSET, seriesFor, type LightningBackend } from '@airlock/core';
import { LightningNetwork } from '../../../../testing/lightning-network.ts';
import { startLndRestDouble, type LndRestDouble } from '../../../../testing/lnd-rest-double/server.ts';
import { LndRestBackend } from './lnd-rest.ts';
import { openAirlock } from '../runtime.ts';
import { provisionAgent, startHarness, TEST_PASSPHRASE, TEST_VAULT, type Harness, type StoreKind } from '../testing/harness.ts';

const BTC = bitcoinAsset(BITCOIN_CHAINS.regtest);
const ACTIONS = ['lightning.pay'];
const policy = { version: 1, rules: [{ type: 'allow', name: 'pay', match: { actions: ['lightning.pay'] } }] };
const sha256hex = (hex: string) => createHash('sha256').update(Buffer.from(hex, 'hex')).digest('hex');

async function waitFor(check: () => Promise<boolean> | boolean, ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}

for (const store of ['sqlite', 'postgres'] as StoreKind[]) describe(`Lightning: an invoice paid outside Airlock stays the operator's when asked for again (${store})`, () => {
  const LIGHTNING = { backend: 'lnd' as const, network: 'regtest' as const, payTimeoutSeconds: 2, notFoundGraceSeconds: 60, defaultFeePercent: 1 };
  let h: Harness;
  let ln: LightningNetwork;
  let lnd: LndRestDouble;
  let operatorsLncli: LndRestBackend;
  const backends: LndRestBackend[] = [];
  /**
   * The next pay call of instance A (only that one) waits for this, reaches LND, and then its answer is lost (a
   * connection dropped after LND took the payment): Airlock never hears that call's outcome.
   */
  let loseNextAnswer: Promise<void> | undefined;
  /** How far the manual clock runs ahead of the wall clock (grows only: records never date from the future). */
  let skew = 0;
  const connect = () => {
    const b = new LndRestBackend({ url: lnd.url, macaroon: { hex: lnd.adminMacaroonHex }, tlsCert: { pem: lnd.certPem }, network: 'regtest', payGraceSeconds: 0.4, requestTimeoutMs: 2_000 });
    backends.push(b);
    return b;
  };
  before(async () => {
    ln = new LightningNetwork();
    ln.feeBaseMsat = 10n;
    lnd = await startLndRestDouble({ network: ln });
    operatorsLncli = connect();
    const direct = connect();
    const viaA: LightningBackend = {
      kind: 'lnd',
      network: 'regtest',
      pay: async (r) => {
        const lose = loseNextAnswer;
        loseNextAnswer = undefined;
        if (!lose) return direct.pay(r);
        await lose;
        await direct.pay(r);
        throw new Error('the connection dropped after LND took the payment');
      },
      lookup: (hash) => direct.lookup(hash),
    };
    h = await startHarness({ store, manualClock: true, lightningBackend: viaA, config: { lightning: LIGHTNING } });
  });
  after(async () => {
    await h.close();
    for (const b of backends) await b.close();
    await lnd.close();
  });
  const syncClock = () => h.clock!.set(Date.now() + skew);
  const pay = (token: string, body: Record<string, unknown>) => (syncClock(), h.call('POST', '/v1/lightning/pay', { token, body }));
  const used = async (agentId: string) => {
    const [btc, count] = await h.airlock.store.transaction((tx) => tx.windowTotals([{ series: seriesFor.agent(agentId), asset: BTC, sinceMs: 0 }, { series: seriesFor.agent(agentId), asset: COUNT_ASSET, sinceMs: 0 }]));
    return { amount: btc!.amount, count: count!.count };
  };
  const auditOf = async (agentName: string, type: string): Promise<any[]> => (await h.admin('GET', `/v1/audit?agent=${agentName}&type=${type}&limit=1000`)).body.entries;
  /** An invoice the operator paid from the node (lncli), and that payment's preimage. */
  const paidByOperator = async (amountMsat: bigint) => {
    const issued = ln.payee().invoice({ amountMsat });
    const theirs = await operatorsLncli.pay({ invoice: issued.invoice, paymentHash: issued.paymentHash, maxFeeMsat: 10_000n, timeoutSeconds: 30 });
    assert.equal(theirs.status, 'succeeded');
    return { ...issued, operatorsPreimage: theirs.status === 'succeeded' ? theirs.preimage : '' };
  };
  const assertRefusedAsOutside = (res: { status: number; body: any }, operatorsPreimage: string) => {
    assert.equal(res.status, 502, JSON.stringify(res.body));
    assert.equal(res.body.error.code, 'lightning_payment_failed');
    assert.equal(res.body.error.details.reason, 'paid_outside_airlock');
    assert.ok(!JSON.stringify(res.body).includes(operatorsPreimage), "the operator's preimage is not in the answer");
  };

  test("the agent asks twice for an invoice the operator paid: both refused paid_outside_airlock, no preimage, nothing charged", async () => {
    const { token, agent } = await provisionAgent(h, { policy, actions: ACTIONS });
    const invoice = await paidByOperator(1_000_000n);
    assertRefusedAsOutside(await pay(token, { invoice: invoice.invoice }), invoice.operatorsPreimage);
    assertRefusedAsOutside(await pay(token, { invoice: invoice.invoice }), invoice.operatorsPreimage);
    assert.deepEqual(await used(agent.id), { amount: 0n, count: 2 }, 'no amount or fee charged; one request count per ask');
    assert.equal((await auditOf(agent.name, 'lightning.succeeded')).length, 0, 'no lightning.succeeded entry');
    assert.deepEqual((await auditOf(agent.name, 'lightning.failed')).map((e) => e.data.reason), ['paid_outside_airlock', 'paid_outside_airlock']);
    const payments = (await h.admin('GET', `/v1/lightning/payments?agent=${agent.name}`)).body.payments as any[];
    assert.deepEqual(payments.map((p) => [p.state, p.failureReason]), [['failed', 'paid_outside_airlock'], ['failed', 'paid_outside_airlock']]);
    for (const p of payments) assert.equal((await h.call('GET', `/v1/lightning/payments/${p.id}`, { token })).body.preimage, undefined);
    assert.equal((await h.admin('POST', '/v1/audit/verify')).body.ok, true);
  });

  test('another agent asking for that invoice afterwards is refused too: no preimage, nothing charged', async () => {
    const a = await provisionAgent(h, { policy, actions: ACTIONS });
    const b = await provisionAgent(h, { policy, actions: ACTIONS });
    const invoice = await paidByOperator(2_000_000n);
    assertRefusedAsOutside(await pay(a.token, { invoice: invoice.invoice }), invoice.operatorsPreimage);
    assertRefusedAsOutside(await pay(b.token, { invoice: invoice.invoice }), invoice.operatorsPreimage);
    assert.deepEqual(await used(b.agent.id), { amount: 0n, count: 1 });
    assert.equal((await auditOf(b.agent.name, 'lightning.succeeded')).length, 0);
  });

  test('an attempt that failed on its own pay call (no route) does not make the operator\'s later payment the agent\'s', async () => {
    const { token, agent } = await provisionAgent(h, { policy, actions: ACTIONS });
    const issued = ln.payee().invoice({ amountMsat: 300_000n });
    ln.script(issued.paymentHash, { kind: 'fail', reason: 'no_route' });
    const first = await pay(token, { invoice: issued.invoice });
    assert.equal(first.status, 502, JSON.stringify(first.body));
    assert.equal(first.body.error.details.reason, 'no_route');
    // The operator then pays it from the node (LND pays a FAILED payment hash again).
    ln.script(issued.paymentHash, { kind: 'succeed' });
    const theirs = await operatorsLncli.pay({ invoice: issued.invoice, paymentHash: issued.paymentHash, maxFeeMsat: 10_000n, timeoutSeconds: 30 });
    assert.equal(theirs.status, 'succeeded');
    assertRefusedAsOutside(await pay(token, { invoice: issued.invoice }), theirs.status === 'succeeded' ? theirs.preimage : '');
    assert.deepEqual(await used(agent.id), { amount: 0n, count: 2 });
    assert.equal((await auditOf(agent.name, 'lightning.succeeded')).length, 0);
  });

  test("an attempt Airlock recorded failed from the node's records (its pay call's answer lost) still counts: its payment, read back on the retry, is the agent's and charged once", async () => {
    const { token, agent } = await provisionAgent(h, { policy, actions: ACTIONS });
    const issued = ln.payee().invoice({ amountMsat: 50_000n });
    let open!: () => void;
    loseNextAnswer = new Promise((r) => (open = r));
    const b = await openAirlock(h.config, TEST_PASSPHRASE, { vault: TEST_VAULT, timers: false, clock: h.clock!, lightningBackend: connect() });
    let paying: Promise<unknown> | undefined;
    try {
      paying = pay(token, { invoice: issued.invoice });
      await waitFor(async () => (await h.airlock.store.listLightningPayments({ paymentHash: issued.paymentHash, state: 'in_flight' })).length === 1);
      const first = (await h.airlock.store.listLightningPayments({ paymentHash: issued.paymentHash }))[0]!;
      // The pay call has not reached LND; once its timeout and the grace passed, another instance's reconciler
      // finds no record of the hash and records the attempt failed (as designed).
      skew += (LIGHTNING.payTimeoutSeconds + LIGHTNING.notFoundGraceSeconds + 1) * 1000;
      syncClock();
      assert.deepEqual(await b.lightning.reconcile(), { checked: 1, succeeded: 0, failed: 1, errors: 0 });
      assert.equal((await h.airlock.store.getLightningPayment(first.id))!.failureReason, 'not_found_after_grace');
      // Then the call arrives and LND pays it, but its answer never reaches Airlock.
      open();
      await paying;
      assert.ok(ln.isPaid(issued.paymentHash));
      assert.equal((await h.airlock.store.getLightningPayment(first.id))!.preimage, undefined, 'Airlock has not heard of that success');
    } finally {
      open();
      await paying;
      await b.close();
    }
    // The retry: LND refuses it as a duplicate and Airlock reads the payment back; the failed attempt may have made it.
    const retry = await pay(token, { invoice: issued.invoice });
    assert.equal(retry.status, 200, JSON.stringify(retry.body));
    assert.equal(retry.body.status, 'succeeded');
    assert.equal(sha256hex(retry.body.preimage), issued.paymentHash);
    assert.deepEqual(await used(agent.id), { amount: 50_000n + BigInt(retry.body.feeMsat), count: 2 }, 'the amount and the real fee, charged once');
    assert.equal((await auditOf(agent.name, 'lightning.succeeded')).length, 1);
    assert.equal((await h.admin('POST', '/v1/audit/verify')).body.ok, true);
  });
});
