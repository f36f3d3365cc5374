// An agent paying invoices that never settle (hold invoices: a prompt-injected agent, a hostile L402 server) held
// an HTLC on the node's channels for each, without bound: a satoshi each passes any budget, and at 483 HTLCs per
// channel the node stops forwarding for the whole fleet. AIRLOCK_LIGHTNING_MAX_IN_FLIGHT bounds the payments one
// agent has in flight. Over the public HTTP API on both stores, against the simulated network (each payment the
// backend was asked for is visible there).
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { BITCOIN_CHAINS, bitcoinAsset } from '@airlock/core';
import { LightningNetwork, SimulatedBackend } from '../../../testing/lightning-network.ts';
import { loadConfig } from './config.ts';
import { provisionAgent, startHarness, type Harness, type StoreKind } from './testing/harness.ts';

const BTC = bitcoinAsset(BITCOIN_CHAINS.regtest);
const MAX = 4;
const LIGHTNING = { backend: 'lnd' as const, network: 'regtest' as const, payTimeoutSeconds: 1, notFoundGraceSeconds: 60, defaultFeePercent: 1, maxInFlightPerAgent: MAX };
const policy = { version: 1, rules: [{ type: 'allow', name: 'pay', match: { actions: ['lightning.pay'] } }, { type: 'budget', name: 'daily', asset: BTC, max: '100000000', window: '24h' }] };

for (const store of ['sqlite', 'postgres'] as StoreKind[]) describe(`Lightning: payments in flight per agent are bounded (${store})`, () => {
  let h: Harness;
  let ln: LightningNetwork;
  let backend: SimulatedBackend;
  before(async () => {
    ln = new LightningNetwork();
    ln.feeBaseMsat = 10n; // routes within the 100 msat fee limit
    backend = new SimulatedBackend(ln);
    h = await startHarness({ store, lightningBackend: backend, config: { lightning: LIGHTNING } });
  });
  after(async () => h.close());
  const pay = (token: string, invoice: string) => h.call('POST', '/v1/lightning/pay', { token, body: { invoice, maxFeeMsat: '100' } });
  const held = async (agentId: string) => (await h.airlock.store.transaction((tx) => tx.windowTotals([{ series: `agent:${agentId}`, asset: BTC, sinceMs: 0 }])))[0]!.amount;
  /** Invoices of a payee that holds every payment until the test releases it. */
  const holdInvoices = (n: number) => {
    const payee = ln.payee();
    return Array.from({ length: n }, () => {
      const i = payee.invoice({ amountMsat: 1_000n });
      ln.script(i.paymentHash, { kind: 'hang' });
      return i;
    });
  };

  test(`an agent's ${MAX + 1}th payment in flight is refused (429, audited, nothing held or sent); other agents pay; an answer makes room`, async () => {
    const { agent, token } = await provisionAgent(h, { policy, actions: ['lightning.pay'] });
    const holds = holdInvoices(MAX);
    for (const res of await Promise.all(holds.map((i) => pay(token, i.invoice)))) assert.deepEqual([res.status, res.body.status], [202, 'in_flight'], JSON.stringify(res.body));
    const heldBefore = await held(agent.id);

    const [extra] = holdInvoices(1);
    const refused = await pay(token, extra!.invoice);
    assert.equal(refused.status, 429, JSON.stringify(refused.body));
    assert.equal(refused.body.error.code, 'lightning_too_many_in_flight');
    assert.deepEqual(refused.body.error.details, { inFlight: MAX, max: MAX });
    assert.equal(await held(agent.id), heldBefore, 'nothing held for the refused payment');
    assert.equal(backend.payments.has(extra!.paymentHash), false, 'the backend was never asked');
    const entries = (await h.admin('GET', `/v1/audit?agent=${agent.name}&type=sign.request&decision=error`)).body.entries;
    assert.deepEqual(entries.map((e: any) => [e.data.errorCode, e.data.inFlight, e.data.max]), [['lightning_too_many_in_flight', MAX, MAX]]);

    // Another agent is not held back by this one's payments.
    const other = await provisionAgent(h, { policy, actions: ['lightning.pay'] });
    const fine = ln.payee().invoice({ amountMsat: 2_000n });
    assert.equal((await pay(other.token, fine.invoice)).status, 200);

    // A definite answer for one of them (here: the payee settles it) makes room for one more.
    ln.release(holds[0]!.paymentHash, { succeed: true, feeMsat: 10n });
    assert.equal((await h.admin('POST', '/v1/lightning/reconcile')).body.succeeded, 1);
    assert.equal((await pay(token, extra!.invoice)).status, 202);
    assert.equal((await pay(token, holdInvoices(1)[0]!.invoice)).status, 429);
    for (const i of [...holds.slice(1), extra!]) ln.release(i.paymentHash, { succeed: false, reason: 'no_route' });
  });

  test(`${3 * MAX} payments from one agent at once: exactly ${MAX} go in flight, the rest are refused`, async () => {
    const { agent, token } = await provisionAgent(h, { policy, actions: ['lightning.pay'] });
    const invoices = holdInvoices(3 * MAX);
    const answers = await Promise.all(invoices.map((i) => pay(token, i.invoice)));
    assert.equal(answers.filter((r) => r.status === 202).length, MAX, JSON.stringify(answers.map((r) => r.status)));
    assert.equal(answers.filter((r) => r.status === 429).length, 2 * MAX);
    assert.equal(invoices.filter((i) => backend.payments.has(i.paymentHash)).length, MAX, 'the backend was asked for the admitted ones only');
    assert.equal(await held(agent.id), BigInt(MAX) * 1_100n, 'amount + fee limit held for each admitted payment');
    for (const i of invoices) ln.release(i.paymentHash, { succeed: false, reason: 'no_route' });
  });
});

