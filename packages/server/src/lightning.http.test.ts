// Lightning payments over the real HTTP app, on both stores: the invoice decoded and judged by policy, the worst
// case held while the payment is in flight, charged what it really cost on success, released only on a definite
// failure, never on silence. The backend is the port on the simulated network (testing/lightning-network.ts);
// the LND REST and NWC backends are tested against doubles of their real APIs in server/src/lightning/.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { BITCOIN_CHAINS, bitcoinAsset } from '@airlock/core';
import { LightningNetwork, SimulatedBackend, TestNode } from '../../../testing/lightning-network.ts';
import { provisionAgent, startHarness, TEST_PASSPHRASE, TEST_VAULT, type Harness, type StoreKind } from './testing/harness.ts';
import { openAirlock } from './runtime.ts';
import { AirlockMetrics } from './http/metrics.ts';
import { AirlockHolder } from './http/holder.ts';
import { startL402Server } from '../../../testing/l402-server/server.ts';

const BTC = bitcoinAsset(BITCOIN_CHAINS.regtest);
const ACTIONS = ['lightning.pay'];
const LIGHTNING = { backend: 'lnd' as const, network: 'regtest' as const, payTimeoutSeconds: 2, notFoundGraceSeconds: 60, defaultFeePercent: 1 };
const sha256hex = (hex: string) => createHash('sha256').update(Buffer.from(hex, 'hex')).digest('hex');

function policy(payees: string[], extra: unknown[] = []) {
  return {
    version: 1,
    sets: { shops: payees },
    rules: [
      { type: 'allow', name: 'pay-shops', match: { actions: ['lightning.pay'] } },
      { type: 'destinations', name: 'only-shops', allow: '$shops', match: { actions: ['lightning.pay'] } },
      { type: 'max_amount', name: 'per-payment', asset: BTC, max: '120000' },
      { type: 'lightning', name: 'fees-and-expiry', max_routing_fee_percent: 10, min_expiry_remaining: '30s', max_expiry: '2h' },
      ...extra,
    ],
  };
}

