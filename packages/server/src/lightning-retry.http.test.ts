// Lightning retries, late successes, reconcile paging and invoice expiry bounds, over the real HTTP app (found by
// a hostile review). Each test names the attack and fails without its control:
// - a retry of an invoice whose first attempt failed must not be released on that first attempt's failure, read by
//   a lookup (another instance's reconciler, NWC's confirming lookup) before the retry's pay call reached the node
//   or wallet: the retry then paid, charged nothing and left no `lightning.succeeded` entry;
// - a verified success for a payment already recorded failed is charged (once) and audited;
// - one payment hash that moved money is charged exactly once, whichever of its records carries the charge: a late
//   success of an attempt recorded failed and a retry's success (LND refuses the retry as a duplicate and reads the
//   success back) are the same payment, in either order, and on two instances at once;
// - one agent's payments held in flight cannot starve everyone else's from the reconciler;
// - an invoice with an absurd expiry is refused, and the operators' list never fails to render.
// LND: the LND REST double (testing/lnd-rest-double) behind the real LndRestBackend, shared by two Airlock
// instances. NWC: the NIP-47 test wallet service behind the real NwcBackend.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { AirlockError, BITCOIN_CHAINS, bitcoinAsset, COUNT_ASSET, seriesFor, type LightningBackend, type LightningPaymentRecord } from '@airlock/core';
import { LightningNetwork } from '../../../testing/lightning-network.ts';
import { startLndRestDouble, type LndRestDouble } from '../../../testing/lnd-rest-double/server.ts';
import type { TestWalletService } from '../../../testing/nwc-wallet-service/wallet-service.ts';
import { LndRestBackend } from './lightning/lnd-rest.ts';
import { openAirlock } from './runtime.ts';
import { provisionAgent, startHarness, TEST_PASSPHRASE, TEST_VAULT, type Harness, type StoreKind } from './testing/harness.ts';
import { startNwcStack, type NwcStack } from './testing/nwc-stack.ts';

const BTC = bitcoinAsset(BITCOIN_CHAINS.regtest);
const ACTIONS = ['lightning.pay'];
const policy = { version: 1, rules: [{ type: 'allow', name: 'pay', match: { actions: ['lightning.pay'] } }, { type: 'budget', name: 'daily', asset: BTC, max: '100000000', window: '24h' }] };
const sha256hex = (hex: string) => createHash('sha256').update(Buffer.from(hex, 'hex')).digest('hex');