for (const store of ['sqlite', 'postgres'] as StoreKind[]) describe(`Lightning: approved payments count toward the bound too (${store})`, () => {
  let h: Harness;
  let ln: LightningNetwork;
  before(async () => {
    ln = new LightningNetwork();
    ln.feeBaseMsat = 10n;
    h = await startHarness({ store, lightningBackend: new SimulatedBackend(ln), config: { lightning: LIGHTNING } });
  });
  after(async () => h.close());

  test(`${MAX + 2} payments held for a human, then approved one after another: the ${MAX + 1}th approval is refused and stays pending (found by review)`, async () => {
    const everyPaymentNeedsAHuman = { ...policy, rules: [...policy.rules, { type: 'approval_tier', name: 'human', asset: BTC, above: '0' }] };
    const { agent, token } = await provisionAgent(h, { policy: everyPaymentNeedsAHuman, actions: ['lightning.pay'] });
    const payee = ln.payee();
    const invoices = Array.from({ length: MAX + 2 }, () => payee.invoice({ amountMsat: 1_000n }));
    for (const i of invoices) ln.script(i.paymentHash, { kind: 'hang' });
    const held = [];
    for (const i of invoices) {
      const res = await h.call('POST', '/v1/lightning/pay', { token, body: { invoice: i.invoice, maxFeeMsat: '100' } });
      assert.equal(res.status, 202, JSON.stringify(res.body));
      held.push(res.body.approvalId as string);
    }
    for (const id of held.slice(0, MAX)) assert.equal((await h.admin('POST', `/v1/approvals/${id}/approve`)).status, 200);
    const refused = await h.admin('POST', `/v1/approvals/${held[MAX]}/approve`);
    assert.equal(refused.status, 429, JSON.stringify(refused.body));
    assert.equal(refused.body.error.code, 'lightning_too_many_in_flight');
    assert.equal((await h.admin('GET', `/v1/approvals/${held[MAX]}`)).body.state, 'pending', 'still waiting, to be approved once there is room');
    assert.equal((await h.airlock.store.listLightningPayments({ agentId: agent.id, state: 'in_flight', limit: 100 })).length, MAX);
    // One settles: the pending approval can be granted now.
    ln.release(invoices[0]!.paymentHash, { succeed: true, feeMsat: 10n });
    assert.equal((await h.admin('POST', '/v1/lightning/reconcile')).body.succeeded, 1);
    assert.equal((await h.admin('POST', `/v1/approvals/${held[MAX]}/approve`)).status, 200);
    for (const i of invoices.slice(1)) ln.release(i.paymentHash, { succeed: false, reason: 'no_route' });
  });
});

test('AIRLOCK_LIGHTNING_MAX_IN_FLIGHT: a whole number from 1 to 10000', () => {
  const base = { AIRLOCK_PASSPHRASE: 'x', AIRLOCK_LIGHTNING_BACKEND: 'nwc', AIRLOCK_NWC_URL_FILE: '/tmp/nwc-url' } as Record<string, string>;
  assert.equal(loadConfig({}, { ...base, AIRLOCK_LIGHTNING_MAX_IN_FLIGHT: '100' }).lightning?.maxInFlightPerAgent, 100);
  assert.equal(loadConfig({}, base).lightning?.maxInFlightPerAgent, undefined);
  for (const bad of ['0', '10001', '1.5', '-1', 'many']) assert.throws(() => loadConfig({}, { ...base, AIRLOCK_LIGHTNING_MAX_IN_FLIGHT: bad }), /AIRLOCK_LIGHTNING_MAX_IN_FLIGHT/);
});