for (const store of ['sqlite', 'postgres'] as StoreKind[]) describe(`Lightning payments over HTTP (${store})`, () => {
  let h: Harness;
  let ln: LightningNetwork;
  let backend: SimulatedBackend;
  let shop: ReturnType<LightningNetwork['payee']>;
  before(async () => {
    ln = new LightningNetwork();
    ln.feeBaseMsat = 10n; // 10 msat + 0.1 %: within the default limit (1 %, at least 1000 msat)
    backend = new SimulatedBackend(ln);
    shop = ln.payee();
    h = await startHarness({ store, manualClock: true, lightningBackend: backend, config: { lightning: LIGHTNING } });
  });
  after(async () => h.close());
  const syncClock = () => h.clock!.set(Date.now());
  const pay = (token: string, body: Record<string, unknown>, headers: Record<string, string> = {}) => (syncClock(), h.call('POST', '/v1/lightning/pay', { token, body, headers }));

  test('a detector runs on Lightning payments too: a run of refused invoices freezes the agent (breaker_tripped), and it pays nothing after', async () => {
    const stranger = ln.payee();
    const { token } = await provisionAgent(h, { policy: { ...policy([shop.node.nodeId]), detectors: [{ name: 'probing', type: 'refusal_run', max: 2, action: 'freeze' }] }, actions: ACTIONS });
    assert.equal((await pay(token, { invoice: stranger.invoice({ amountMsat: 50_000n }).invoice })).status, 403);
    const trip = await pay(token, { invoice: stranger.invoice({ amountMsat: 50_000n }).invoice });
    assert.deepEqual(trip.body.error.violations.map((v: any) => v.code), ['destination_not_allowed', 'breaker_tripped']);
    const paid = backend.payments.size;
    const after = await pay(token, { invoice: shop.invoice({ amountMsat: 50_000n }).invoice });
    assert.equal(after.status, 403);
    assert.equal(after.body.error.code, 'agent_frozen');
    assert.equal(backend.payments.size, paid, 'the backend was asked to pay nothing');
  });

  test('an allowed invoice is paid: the preimage proves it, the ledger is charged amount plus the real fee, the audit log never holds the preimage', async () => {
    const { agent, token } = await provisionAgent(h, { policy: policy([shop.node.nodeId], [{ type: 'budget', name: 'daily', asset: BTC, max: '100000', window: '24h' }]), actions: ACTIONS });
    const invoice = shop.invoice({ amountMsat: 50_000n, description: 'one API call' });
    const res = await pay(token, { invoice: invoice.invoice });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.status, 'succeeded');
    assert.equal(sha256hex(res.body.preimage), invoice.paymentHash);
    assert.equal(res.body.amountMsat, '50000');
    const fee = ln.feeFor(50_000n); // 10 + 0.1 %
    assert.equal(res.body.feeMsat, fee.toString());
    assert.equal(res.body.maxFeeMsat, '1000', 'default limit: 1 % of the amount, at least 1000 msat');
    assert.ok(ln.isPaid(invoice.paymentHash));

    // What was charged: a dry-run of a payment that no longer fits shows the budget used = amount + real fee.
    const probe = shop.invoice({ amountMsat: 49_500n });
    const dry = await h.call('POST', '/v1/dry-run', { token, body: { action: 'lightning.pay', payload: { invoice: probe.invoice } } });
    assert.equal(dry.status, 200, JSON.stringify(dry.body));
    const over = dry.body.decision.violations.find((v: { code: string }) => v.code === 'budget_exceeded');
    assert.ok(over, JSON.stringify(dry.body.decision));
    assert.equal(over.used, (50_000n + fee).toString());

    const audit = await h.admin('GET', `/v1/audit?agent=${agent.name}`);
    const types = audit.body.entries.map((e: { type: string }) => e.type);
    assert.ok(types.includes('sign.request') && types.includes('lightning.succeeded'), types.join(','));
    const done = audit.body.entries.find((e: { type: string }) => e.type === 'lightning.succeeded');
    assert.equal(done.data.preimageVerified, true);
    assert.equal(done.data.feeMsat, fee.toString());
    assert.ok(!JSON.stringify(audit.body).includes(res.body.preimage), 'the preimage is not in the audit log');
    const listed = await h.admin('GET', `/v1/lightning/payments?agent=${agent.name}`);
    assert.equal(listed.body.payments[0].state, 'succeeded');
    assert.ok(!JSON.stringify(listed.body).includes(res.body.preimage), 'operators do not see the preimage');
  });

  test('each control refuses its attack with its code, and nothing is paid', async () => {
    const { token } = await provisionAgent(h, { policy: policy([shop.node.nodeId]), actions: ACTIONS });
    const stranger = ln.payee();
    const attempts = ln.attempts.length;
    const denied = async (body: Record<string, unknown>, code: string) => {
      const res = await pay(token, body);
      assert.equal(res.status, 403, JSON.stringify(res.body));
      assert.ok(res.body.error.violations.some((v: { code: string }) => v.code === code), `${code}: ${JSON.stringify(res.body.error.violations)}`);
    };
    await denied({ invoice: stranger.invoice({ amountMsat: 1_000n }).invoice }, 'destination_not_allowed');
    await denied({ invoice: shop.invoice({ amountMsat: 200_000n }).invoice }, 'amount_exceeds_max');
    await denied({ invoice: shop.invoice({ amountMsat: 10_000n }).invoice, maxFeeMsat: '1001' }, 'routing_fee_exceeds_cap');
    await denied({ invoice: shop.invoice({ amountMsat: 10_000n, expirySeconds: 10 }).invoice }, 'invoice_expiry_out_of_bounds');
    await denied({ invoice: shop.invoice({ amountMsat: 10_000n, expirySeconds: 30 * 86400 }).invoice }, 'invoice_expiry_out_of_bounds');
    await denied({ invoice: shop.invoice().invoice, amountMsat: '5000' }, 'amountless_invoice_not_allowed');

    const bad = async (body: Record<string, unknown>, status: number, code: string) => {
      const res = await pay(token, body);
      assert.equal(res.status, status, JSON.stringify(res.body));
      assert.equal(res.body.error.code, code);
    };
    await bad({ invoice: shop.invoice({ amountMsat: 1_000n, network: 'bitcoin' }).invoice }, 400, 'invoice_wrong_network');
    await bad({ invoice: shop.invoice({ amountMsat: 1_000n, timestamp: Math.floor(Date.now() / 1000) - 7200, expirySeconds: 60 }).invoice }, 400, 'invoice_expired');
    const genuine = shop.invoice({ amountMsat: 1_000n }).invoice;
    await bad({ invoice: `${genuine.slice(0, 40)}${genuine[40] === 'q' ? 'p' : 'q'}${genuine.slice(41)}` }, 400, 'invoice_malformed');
    await bad({ invoice: shop.invoice({ amountMsat: 1_000n }).invoice, amountMsat: '999' }, 400, 'invoice_amount_mismatch');
    await bad({ invoice: shop.invoice().invoice }, 400, 'invoice_amount_mismatch');
    await bad({ invoice: shop.invoice({ amountMsat: 1_000n }).invoice, maxFeeMsat: '-1' }, 400, 'invalid_request');
    // A forged invoice: a real one re-signed by another key claiming the shop's node id (n field) fails its signature.
    const forged = new TestNode().invoice({ amountMsat: 1_000n, withPayeeField: true });
    await bad({ invoice: forged.invoice.replace(/.{10}$/, 'qqqqqqqqqq') }, 400, 'invoice_malformed');
    assert.equal(ln.attempts.length, attempts, 'nothing reached the network');
  });

  test('amountless invoices are paid only where an allow rule names lightning.amountless_payment, for the amount asked', async () => {
    const { token } = await provisionAgent(h, { policy: policy([shop.node.nodeId], [{ type: 'allow', name: 'tips', match: { actions: ['lightning.pay'], kinds: ['lightning.amountless_payment'] } }]), actions: ACTIONS });
    const invoice = shop.invoice();
    const res = await pay(token, { invoice: invoice.invoice, amountMsat: '21000' });
    assert.equal(res.body.maxFeeMsat, '1000');
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.amountMsat, '21000');
    assert.equal(res.body.intent.kind, 'lightning.amountless_payment');
  });

  test('a budget exhausted by many small payments in parallel lets exactly the allowed number through', async () => {
    // Each payment holds 1000 + its 100 msat fee limit; 10 fit in 11000, whatever the interleaving.
    const { token } = await provisionAgent(h, { policy: policy([shop.node.nodeId], [{ type: 'budget', name: 'hourly', asset: BTC, max: '11000', window: '1h' }]), actions: ACTIONS });
    const invoices = Array.from({ length: 16 }, () => shop.invoice({ amountMsat: 1_000n }));
    syncClock();
    const results = await Promise.all(invoices.map((i) => h.call('POST', '/v1/lightning/pay', { token, body: { invoice: i.invoice, maxFeeMsat: '100' } })));
    const paid = results.filter((r) => r.status === 200);
    const refused = results.filter((r) => r.status === 403);
    assert.equal(paid.length, 10, results.map((r) => r.status).join(','));
    assert.equal(refused.length, 6);
    assert.ok(refused.every((r) => r.body.error.violations.some((v: { code: string }) => v.code === 'budget_exceeded')));
    assert.equal(invoices.filter((i) => ln.isPaid(i.paymentHash)).length, 10, 'exactly the allowed payments reached the payee');
  });

  test('a definite failure releases the hold; the same invoice paid again is not a second payment', async () => {
    const { agent, token } = await provisionAgent(h, { policy: policy([shop.node.nodeId], [{ type: 'budget', name: 'small', asset: BTC, max: '12000', window: '1h' }]), actions: ACTIONS });
    const doomed = shop.invoice({ amountMsat: 10_000n });
    ln.script(doomed.paymentHash, { kind: 'fail', reason: 'no_route' });
    const failed = await pay(token, { invoice: doomed.invoice });
    assert.equal(failed.status, 502, JSON.stringify(failed.body));
    assert.equal(failed.body.error.code, 'lightning_payment_failed');
    assert.equal(failed.body.error.details.reason, 'no_route');
    // Released: a payment that needs the whole budget again fits.
    const next = shop.invoice({ amountMsat: 10_000n });
    const ok = await pay(token, { invoice: next.invoice });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    // The same invoice again: that payment, replayed, and the network saw it once.
    const again = await pay(token, { invoice: next.invoice });
    assert.equal(again.status, 200);
    assert.equal(again.body.replayed, true);
    assert.equal(again.body.paymentId, ok.body.paymentId);
    assert.equal(ln.attempts.filter((hsh) => hsh === next.paymentHash).length, 1);
    // Another agent cannot pay (or learn the preimage of) an invoice this one paid.
    const other = await provisionAgent(h, { policy: policy([shop.node.nodeId]), actions: ACTIONS });
    const stolen = await pay(other.token, { invoice: next.invoice });
    assert.equal(stolen.status, 409, JSON.stringify(stolen.body));
    assert.equal(stolen.body.error.code, 'lightning_payment_in_flight');
    const audit = await h.admin('GET', `/v1/audit?agent=${agent.name}&type=lightning.failed`);
    assert.equal(audit.body.entries[0].data.reason, 'no_route');
  });

  test('a payment that outlives the timeout stays held; the backend timing out then succeeding charges it once', async () => {
    const { token } = await provisionAgent(h, { policy: policy([shop.node.nodeId], [{ type: 'budget', name: 'small', asset: BTC, max: '12000', window: '1h' }]), actions: ACTIONS });
    const slow = shop.invoice({ amountMsat: 10_000n });
    ln.script(slow.paymentHash, { kind: 'hang' });
    const res = await pay(token, { invoice: slow.invoice });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    assert.equal(res.body.status, 'in_flight');
    // Held: another payment that would need the same budget is refused while the first is in flight.
    const blocked = await pay(token, { invoice: shop.invoice({ amountMsat: 5_000n }).invoice });
    assert.equal(blocked.status, 403);
    assert.ok(blocked.body.error.violations.some((v: { code: string }) => v.code === 'budget_exceeded'));
    // Operators see it: one payment in flight, its age growing.
    h.clock!.advance(30_000);
    const metrics = await new AirlockMetrics(new AirlockHolder(h.airlock)).registry.getMetricsAsJSON();
    const gauge = (name: string) => metrics.find((m) => m.name === name)?.values[0]?.value;
    assert.ok(gauge('airlock_lightning_payments_in_flight')! >= 1);
    assert.ok(gauge('airlock_lightning_oldest_in_flight_seconds')! >= 30);
    // The pay call gave up (in flight at its timeout); the reconciler asks, the backend says in flight: nothing changes.
    syncClock();
    assert.deepEqual(await h.admin('POST', '/v1/lightning/reconcile').then((r) => r.body), { checked: 1, succeeded: 0, failed: 0, errors: 0 });
    assert.equal((await h.call('GET', `/v1/lightning/payments/${res.body.paymentId}`, { token })).status, 202);
    // The payment lands later; the next round finds it and charges it once, with its real fee.
    ln.release(slow.paymentHash, { succeed: true, feeMsat: 20n });
    await waitFor(async () => (await h.admin('POST', '/v1/lightning/reconcile')).body.succeeded === 1);
    assert.equal((await h.admin('POST', '/v1/lightning/reconcile')).body.checked, 0, 'finished once');
    const done = await h.call('GET', `/v1/lightning/payments/${res.body.paymentId}`, { token });
    assert.equal(done.body.status, 'succeeded');
    assert.equal(done.body.feeMsat, '20');
    assert.equal(sha256hex(done.body.preimage), slow.paymentHash);
  });

  test('a backend that cannot be reached keeps the hold until it answers; "no such payment" is believed only after the grace period', async () => {
    const { agent, token } = await provisionAgent(h, { policy: policy([shop.node.nodeId], [{ type: 'budget', name: 'small', asset: BTC, max: '12000', window: '1h' }]), actions: ACTIONS });
    const invoice = shop.invoice({ amountMsat: 10_000n });
    backend.unreachable = true;
    try {
      const res = await pay(token, { invoice: invoice.invoice });
      assert.equal(res.status, 202, JSON.stringify(res.body));
      assert.equal(res.body.status, 'in_flight');
      const round = await h.admin('POST', '/v1/lightning/reconcile');
      assert.ok(round.body.errors >= 1);
      const listed = await h.admin('GET', `/v1/lightning/payments?agent=${agent.name}`);
      assert.equal(listed.body.payments[0].state, 'in_flight', 'silence releases nothing');
    } finally {
      backend.unreachable = false;
    }
    // Reachable again, it has no record (the pay call never arrived): within the grace period that is not an answer.
    await h.admin('POST', '/v1/lightning/reconcile');
    assert.equal((await h.admin('GET', `/v1/lightning/payments?agent=${agent.name}`)).body.payments[0].state, 'in_flight');
    h.clock!.advance((LIGHTNING.payTimeoutSeconds + LIGHTNING.notFoundGraceSeconds + 1) * 1000);
    const round = await h.admin('POST', '/v1/lightning/reconcile');
    assert.ok(round.body.failed >= 1, JSON.stringify(round.body));
    const listed = await h.admin('GET', `/v1/lightning/payments?agent=${agent.name}`);
    assert.equal(listed.body.payments[0].state, 'failed');
    assert.equal(listed.body.payments[0].failureReason, 'not_found_after_grace');
    assert.ok(!ln.isPaid(invoice.paymentHash));
  });

  test('two instances finishing the same payment at once: one outcome entry, one charge, no error on either', async () => {
    const { agent, token } = await provisionAgent(h, { policy: policy([shop.node.nodeId]), actions: ACTIONS });
    const slow = shop.invoice({ amountMsat: 19_000n });
    ln.script(slow.paymentHash, { kind: 'hang' });
    const res = await pay(token, { invoice: slow.invoice });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    ln.release(slow.paymentHash, { succeed: true, feeMsat: 5n });
    await waitFor(async () => backend.payments.get(slow.paymentHash)?.status === 'succeeded');
    const second = await openAirlock(h.config, TEST_PASSPHRASE, { vault: TEST_VAULT, timers: false, clock: h.clock!, lightningBackend: backend });
    try {
      const rounds = await Promise.all([h.airlock.lightning.reconcile(), second.lightning.reconcile(), h.airlock.lightning.reconcile()]);
      assert.equal(rounds.reduce((n, r) => n + r.succeeded, 0) >= 1, true, JSON.stringify(rounds));
    } finally {
      await second.close();
    }
    const audit = await h.admin('GET', `/v1/audit?agent=${agent.name}&type=lightning.succeeded`);
    assert.equal(audit.body.entries.filter((e: { data: { paymentId: string } }) => e.data.paymentId === res.body.paymentId).length, 1);
    const totals = await h.airlock.store.transaction((tx) => tx.windowTotals([{ series: `agent:${agent.id}`, asset: BTC, sinceMs: 0 }]));
    assert.equal(totals[0]!.amount, 19_005n, 'charged once: amount + real fee');
  });

  test('an approval tier holds a large payment for a human; approving pays it', async () => {
    const { agent, token } = await provisionAgent(h, { policy: policy([shop.node.nodeId], [{ type: 'approval_tier', name: 'big-by-hand', asset: BTC, above: '60000' }]), actions: ACTIONS });
    const big = shop.invoice({ amountMsat: 100_000n });
    const res = await pay(token, { invoice: big.invoice });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    assert.equal(res.body.decision, 'require_approval');
    assert.ok(!ln.isPaid(big.paymentHash));
    const approved = await h.admin('POST', `/v1/approvals/${res.body.approvalId}/approve`);
    assert.equal(approved.status, 200, JSON.stringify(approved.body));
    assert.ok(ln.isPaid(big.paymentHash));
    assert.equal(approved.body.result.status, 'succeeded');
    // The operator's view: the preimage (half of an L402 credential) is the agent's alone.
    assert.equal(approved.body.result.preimage, undefined);
    assert.ok(!JSON.stringify(approved.body).includes(big.preimage));
    const mine = await h.call('GET', `/v1/lightning/payments/${approved.body.result.paymentId}`, { token });
    assert.equal(sha256hex(mine.body.preimage), big.paymentHash);
    const listed = await h.admin('GET', `/v1/lightning/payments?agent=${agent.name}`);
    assert.equal(listed.body.payments[0].state, 'succeeded');
  });

  test('one invoice asked for twice while waiting for approval: approving the second after the first paid closes it and releases its hold', async () => {
    const { agent, token } = await provisionAgent(h, { policy: policy([shop.node.nodeId], [{ type: 'approval_tier', name: 'big-by-hand', asset: BTC, above: '60000' }]), actions: ACTIONS });
    const big = shop.invoice({ amountMsat: 90_000n });
    const first = await pay(token, { invoice: big.invoice });
    const second = await pay(token, { invoice: big.invoice });
    assert.equal(first.status, 202);
    assert.equal(second.status, 202);
    assert.equal((await h.admin('POST', `/v1/approvals/${first.body.approvalId}/approve`)).status, 200);
    const late = await h.admin('POST', `/v1/approvals/${second.body.approvalId}/approve`);
    assert.equal(late.status, 409, JSON.stringify(late.body));
    assert.equal(late.body.error.code, 'lightning_payment_in_flight');
    assert.equal((await h.admin('GET', `/v1/approvals/${second.body.approvalId}`)).body.state, 'denied');
    assert.equal(ln.attempts.filter((hash) => hash === big.paymentHash).length, 1);
    const totals = await h.airlock.store.transaction((tx) => tx.windowTotals([{ series: `agent:${agent.id}`, asset: BTC, sinceMs: 0 }]));
    assert.equal(totals[0]!.amount, 90_000n + ln.feeFor(90_000n), 'only the paid one is charged; the closed approval holds nothing');
  });

  test('an approval granted after the invoice expired ends as a definite failure and releases the hold', async () => {
    const { agent, token } = await provisionAgent(h, { policy: { version: 1, rules: [{ type: 'allow', name: 'all', match: { actions: ['lightning.pay'] } }, { type: 'approval_tier', name: 'by-hand', match: { actions: ['lightning.pay'] } }] }, actions: ACTIONS });
    // A one-second invoice expires at the end of the whole second it is stamped with: made late in a second (it takes
    // a few ms to sign), it has expired when the pay request reads the clock (400 invoice_expired, about once in 300
    // runs of this test). Make it early in a second.
    const intoSecond = Date.now() % 1000;
    if (intoSecond > 500) await new Promise((r) => setTimeout(r, 1000 - intoSecond + 20));
    const shortLived = shop.invoice({ amountMsat: 7_000n, expirySeconds: 1 });
    const res = await pay(token, { invoice: shortLived.invoice });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    await new Promise((r) => setTimeout(r, 1100));
    syncClock();
    const approved = await h.admin('POST', `/v1/approvals/${res.body.approvalId}/approve`);
    assert.equal(approved.status, 200, JSON.stringify(approved.body));
    assert.equal(approved.body.result.status, 'failed');
    const listed = await h.admin('GET', `/v1/lightning/payments?agent=${agent.name}`);
    assert.equal(listed.body.payments[0].state, 'failed');
    assert.ok(!ln.isPaid(shortLived.paymentHash));
  });

  test('an Idempotency-Key retry answers the same payment; the key with another invoice is a conflict', async () => {
    const { token } = await provisionAgent(h, { policy: policy([shop.node.nodeId]), actions: ACTIONS });
    const invoice = shop.invoice({ amountMsat: 20_000n });
    const first = await pay(token, { invoice: invoice.invoice }, { 'idempotency-key': 'ln-retry-1' });
    const retry = await pay(token, { invoice: invoice.invoice }, { 'idempotency-key': 'ln-retry-1' });
    assert.equal(first.status, 200);
    assert.equal(retry.status, 200);
    assert.equal(retry.body.paymentId, first.body.paymentId);
    assert.equal(retry.body.replayed, true);
    const conflict = await pay(token, { invoice: shop.invoice({ amountMsat: 20_000n }).invoice }, { 'idempotency-key': 'ln-retry-1' });
    assert.equal(conflict.status, 409);
    assert.equal(conflict.body.error.code, 'idempotency_conflict');
  });

  test('a session without lightning.pay in its scope cannot pay', async () => {
    const { token } = await provisionAgent(h, { policy: policy([shop.node.nodeId]), actions: ['evm.transaction'] });
    const res = await pay(token, { invoice: shop.invoice({ amountMsat: 1_000n }).invoice });
    assert.equal(res.status, 403, JSON.stringify(res.body));
    assert.ok(res.body.error.violations.some((v: { code: string }) => v.code === 'action_not_allowed'));
  });
});