async function waitFor(check: () => Promise<boolean> | boolean, ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function used(h: Harness, agentId: string): Promise<{ amount: bigint; count: number }> {
  const [btc, count] = await h.airlock.store.transaction((tx) => tx.windowTotals([{ series: seriesFor.agent(agentId), asset: BTC, sinceMs: 0 }, { series: seriesFor.agent(agentId), asset: COUNT_ASSET, sinceMs: 0 }]));
  return { amount: btc!.amount, count: count!.count };
}

async function auditOf(h: Harness, agentName: string, type: string): Promise<any[]> {
  return (await h.admin('GET', `/v1/audit?agent=${agentName}&type=${type}&limit=1000`)).body.entries;
}

type Finish = { state: 'succeeded' | 'failed'; preimage?: string; feeMsat?: bigint; failureReason?: string };
/** The service's own finishing step (what a pay call's answer or a reconcile lookup runs), for races. */
const finishOf = (airlock: { lightning: unknown }) => (record: LightningPaymentRecord, finish: Finish, source: 'pay' | 'lookup') =>
  (airlock.lightning as { finish: (r: LightningPaymentRecord, f: Finish, s: 'pay' | 'lookup') => Promise<LightningPaymentRecord> }).finish(record, finish, source);

for (const store of ['sqlite', 'postgres'] as StoreKind[]) describe(`Lightning retries and reconcile rounds, two instances on one LND (${store})`, () => {
  const LIGHTNING = { backend: 'lnd' as const, network: 'regtest' as const, payTimeoutSeconds: 2, notFoundGraceSeconds: 60, defaultFeePercent: 1, reconcileBatch: 3 };
  let h: Harness;
  let ln: LightningNetwork;
  let lnd: LndRestDouble;
  const backends: LndRestBackend[] = [];
  /** Instance A's pay calls reach LND only once this opens (network latency, TLS, a busy node): undefined, at once. */
  let gate: Promise<void> | undefined;
  /** The next pay call of instance A (only that one) waits for this instead. */
  let gateNext: Promise<void> | undefined;
  /** How far the manual clock runs ahead of the wall clock (grows only: records never date from the future). */
  let skew = 0;
  const connect = () => {
    const b = new LndRestBackend({ url: lnd.url, macaroon: { hex: lnd.adminMacaroonHex }, tlsCert: { pem: lnd.certPem }, network: 'regtest', payGraceSeconds: 0.4, requestTimeoutMs: 2_000 });
    backends.push(b);
    return b;
  };
  before(async () => {
    ln = new LightningNetwork();
    ln.feeBaseMsat = 10n; // 10 msat + 0.1 %: routes within the fee limits below
    lnd = await startLndRestDouble({ network: ln });
    const direct = connect();
    const viaA: LightningBackend = { kind: 'lnd', network: 'regtest', pay: async (r) => { const g = gateNext ?? gate; gateNext = undefined; await g; return direct.pay(r); }, lookup: (hash) => direct.lookup(hash) };
    h = await startHarness({ store, manualClock: true, lightningBackend: viaA, config: { lightning: LIGHTNING } });
  });
  after(async () => {
    await h.close();
    for (const b of backends) await b.close?.();
    await lnd.close();
  });
  const syncClock = () => h.clock!.set(Date.now() + skew);
  const pay = (token: string, body: Record<string, unknown>) => (syncClock(), h.call('POST', '/v1/lightning/pay', { token, body }));
  const openB = () => openAirlock(h.config, TEST_PASSPHRASE, { vault: TEST_VAULT, timers: false, clock: h.clock!, lightningBackend: connect() });
  const inFlightOf = async (paymentHash: string) => (await h.airlock.store.listLightningPayments({ paymentHash, state: 'in_flight' }))[0];
  /** Whose `lightning.succeeded` entries of a hash charged it (the others name the record that did: `chargedBy`). */
  const succeededOf = async (agentName: string, paymentHash: string) => {
    const entries = (await auditOf(h, agentName, 'lightning.succeeded')).filter((e) => e.data.paymentHash === paymentHash);
    return { charged: entries.filter((e) => e.data.chargedBy === undefined), uncharged: entries.filter((e) => e.data.chargedBy !== undefined) };
  };

  /** Attempt 1 of a fresh invoice fails definitely at LND (no route); the next attempt of it will succeed. */
  const failedOnce = async (token: string) => {
    const invoice = ln.payee().invoice({ amountMsat: 50_000n });
    ln.script(invoice.paymentHash, { kind: 'fail', reason: 'no_route' });
    const first = await pay(token, { invoice: invoice.invoice, maxFeeMsat: '1000' });
    assert.equal(first.status, 502, JSON.stringify(first.body));
    assert.equal(first.body.error.code, 'lightning_payment_failed');
    assert.equal(lnd.paymentStatus(invoice.paymentHash), 'FAILED');
    ln.script(invoice.paymentHash, { kind: 'succeed', feeMsat: 20n });
    return invoice;
  };

  test("a retry is not released on the first attempt's failure that another instance's reconciler reads before the retry reaches LND: paid, charged and audited", async () => {
    const { agent, token } = await provisionAgent(h, { policy, actions: ACTIONS });
    const invoice = await failedOnce(token);
    let open!: () => void;
    gate = new Promise((r) => (open = r));
    const b = await openB();
    try {
      const paying = pay(token, { invoice: invoice.invoice, maxFeeMsat: '1000' });
      // Attempt 2 is held; its pay call has not reached LND, which still has attempt 1's FAILED record.
      await waitFor(async () => (await inFlightOf(invoice.paymentHash)) !== undefined);
      assert.equal((await backends[0]!.lookup(invoice.paymentHash)).status, 'failed', "LND answers attempt 1's record");
      assert.deepEqual(await b.lightning.reconcile(), { checked: 1, succeeded: 0, failed: 0, errors: 0 }, "the earlier attempt's failure is no answer about this one");
      assert.equal((await inFlightOf(invoice.paymentHash))?.state, 'in_flight');
      open();
      const res = await paying;
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.status, 'succeeded');
      assert.equal(sha256hex(res.body.preimage), invoice.paymentHash);
    } finally {
      gate = undefined;
      open();
      await b.close();
    }
    assert.ok(ln.isPaid(invoice.paymentHash));
    assert.deepEqual(await used(h, agent.id), { amount: 50_020n, count: 2 }, 'amount + real fee, one request count per attempt');
    const payments = (await h.admin('GET', `/v1/lightning/payments?agent=${agent.name}`)).body.payments as any[];
    assert.deepEqual(payments.map((p) => p.state).sort(), ['failed', 'succeeded']);
    assert.equal((await auditOf(h, agent.name, 'lightning.succeeded')).length, 1);
    assert.equal((await h.admin('POST', '/v1/audit/verify')).body.ok, true);
  });

  test('a verified success for an attempt already recorded failed (the stale failure believed once the grace passed) is charged once, audited and alerted', async () => {
    const { agent, token } = await provisionAgent(h, { policy, actions: ACTIONS });
    const invoice = await failedOnce(token);
    let open!: () => void;
    gate = new Promise((r) => (open = r));
    const b = await openB();
    let paymentId = '';
    try {
      const paying = pay(token, { invoice: invoice.invoice, maxFeeMsat: '1000' });
      await waitFor(async () => (await inFlightOf(invoice.paymentHash)) !== undefined);
      paymentId = (await inFlightOf(invoice.paymentHash))!.id;
      // The pay call is stuck on its way far longer than any timeout: once the grace passed, the failure is believed.
      h.clock!.advance((LIGHTNING.payTimeoutSeconds + LIGHTNING.notFoundGraceSeconds + 1) * 1000);
      assert.deepEqual(await b.lightning.reconcile(), { checked: 1, succeeded: 0, failed: 1, errors: 0 });
      assert.deepEqual(await used(h, agent.id), { amount: 0n, count: 2 }, 'released');
      // Then it arrives, and LND pays it (a FAILED payment may be paid again).
      open();
      const res = await paying;
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.status, 'succeeded');
      assert.equal(res.body.paymentId, paymentId);
      assert.equal(sha256hex(res.body.preimage), invoice.paymentHash);
    } finally {
      gate = undefined;
      open();
      await b.close();
    }
    assert.ok(ln.isPaid(invoice.paymentHash));
    assert.deepEqual(await used(h, agent.id), { amount: 50_020n, count: 2 }, 'charged amount + real fee once; the request counts unchanged');
    const record = (await h.airlock.store.getLightningPayment(paymentId))!;
    assert.equal(record.state, 'succeeded');
    assert.equal(record.feeMsat, 20n);
    const succeeded = (await auditOf(h, agent.name, 'lightning.succeeded')).filter((e) => e.data.paymentId === paymentId);
    assert.equal(succeeded.length, 1);
    assert.equal(succeeded[0].data.afterFailed, true);
    assert.equal(succeeded[0].data.feeMsat, '20');
    assert.equal(succeeded[0].data.preimage, undefined, 'the log never holds the preimage');
    assert.equal((await auditOf(h, agent.name, 'lightning.failed')).filter((e) => e.data.paymentId === paymentId).length, 1);
    const alerts = (await auditOf(h, agent.name, 'alert.lightning')).filter((e) => e.data.reason === 'succeeded_after_failed');
    assert.equal(alerts.length, 1);
    assert.equal(alerts[0].data.paymentId, paymentId);
    // Exactly once: the store refuses to charge the same success again, and two racing charges of a failed record make one.
    const charge = (id: string, amount: bigint) => h.airlock.store.transaction((tx) => tx.chargeLightningAfterFailure(id, { preimage: invoice.preimage, feeMsat: 0n }, [{ series: seriesFor.agent(agent.id), asset: BTC, amount, count: 1 }], Date.now(), record.finishedSeq!));
    await assert.rejects(charge(paymentId, 1n), (e: any) => e.code === 'conflict');
    // Attempt 1's record reading the same success late, twice at once: the hash is already charged (by attempt 2),
    // so it is recorded (the preimage, the record stays failed: another payment of the hash succeeded) and never
    // charged again.
    const firstAttempt = (await h.airlock.store.listLightningPayments({ paymentHash: invoice.paymentHash, state: 'failed' }))[0]!;
    const raced = await Promise.all([0, 1].map(() => finishOf(h.airlock)({ ...firstAttempt, state: 'in_flight' }, { state: 'succeeded', preimage: invoice.preimage, feeMsat: 7n }, 'lookup')));
    for (const r of raced) assert.equal(r.state, 'failed');
    assert.equal((await h.airlock.store.getLightningPayment(firstAttempt.id))!.preimage, invoice.preimage);
    assert.deepEqual(await used(h, agent.id), { amount: 50_020n, count: 2 }, 'one payment hash, charged once');
    const late = (await auditOf(h, agent.name, 'lightning.succeeded')).filter((e) => e.data.paymentId === firstAttempt.id);
    assert.equal(late.length, 1);
    assert.equal(late[0].data.chargedBy, paymentId);
    const already = (await auditOf(h, agent.name, 'alert.lightning')).filter((e) => e.data.reason === 'succeeded_after_failed' && e.data.paymentId === firstAttempt.id);
    assert.equal(already.length, 1);
    assert.equal(already[0].data.alreadyCharged, true);
    assert.equal(already[0].data.chargedBy, paymentId);
    assert.equal((await h.admin('POST', '/v1/audit/verify')).body.ok, true);
  });

  test('a late success whose charging transaction is rolled back once (PostgreSQL breaking a deadlock: conflict) is charged and audited on the retry, not dropped', async () => {
    const { agent, token } = await provisionAgent(h, { policy, actions: ACTIONS });
    const invoice = await failedOnce(token);
    const failed = (await h.airlock.store.listLightningPayments({ paymentHash: invoice.paymentHash, state: 'failed' }))[0]!;
    const before = await used(h, agent.id);
    // The deadlock the review produced between two instances (a late charge waiting for the hash's lock while the
    // holder waits for a row it locked): PostgreSQL aborts one transaction, which the store reports as `conflict`.
    const store = h.airlock.store;
    const transaction = store.transaction.bind(store);
    let aborted = 0;
    store.transaction = (async (fn: (tx: any) => Promise<unknown>) =>
      transaction((tx: any) => fn(new Proxy(tx, {
        get(target, prop) {
          if (prop === 'chargeLightningAfterFailure' && aborted === 0) {
            return async () => {
              aborted++;
              throw new AirlockError('conflict', 'the store reported a concurrent update; retry (deadlock detected)');
            };
          }
          const value = Reflect.get(target, prop);
          return typeof value === 'function' ? value.bind(target) : value;
        },
      })))) as typeof store.transaction;
    let done: LightningPaymentRecord;
    try {
      done = await finishOf(h.airlock)({ ...failed, state: 'in_flight' }, { state: 'succeeded', preimage: invoice.preimage, feeMsat: 5n }, 'lookup');
    } finally {
      store.transaction = transaction as typeof store.transaction;
    }
    assert.equal(aborted, 1, 'the first charge was rolled back');
    assert.deepEqual([done.state, done.preimage], ['succeeded', invoice.preimage]);
    const after = await used(h, agent.id);
    assert.equal(after.amount - before.amount, 50_005n, 'charged the amount and the fee, once');
    const succeeded = (await auditOf(h, agent.name, 'lightning.succeeded')).filter((e) => e.data.paymentId === failed.id);
    assert.deepEqual(succeeded.map((e) => e.data.afterFailed), [true], 'audited once');
  });

  /**
   * Attempt 1 of a fresh invoice failed at LND; attempt 2's pay call is held on its way (`open2` lets it go) and,
   * once its timeout and the grace passed, instance B's reconciler reads attempt 1's FAILED record and records
   * attempt 2 failed (its hold released: by then that answer is believed, as designed).
   */
  const secondFailedByStaleLookup = async (agentId: string, token: string) => {
    const invoice = await failedOnce(token);
    let open2!: () => void;
    gateNext = new Promise((r) => (open2 = r));
    const paying2 = pay(token, { invoice: invoice.invoice, maxFeeMsat: '1000' });
    await waitFor(async () => (await inFlightOf(invoice.paymentHash)) !== undefined);
    const second = (await inFlightOf(invoice.paymentHash))!.id;
    skew += (LIGHTNING.payTimeoutSeconds + LIGHTNING.notFoundGraceSeconds + 1) * 1000;
    syncClock();
    const b = await openB();
    try {
      assert.deepEqual(await b.lightning.reconcile(), { checked: 1, succeeded: 0, failed: 1, errors: 0 });
    } finally {
      await b.close();
    }
    assert.equal((await h.airlock.store.getLightningPayment(second))!.state, 'failed');
    assert.deepEqual(await used(h, agentId), { amount: 0n, count: 2 }, 'released');
    return { invoice, second, paying2, open2 };
  };

  test('attempt 2 recorded failed, the retry (attempt 3) in flight, then attempt 2 pays: charged once; attempt 3, refused by LND as already paid, succeeds for its agent uncharged', async () => {
    const { agent, token } = await provisionAgent(h, { policy, actions: ACTIONS });
    const { invoice, second, paying2, open2 } = await secondFailedByStaleLookup(agent.id, token);
    let open3!: () => void;
    gateNext = new Promise((r) => (open3 = r));
    try {
      const paying3 = pay(token, { invoice: invoice.invoice, maxFeeMsat: '1000' });
      await waitFor(async () => (await inFlightOf(invoice.paymentHash)) !== undefined);
      const third = (await inFlightOf(invoice.paymentHash))!.id;
      // Attempt 2 reaches LND and pays: charged after its failure (attempt 3 active: its record stays failed).
      open2();
      const r2 = await paying2;
      assert.equal(r2.status, 502, JSON.stringify(r2.body));
      assert.ok(ln.isPaid(invoice.paymentHash));
      assert.deepEqual(await used(h, agent.id), { amount: 50_000n + 20n + 51_000n, count: 3 }, "attempt 2 charged; attempt 3's hold");
      // Attempt 3 reaches LND: a duplicate of a paid invoice, the success read back.
      open3();
      const r3 = await paying3;
      assert.equal(r3.status, 200, JSON.stringify(r3.body));
      assert.equal(r3.body.status, 'succeeded');
      assert.equal(r3.body.paymentId, third);
      assert.equal(sha256hex(r3.body.preimage), invoice.paymentHash, "the later attempt's agent gets the preimage");
      assert.deepEqual(await used(h, agent.id), { amount: 50_020n, count: 3 }, "charged once (amount + real fee); attempt 3's hold released; one request count per attempt");
      const { charged, uncharged } = await succeededOf(agent.name, invoice.paymentHash);
      assert.deepEqual(charged.map((e) => e.data.paymentId), [second]);
      assert.deepEqual(uncharged.map((e) => [e.data.paymentId, e.data.chargedBy]), [[third, second]]);
      assert.equal((await h.airlock.store.getLightningPayment(third))!.state, 'succeeded');
    } finally {
      open2();
      open3();
    }
    assert.equal((await h.admin('POST', '/v1/audit/verify')).body.ok, true);
  });

  test('attempt 2 recorded failed, the retry (attempt 3) pays and is charged, then attempt 2 pays late: recorded, alerted (alreadyCharged), not charged again', async () => {
    const { agent, token } = await provisionAgent(h, { policy, actions: ACTIONS });
    const { invoice, second, paying2, open2 } = await secondFailedByStaleLookup(agent.id, token);
    try {
      const r3 = await pay(token, { invoice: invoice.invoice, maxFeeMsat: '1000' });
      assert.equal(r3.status, 200, JSON.stringify(r3.body));
      assert.equal(r3.body.status, 'succeeded');
      assert.equal(sha256hex(r3.body.preimage), invoice.paymentHash);
      const third = r3.body.paymentId as string;
      assert.deepEqual(await used(h, agent.id), { amount: 50_020n, count: 3 });
      open2();
      await paying2;
      const late = (await h.airlock.store.getLightningPayment(second))!;
      assert.equal(late.state, 'failed');
      assert.equal(late.preimage, invoice.preimage, 'the late success is recorded');
      assert.deepEqual(await used(h, agent.id), { amount: 50_020n, count: 3 }, 'charged once');
      const { charged, uncharged } = await succeededOf(agent.name, invoice.paymentHash);
      assert.deepEqual(charged.map((e) => e.data.paymentId), [third]);
      assert.deepEqual(uncharged.map((e) => [e.data.paymentId, e.data.chargedBy, e.data.afterFailed]), [[second, third, true]]);
      const alerts = (await auditOf(h, agent.name, 'alert.lightning')).filter((e) => e.data.reason === 'succeeded_after_failed' && e.data.paymentId === second);
      assert.equal(alerts.length, 1);
      assert.equal(alerts[0].data.alreadyCharged, true);
      assert.equal(alerts[0].data.chargedBy, third);
      // The agent's later reads still get the paid payment, preimage included.
      const got = await h.call('GET', `/v1/lightning/payments/${third}`, { token });
      assert.equal(got.body.status, 'succeeded');
      assert.equal(got.body.preimage, invoice.preimage);
    } finally {
      open2();
    }
    assert.equal((await h.admin('POST', '/v1/audit/verify')).body.ok, true);
  });

  test("two instances concluding two records of one paid hash at the same moment (attempt 2's late success, attempt 3's success) charge it once", async () => {
    const { agent, session } = await provisionAgent(h, { policy, actions: ACTIONS });
    syncClock();
    const now = h.clock!.now();
    // Several hashes at once, so the two instances' transactions overlap.
    const cases = await h.airlock.store.transaction(async (tx) => {
      const out: { invoice: ReturnType<ReturnType<LightningNetwork['payee']>['invoice']>; second: LightningPaymentRecord; third: LightningPaymentRecord }[] = [];
      for (let i = 0; i < 6; i++) {
        const invoice = ln.payee().invoice({ amountMsat: 50_000n });
        const base = { agentId: agent.id, sessionId: session.id, auditSeq: 1, backend: 'lnd', network: BITCOIN_CHAINS.regtest, paymentHash: invoice.paymentHash, payee: invoice.payee, invoice: invoice.invoice, amountMsat: 50_000n, maxFeeMsat: 1000n, state: 'in_flight' as const, expiresAt: Math.floor(now / 1000) + 3600, timeoutSeconds: 2, createdAt: now, updatedAt: now };
        const second: LightningPaymentRecord = { ...base, id: `lnp_race${i}a${String(Date.now()).slice(-6)}` };
        await tx.holdLightningPayment(second, []);
        await tx.finishLightningPayment(second.id, { state: 'failed', failureReason: 'no_route' }, [], now, 1);
        const third: LightningPaymentRecord = { ...base, id: `lnp_race${i}b${String(Date.now()).slice(-6)}`, createdAt: now + 1 };
        await tx.holdLightningPayment(third, []);
        out.push({ invoice, second, third });
      }
      return out;
    });
    const b = await openB();
    try {
      const succeeded = (c: (typeof cases)[number]) => ({ state: 'succeeded' as const, preimage: c.invoice.preimage, feeMsat: 20n });
      await Promise.all(cases.flatMap((c) => [finishOf(h.airlock)(c.second, succeeded(c), 'pay'), finishOf(b)(c.third, succeeded(c), 'lookup')]));
    } finally {
      await b.close();
    }
    assert.deepEqual(await used(h, agent.id), { amount: 6n * 50_020n, count: 6 }, 'each hash charged once (amount + fee), one request count each');
    for (const c of cases) {
      const { charged, uncharged } = await succeededOf(agent.name, c.invoice.paymentHash);
      assert.equal(charged.length, 1, c.invoice.paymentHash);
      assert.equal(uncharged.length, 1);
      assert.equal(uncharged[0].data.chargedBy, charged[0].data.paymentId);
      assert.equal((await h.airlock.store.getLightningPayment(c.third.id))!.state, 'succeeded');
    }
  });

  test("one agent's payments held in flight (more than a round looks up) cannot starve another agent's from the reconciler", async () => {
    const attacker = await provisionAgent(h, { policy, actions: ACTIONS });
    const victim = await provisionAgent(h, { policy, actions: ACTIONS });
    const evil = ln.payee();
    const holds = Array.from({ length: 5 }, () => evil.invoice({ amountMsat: 1_000n }));
    for (const i of holds) ln.script(i.paymentHash, { kind: 'hang' });
    const answers = await Promise.all(holds.map((i) => pay(attacker.token, { invoice: i.invoice, maxFeeMsat: '100' })));
    for (const a of answers) assert.equal(a.status, 202, JSON.stringify(a.body));
    const invoice = ln.payee().invoice({ amountMsat: 50_000n });
    ln.script(invoice.paymentHash, { kind: 'hang' });
    const v = await pay(victim.token, { invoice: invoice.invoice, maxFeeMsat: '1000' });
    assert.equal(v.status, 202, JSON.stringify(v.body));
    ln.release(invoice.paymentHash, { succeed: true, feeMsat: 10n });
    await waitFor(() => lnd.paymentStatus(invoice.paymentHash) === 'SUCCEEDED');
    // Six payments in flight, three a round: the victim's is looked up within two rounds (three, from wherever a
    // previous round left off).
    const rounds: any[] = [];
    for (let i = 0; i < 3 && (await h.airlock.store.getLightningPayment(v.body.paymentId))!.state === 'in_flight'; i++) {
      rounds.push((await h.admin('POST', '/v1/lightning/reconcile')).body);
    }
    for (const r of rounds) assert.ok(r.checked <= 3, JSON.stringify(rounds));
    const got = await h.call('GET', `/v1/lightning/payments/${v.body.paymentId}`, { token: victim.token });
    assert.equal(got.body.status, 'succeeded', JSON.stringify(rounds));
    assert.equal((await used(h, victim.agent.id)).amount, 50_010n, 'amount + real fee');
    for (const i of holds) ln.release(i.paymentHash, { succeed: false, reason: 'no_route' });
  });

  test('an invoice whose expiry is beyond any sane bound (2^44 s) is refused as malformed; the payment list still answers', async () => {
    const { agent, token } = await provisionAgent(h, { policy, actions: ACTIONS });
    const huge = ln.payee().invoice({ amountMsat: 10_000n, expirySeconds: 2 ** 44 });
    const res = await pay(token, { invoice: huge.invoice, maxFeeMsat: '1000' });
    assert.equal(res.status, 400, JSON.stringify(res.body));
    assert.equal(res.body.error.code, 'invoice_malformed');
    const yearish = ln.payee().invoice({ amountMsat: 10_000n, expirySeconds: 366 * 24 * 3600 });
    assert.equal((await pay(token, { invoice: yearish.invoice, maxFeeMsat: '1000' })).body.error?.code, 'invoice_malformed');
    assert.equal(lnd.paymentStatus(huge.paymentHash), undefined, 'nothing was sent');
    // A record stored before the bound (its expiry beyond what a date holds) does not break the operators' list.
    const old: LightningPaymentRecord = {
      id: 'lnp_00000000000000ff', agentId: agent.id, sessionId: 'ses_old', auditSeq: 1, backend: 'lnd', network: BITCOIN_CHAINS.regtest, paymentHash: huge.paymentHash, payee: huge.payee,
      invoice: huge.invoice, amountMsat: 10_000n, maxFeeMsat: 1000n, state: 'in_flight', expiresAt: Math.floor(Date.now() / 1000) + 2 ** 44, timeoutSeconds: 2, createdAt: Date.now(), updatedAt: Date.now(),
    };
    await h.airlock.store.transaction((tx) => tx.holdLightningPayment(old, []));
    const list = await h.admin('GET', `/v1/lightning/payments?agent=${agent.name}`);
    assert.equal(list.status, 200, JSON.stringify(list.body));
    assert.equal(list.body.payments.length, 1);
  });
});