describe('L402 token cache (sqlite)', () => {
  test('a URL gets the credential bought for it first, then any of its origin; other agents get none', async () => {
    const ln = new LightningNetwork();
    ln.feeBaseMsat = 0n;
    const api = await startL402Server({ network: ln, routes: { '/news': { priceSat: 10n, service: 'news' }, '/weather': { priceSat: 10n, service: 'weather' } } });
    const h = await startHarness({ lightningBackend: new SimulatedBackend(ln) });
    try {
      const { token } = await provisionAgent(h, { policy: { version: 1, rules: [{ type: 'allow', name: 'api', match: { actions: ['lightning.pay'] } }] }, actions: ACTIONS });
      const buy = async (path: string) => {
        const challenge = (await fetch(`${api.url}${path}`)).headers.get('www-authenticate')!;
        const res = await h.call('POST', '/v1/l402/pay', { token, body: { url: `${api.url}${path}`, challenge } });
        assert.equal(res.status, 200, JSON.stringify(res.body));
        return res.body.l402.authorization as string;
      };
      const news = await buy('/news');
      const weather = await buy('/weather');
      const cached = async (path: string, as = token) => (await h.call('GET', `/v1/l402/token?url=${encodeURIComponent(`${api.url}${path}`)}`, { token: as })).body.authorization;
      assert.equal(await cached('/news'), news);
      assert.equal(await cached('/weather'), weather);
      assert.equal(await cached('/elsewhere'), weather, 'the newest for the origin');
      assert.equal((await fetch(`${api.url}/news`, { headers: { authorization: await cached('/news') } })).status, 200);
      const other = await provisionAgent(h, { policy: { version: 1, rules: [{ type: 'allow', name: 'api', match: { actions: ['lightning.pay'] } }] }, actions: ACTIONS });
      assert.equal((await h.call('GET', `/v1/l402/token?url=${encodeURIComponent(`${api.url}/news`)}`, { token: other.token })).status, 404, 'per agent');
    } finally {
      await h.close();
      await api.close();
    }
  });
});

describe('L402 resource rules (sqlite)', () => {
  test('an allow rule with resources pays only those paths; another path of the same API is resource_not_allowed, nothing paid', async () => {
    const ln = new LightningNetwork();
    ln.feeBaseMsat = 0n;
    const api = await startL402Server({ network: ln, routes: { '/news/today': { priceSat: 10n, service: 'news' }, '/admin/export': { priceSat: 10n, service: 'admin' } } });
    const h = await startHarness({ lightningBackend: new SimulatedBackend(ln) });
    try {
      const policy = { version: 1, rules: [{ type: 'allow', name: 'news-only', match: { actions: ['lightning.pay'], resources: [`${api.url}/news/**`] } }, { type: 'loop_guard', name: 'no-loops', max: 1, window: '1m' }] };
      const { token } = await provisionAgent(h, { policy, actions: ACTIONS });
      const payFor = async (path: string) => {
        const challenge = (await fetch(`${api.url}${path}`)).headers.get('www-authenticate')!;
        return h.call('POST', '/v1/l402/pay', { token, body: { url: `${api.url}${path}`, challenge } });
      };
      assert.equal((await payFor('/news/today')).status, 200);
      const injected = await payFor('/admin/export');
      assert.equal(injected.status, 403, JSON.stringify(injected.body));
      assert.deepEqual(injected.body.error.violations.map((v: { rule: string; code: string }) => `${v.rule} ${v.code}`), ['agent/news-only resource_not_allowed']);
      // A loop buying the same resource again and again is stopped by the loop guard (one per minute here).
      const again = await payFor('/news/today');
      assert.equal(again.status, 403, JSON.stringify(again.body));
      assert.ok(again.body.error.violations.some((v: { code: string }) => v.code === 'loop_guard_tripped'));
      assert.equal(ln.attempts.length, 1, 'only the allowed path was paid');
    } finally {
      await h.close();
      await api.close();
    }
  });
});

describe('Lightning without a backend', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({});
  });
  after(async () => h.close());
  test('every payment is refused with lightning_not_configured and nothing is recorded as paid', async () => {
    const { token } = await provisionAgent(h, { policy: policy([]), actions: ACTIONS });
    const res = await h.call('POST', '/v1/lightning/pay', { token, body: { invoice: new TestNode().invoice({ amountMsat: 1_000n }).invoice } });
    assert.equal(res.status, 503, JSON.stringify(res.body));
    assert.equal(res.body.error.code, 'lightning_not_configured');
  });
});

async function waitFor(check: () => Promise<boolean>, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error('timed out waiting');
}