describe('Lightning retries over NWC: the confirming lookup after an unanswered pay_invoice reads the first attempt', () => {
  let h: Harness;
  let ln: LightningNetwork;
  let wallet: TestWalletService;
  let stack: NwcStack;
  before(async () => {
    stack = await startNwcStack('sqlite', { requestTimeoutMs: 5_000, manualClock: true });
    ({ h, network: ln, wallet } = stack);
  });
  after(() => stack.close());

  test('a wallet slow to take up the retry: answered in flight (not failed), the hold kept; once the wallet paid, the reconciler charges it', async () => {
    const { agent, token } = await provisionAgent(h, { policy, actions: ACTIONS });
    const invoice = ln.payee().invoice({ amountMsat: 50_000n });
    ln.script(invoice.paymentHash, { kind: 'fail', reason: 'no_route' });
    // An NWC failure is believed once no copy of the request can still arrive: after the pay timeout and the grace.
    const first = await h.call('POST', '/v1/lightning/pay', { token, body: { invoice: invoice.invoice, maxFeeMsat: '1000' } });
    assert.equal(first.status, 202, JSON.stringify(first.body));
    h.clock!.advance(62_000);
    assert.deepEqual((await h.admin('POST', '/v1/lightning/reconcile')).body, { checked: 1, succeeded: 0, failed: 1, errors: 0 });
    ln.script(invoice.paymentHash, { kind: 'succeed', feeMsat: 20n });
    // The wallet takes up the retry only after Airlock stopped waiting for its answer (a late relay, a busy wallet).
    const w = wallet as unknown as { pay: (...a: unknown[]) => Promise<unknown> };
    const original = w.pay.bind(wallet);
    w.pay = async (...a: unknown[]) => {
      await new Promise((r) => setTimeout(r, 2_500));
      return original(...a);
    };
    try {
      const res = await h.call('POST', '/v1/lightning/pay', { token, body: { invoice: invoice.invoice, maxFeeMsat: '1000' } });
      assert.equal(res.status, 202, JSON.stringify(res.body));
      assert.equal(res.body.status, 'in_flight');
      assert.equal((await used(h, agent.id)).amount, 51_000n, 'amount + fee limit still held');
      await waitFor(() => ln.isPaid(invoice.paymentHash) && wallet.payments.get(invoice.paymentHash)?.state === 'settled');
      assert.deepEqual((await h.admin('POST', '/v1/lightning/reconcile')).body, { checked: 1, succeeded: 1, failed: 0, errors: 0 });
    } finally {
      w.pay = original;
    }
    assert.deepEqual(await used(h, agent.id), { amount: 50_020n, count: 2 });
    assert.equal((await auditOf(h, agent.name, 'lightning.succeeded')).length, 1);
    const payments = (await h.admin('GET', `/v1/lightning/payments?agent=${agent.name}`)).body.payments as any[];
    assert.deepEqual(payments.map((p) => p.state).sort(), ['failed', 'succeeded']);
  });
});
