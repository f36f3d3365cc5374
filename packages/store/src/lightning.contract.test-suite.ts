/**
 * Lightning payment records (core/ports/lightning-payments.ts, the Lightning part of StoreTx), part of the store
 * contract: a held payment is in flight and its worst case counted by every window; one payment per hash is in
 * flight or succeeded; finishing releases every hold and leaves exactly the charges it names; a late success of a
 * failed payment is charged exactly once; the reconciler pages through every payment in flight exactly once; each
 * operator alert of a payment is recorded once.
 * The `check…` functions race several instances on one database (run when the caller gives `instances`: PostgreSQL):
 * holds of one hash, finishes of one payment, late charges of one failed payment, a late charge beside a hold, and
 * alerts of one payment.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { AirlockError, bitcoinAsset, COUNT_ASSET, seriesFor, type LedgerWrite, type LightningFinish, type LightningPaymentRecord, type Store, type WindowTotal } from '@airlock/core';

const NETWORK = 'bip122:000000000019d6689c085ae165831e93';
const BTC = bitcoinAsset(NETWORK);
const AGENT = 'ag_lightning000001';
const SESSION = 'ses_lightning00001';
const T0 = 1_700_000_000_000;
const MINUTE = 60_000;
const DAY = 86_400_000;

let made = 0;
const hex64 = (n: number | string, salt: string) => createHash('sha256').update(`${salt}:${n}`).digest('hex');
const preimages = new Map<string, string>();
/** The preimage of the payment's hash (the store does not check it: the service does). */
const preimageOf = (p: Pick<LightningPaymentRecord, 'paymentHash'>) => preimages.get(p.paymentHash)!;

/** A new in-flight record, every optional field absent unless `over` sets it. Ids `lnp_` + 16 hex, as the service makes them. */
function payment(over: Partial<LightningPaymentRecord> = {}): LightningPaymentRecord {
  const n = ++made;
  // `lnp_e…`: the explicit ids tests pick start otherwise.
  const id = over.id ?? `lnp_e${n.toString(16).padStart(15, '0')}`;
  const preimage = hex64(n, 'preimage');
  const paymentHash = createHash('sha256').update(Buffer.from(preimage, 'hex')).digest('hex');
  preimages.set(paymentHash, preimage);
  const createdAt = over.createdAt ?? T0 + n;
  return {
    id,
    agentId: AGENT,
    sessionId: SESSION,
    auditSeq: n,
    backend: 'lnd',
    network: NETWORK,
    paymentHash,
    payee: `02${hex64(n, 'payee')}`,
    invoice: `lnbc210n1p${hex64(n, 'invoice').slice(0, 40)}`,
    amountMsat: 21_000n,
    maxFeeMsat: 2_000n,
    state: 'in_flight',
    expiresAt: Math.floor(T0 / 1000) + 3600,
    timeoutSeconds: 60,
    createdAt,
    updatedAt: createdAt,
    ...over,
  };
}

/** The series lightning.pay charges (policy/ledger-writes.ts): the fleet (striped on PostgreSQL), the agent and its session. */
const seriesOf = (p: Pick<LightningPaymentRecord, 'agentId' | 'sessionId'>) => [seriesFor.fleet(), seriesFor.agent(p.agentId), seriesFor.session(p.sessionId)];
const SERIES = seriesOf({ agentId: AGENT, sessionId: SESSION });

/** `msat` on the bitcoin asset of each series of `p`, and with `requests` its request counted (COUNT_ASSET). */
function writes(p: LightningPaymentRecord, msat: bigint | undefined, requests: boolean): LedgerWrite[] {
  return seriesOf(p).flatMap((series) => [
    ...(msat !== undefined ? [{ series, asset: BTC, amount: msat, count: 1 }] : []),
    ...(requests ? [{ series, asset: COUNT_ASSET, amount: 0n, count: 1 }] : []),
  ]);
}
/** What a payment in flight holds: its worst case (amount + fee limit) and its request. */
const holdOf = (p: LightningPaymentRecord) => writes(p, p.amountMsat + p.maxFeeMsat, true);
/** What a success is charged: what it cost (amount + the fee paid) and its request. */
const costOf = (p: LightningPaymentRecord, feeMsat: bigint) => writes(p, p.amountMsat + feeMsat, true);
/** What a failure is charged: its request alone. */
const requestOf = (p: LightningPaymentRecord) => writes(p, undefined, true);
/** What a late success of a failed payment is charged: the amount and the fee (its request stayed charged). */
const lateCostOf = (p: LightningPaymentRecord, feeMsat: bigint) => writes(p, p.amountMsat + feeMsat, false);

/** A hold as a window that starts after its time counts it: its amounts, not its request count. */
const amountsOnly = (holds: LedgerWrite[]) => holds.map((w) => ({ ...w, count: 0 }));

const key = (series: string, asset: string) => `${series} ${asset}`;
const queried = (series: string[]) => series.flatMap((s) => [BTC, COUNT_ASSET].map((asset) => ({ series: s, asset })));

/** The window totals of every (series, asset) a payment touches (`series`: the test agent's), for windows starting at `sinceMs`. */
async function totals(store: Store, sinceMs = 0, series = SERIES): Promise<Record<string, WindowTotal>> {
  const queries = queried(series).map((q) => ({ ...q, sinceMs }));
  const got = await store.transaction((tx) => tx.windowTotals(queries));
  return Object.fromEntries(queries.map((q, i) => [key(q.series, q.asset), { amount: got[i]!.amount, count: Number(got[i]!.count) }]));
}

/** What `totals` must read (over `series`) when exactly these writes are counted. */
function sumOver(series: string[], ...lists: LedgerWrite[][]): Record<string, WindowTotal> {
  const out: Record<string, WindowTotal> = Object.fromEntries(queried(series).map((q) => [key(q.series, q.asset), { amount: 0n, count: 0 }]));
  for (const w of lists.flat()) {
    const t = out[key(w.series, w.asset)];
    assert.ok(t, `a write to ${w.series} outside the series read`);
    out[key(w.series, w.asset)] = { amount: t.amount + w.amount, count: t.count + w.count };
  }
  return out;
}
const sum = (...lists: LedgerWrite[][]) => sumOver(SERIES, ...lists);

const hold = (store: Store, p: LightningPaymentRecord) => store.transaction((tx) => tx.holdLightningPayment(p, holdOf(p)));
const finishPayment = (store: Store, id: string, finish: LightningFinish, charges: LedgerWrite[], now: number, auditSeq: number) =>
  store.transaction((tx) => tx.finishLightningPayment(id, finish, charges, now, auditSeq));
const chargeLate = (store: Store, id: string, finish: { preimage: string; feeMsat: bigint }, charges: LedgerWrite[], now: number, auditSeq: number) =>
  store.transaction((tx) => tx.chargeLightningAfterFailure(id, finish, charges, now, auditSeq));
const byHash = (store: Store, hash: string, forUpdate = false) => store.transaction((tx) => tx.lightningPaymentsByHash(hash, { forUpdate }));
const active = (store: Store, hash: string) => store.transaction((tx) => tx.activeLightningPayment(hash));
const inFlight = (store: Store, limit = 1000, after?: { createdAt: number; id: string }) => store.transaction((tx) => tx.inFlightLightningPayments(limit, after));

/** Everything a Lightning write may change, as seen through the port: compared before and after a refused one. */
async function snapshot(store: Store, hashes: string[]) {
  return {
    records: await Promise.all(hashes.map((h) => byHash(store, h))),
    active: await Promise.all(hashes.map((h) => active(store, h))),
    inFlight: await inFlight(store),
    totals: await totals(store),
    later: await totals(store, T0 + 365 * DAY),
  };
}

async function rejectsWithCode(p: Promise<unknown>, expected: string, message?: string): Promise<void> {
  await assert.rejects(p, (e) => {
    assert.ok(e instanceof AirlockError && e.code === expected, `${message ?? ''} expected AirlockError(${expected}), got ${String(e)}`);
    return true;
  });
}

/** `done` minus `failureReason`: what a late charge records besides it is asserted; whether the old reason stays is not part of the contract. */
function withoutReason(p: LightningPaymentRecord): Omit<LightningPaymentRecord, 'failureReason'> {
  const { failureReason: _reason, ...rest } = p;
  return rest;
}

/**
 * Several agents paying one invoice at once, one attempt each spread over `stores` (instances on one database). The
 * agents share no series but the fleet, so no budget lock serializes them: only the store's one-payment-per-hash
 * rule does. Exactly one payment is recorded, every other attempt fails with `conflict`, and only its holds count.
 */
export async function checkConcurrentLightningHolds(stores: Store[], rounds = 4, attempts = 6): Promise<void> {
  const first = stores[0]!;
  for (let round = 0; round < rounds; round++) {
    const shared = payment().paymentHash;
    const candidates = Array.from({ length: attempts }, (_, i) => payment({ paymentHash: shared, agentId: `ag_race${round}x${i}`, sessionId: `ses_race${round}x${i}` }));
    const series = [...new Set(candidates.flatMap(seriesOf))];
    const before = await totals(first, 0, series);
    const results = await Promise.allSettled(candidates.map((p, i) => hold(stores[i % stores.length]!, p)));
    const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [candidates[i]!] : []));
    assert.equal(won.length, 1, `round ${round}: exactly one payment of the hash is recorded`);
    for (const r of results) {
      if (r.status === 'rejected') assert.ok(r.reason instanceof AirlockError && r.reason.code === 'conflict', `round ${round}: the others fail with conflict, got ${String(r.reason)}`);
    }
    for (const store of stores) {
      assert.deepEqual(await byHash(store, shared), won, `round ${round}: one record of the hash`);
      assert.deepEqual(await totals(store, 0, series), addTotals(before, sumOver(series, holdOf(won[0]!))), `round ${round}: only its holds count`);
    }
  }
}

function addTotals(a: Record<string, WindowTotal>, b: Record<string, WindowTotal>): Record<string, WindowTotal> {
  return Object.fromEntries(Object.keys(a).map((k) => [k, { amount: a[k]!.amount + b[k]!.amount, count: a[k]!.count + b[k]!.count }]));
}

/**
 * One payment in flight finished by several transactions at once (the pay call's answer and reconcilers, on
 * `stores`), half with a success and half with a failure: exactly one finishes it, every other fails with
 * `conflict`, its holds are released once and only the winner's charges count.
 */
export async function checkConcurrentFinishes(stores: Store[], rounds = 4, attempts = 6): Promise<void> {
  const first = stores[0]!;
  for (let round = 0; round < rounds; round++) {
    const before = await totals(first);
    const p = payment();
    await hold(first, p);
    const answers = Array.from({ length: attempts }, (_, i): { finish: LightningFinish; charges: LedgerWrite[] } =>
      i % 2 === 0 ? { finish: { state: 'succeeded', preimage: preimageOf(p), feeMsat: 10n + BigInt(i) }, charges: costOf(p, 10n + BigInt(i)) } : { finish: { state: 'failed', failureReason: `no_route_${i}` }, charges: requestOf(p) });
    const results = await Promise.allSettled(answers.map((a, i) => stores[i % stores.length]!.transaction(async (tx) => {
      await tx.getLightningPayment(p.id);
      await new Promise((resolve) => setTimeout(resolve, 2));
      return tx.finishLightningPayment(p.id, a.finish, a.charges, T0 + 3 * DAY + round, 4_000 + round);
    })));
    const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [{ record: r.value, answer: answers[i]! }] : []));
    assert.equal(won.length, 1, `round ${round}: exactly one finish succeeds`);
    for (const r of results) {
      if (r.status === 'rejected') assert.ok(r.reason instanceof AirlockError && r.reason.code === 'conflict', `round ${round}: the others fail with conflict, got ${String(r.reason)}`);
    }
    const { record, answer } = won[0]!;
    assert.equal(record.state, answer.finish.state);
    for (const store of stores) {
      assert.deepEqual(await store.getLightningPayment(p.id), record, `round ${round}: the record is the winner's`);
      assert.deepEqual(await totals(store), addTotals(before, sum(answer.charges)), `round ${round}: holds released, the winner's charges alone counted`);
    }
  }
}

/**
 * A failed payment whose late success is charged by several transactions at once, spread over `stores` (instances
 * on one database). Each reads the record first without a lock (all may see it failed and uncharged), then
 * charges it: exactly one succeeds, every other fails with `conflict`, and the ledger is charged once.
 */
export async function checkConcurrentChargeAfterFailure(stores: Store[], rounds = 4, attempts = 6): Promise<void> {
  const first = stores[0]!;
  for (let round = 0; round < rounds; round++) {
    const p = payment();
    await hold(first, p);
    const failedAt = T0 + DAY + round * MINUTE;
    await finishPayment(first, p.id, { state: 'failed', failureReason: 'no_route' }, requestOf(p), failedAt, 1_000 + round);
    const before = await totals(first);
    // A different fee per attempt: the stored fee names the one that won.
    const results = await Promise.allSettled(Array.from({ length: attempts }, (_, i) => stores[i % stores.length]!.transaction(async (tx) => {
      await tx.getLightningPayment(p.id);
      await new Promise((resolve) => setTimeout(resolve, 2));
      return tx.chargeLightningAfterFailure(p.id, { preimage: preimageOf(p), feeMsat: 100n + BigInt(i) }, lateCostOf(p, 100n + BigInt(i)), failedAt + 1_000, 2_000 + round);
    })));
    const won = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    assert.equal(won.length, 1, `round ${round}: exactly one charge succeeds`);
    for (const r of results) {
      if (r.status === 'rejected') assert.ok(r.reason instanceof AirlockError && r.reason.code === 'conflict', `round ${round}: the others fail with conflict, got ${String(r.reason)}`);
    }
    const winner = won[0]!;
    assert.equal(winner.state, 'succeeded');
    assert.equal(winner.preimage, preimageOf(p));
    for (const store of stores) {
      assert.deepEqual(await store.getLightningPayment(p.id), winner, `round ${round}: the record is the winner's`);
      assert.deepEqual(await totals(store), addTotals(before, sum(lateCostOf(p, winner.feeMsat!))), `round ${round}: charged once`);
    }
  }
}

/**
 * A late success of a failed payment charged while another agent's payment of the same invoice is being held on
 * another instance: the hold's transaction has inserted (not committed) when the charge starts, and commits while
 * the charge runs. Either order the two could have run in alone has one answer: the hold is then in flight, so the
 * failed record keeps `failed` with its preimage and fee, and is charged. Nothing in the contract lets the charge
 * fail with `conflict`: the record was failed and carried no preimage.
 */
export async function checkChargeAfterFailureBesideConcurrentHold(stores: Store[]): Promise<void> {
  const [a, b] = [stores[0]!, stores[1 % stores.length]!];
  const failed = payment();
  await hold(a, failed);
  await finishPayment(a, failed.id, { state: 'failed', failureReason: 'timeout' }, requestOf(failed), T0 + 2 * DAY, 3_000);
  // Another agent (no series in common but the fleet, whose writers take different stripes): no budget lock orders the two.
  const retry = payment({ paymentHash: failed.paymentHash, agentId: 'ag_lightning_other', sessionId: 'ses_lightning_other', createdAt: T0 + 2 * DAY + 1, updatedAt: T0 + 2 * DAY + 1 });
  const series = [...new Set([...seriesOf(failed), ...seriesOf(retry)])];
  const before = await totals(a, 0, series);
  let commit!: () => void;
  const committing = new Promise<void>((resolve) => (commit = resolve));
  let inserted!: () => void;
  const holding = new Promise<void>((resolve) => (inserted = resolve));
  const holdTx = b.transaction(async (tx) => {
    await tx.holdLightningPayment(retry, holdOf(retry));
    inserted();
    await committing;
  });
  await holding;
  const charge = a.transaction((tx) => tx.chargeLightningAfterFailure(failed.id, { preimage: preimageOf(failed), feeMsat: 40n }, lateCostOf(failed, 40n), T0 + 2 * DAY + 2, 3_001));
  const settled = Promise.allSettled([charge]);
  // Long enough for the charge to get as far as it can while the hold is uncommitted.
  await new Promise((resolve) => setTimeout(resolve, 300));
  commit();
  await holdTx;
  const [outcome] = await settled;
  assert.equal(outcome!.status, 'fulfilled', `the charge of a failed, uncharged record succeeds (got ${outcome!.status === 'rejected' ? String(outcome!.reason) : ''})`);
  const done = (outcome as PromiseFulfilledResult<LightningPaymentRecord>).value;
  assert.deepEqual(withoutReason(done), { ...failed, state: 'failed', preimage: preimageOf(failed), feeMsat: 40n, finishedSeq: 3_001, updatedAt: T0 + 2 * DAY + 2 });
  assert.deepEqual(await active(a, failed.paymentHash), retry);
  assert.deepEqual(await totals(a, 0, series), addTotals(before, sumOver(series, lateCostOf(failed, 40n), holdOf(retry))), 'charged once, and the hold counted');
}

/**
 * One alert of one payment recorded by several transactions at once, spread over `stores` (instances on one
 * database: reconcilers reading the same unaccepted answer), each holding its transaction open a moment after
 * recording: exactly one records it (true), every other gets false, whichever commits first.
 */
export async function checkConcurrentLightningAlerts(stores: Store[], rounds = 4, attempts = 6): Promise<void> {
  const first = stores[0]!;
  const p = payment();
  await hold(first, p);
  for (let round = 0; round < rounds; round++) {
    const alertKey = `{"reason":"amount_mismatch","reportedMsat":"${round}"}`;
    const results = await Promise.all(Array.from({ length: attempts }, (_, i) => stores[i % stores.length]!.transaction(async (tx) => {
      const recorded = await tx.recordLightningAlert(p.id, alertKey, T0 + round);
      await new Promise((resolve) => setTimeout(resolve, 2));
      return recorded;
    })));
    assert.equal(results.filter((r) => r).length, 1, `round ${round}: exactly one transaction records the alert, got ${JSON.stringify(results)}`);
    for (const store of stores) assert.equal(await store.transaction((tx) => tx.recordLightningAlert(p.id, alertKey, T0 + round)), false, `round ${round}: recorded for every instance`);
  }
}

/**
 * `fresh`: a new, empty store each call (migrated here, closed at the end). `instances`: several instances on one
 * new, empty database, for the races (PostgreSQL; each call a new database).
 */
export function runLightningStoreContract(fresh: () => Promise<Store>, options: { instances?: () => Promise<Store[]> } = {}): void {
  describe('Store contract: Lightning payments', () => {
    const opened: Store[] = [];
    const open = async () => {
      const store = await fresh();
      opened.push(store);
      await store.migrate();
      return store;
    };
    after(async () => {
      for (const s of opened) await s.close().catch(() => undefined);
    });

    test('lightning: a held payment is in flight and reads back as held; its holds count in every window while it is in flight', async () => {
      const store = await open();
      const l402 = payment({
        amountMsat: (1n << 64n) + 5n, maxFeeMsat: (1n << 40n) + 1n, backend: 'nwc',
        resource: 'https://api.example/v1/data', origin: 'https://api.example', l402: { scheme: 'L402', macaroon: 'AgEEbHNhdAJCAAA', expiresAt: 1_800_000_000 },
      });
      const plain = payment();
      await store.transaction(async (tx) => {
        await tx.holdLightningPayment(l402, holdOf(l402));
        assert.deepEqual(await tx.getLightningPayment(l402.id), l402, 'read in its own transaction');
      });
      await hold(store, plain);
      assert.deepEqual(await store.getLightningPayment(l402.id), l402, 'every field round-trips (amounts above 2^64)');
      assert.deepEqual(await store.transaction((tx) => tx.getLightningPayment(plain.id)), plain, 'no optional field appears');
      assert.equal(await store.getLightningPayment('lnp_ffffffffffffffff'), undefined);
      assert.deepEqual(await active(store, l402.paymentHash), l402);
      assert.equal(await active(store, hex64(0, 'unknown')), undefined);
      assert.deepEqual(await inFlight(store), [l402, plain]);

      const held = sum(holdOf(l402), holdOf(plain));
      assert.deepEqual(await totals(store), held);
      // However old the hold, its amount is counted until the payment finishes: a window starting after it was made
      // counts it. Its count is the request, made at its time: counted only in the windows that time is in.
      assert.deepEqual(await totals(store, plain.createdAt + 30 * DAY), sum(amountsOnly(holdOf(l402)), amountsOnly(holdOf(plain))));
    });

    test('lightning: a second hold of a hash in flight or succeeded fails with conflict and changes nothing; after a failure the hash may be held again', async () => {
      const store = await open();
      const first = payment();
      const hash = first.paymentHash;
      const elsewhere = payment();
      await hold(store, first);

      let before = await snapshot(store, [hash, elsewhere.paymentHash]);
      await rejectsWithCode(hold(store, payment({ paymentHash: hash })), 'conflict', 'in flight:');
      // In a transaction that held another payment first: the transaction fails whole.
      await rejectsWithCode(store.transaction(async (tx) => {
        await tx.holdLightningPayment(elsewhere, holdOf(elsewhere));
        await tx.holdLightningPayment(payment({ paymentHash: hash }), holdOf(first));
      }), 'conflict');
      assert.deepEqual(await snapshot(store, [hash, elsewhere.paymentHash]), before, 'no second record, no second hold counted');
      assert.equal(await store.getLightningPayment(elsewhere.id), undefined);

      // Failed: the hash is free again.
      const failed = await finishPayment(store, first.id, { state: 'failed', failureReason: 'no_route' }, requestOf(first), T0 + MINUTE, 10);
      const retry = payment({ paymentHash: hash, createdAt: T0 + 2 * MINUTE, updatedAt: T0 + 2 * MINUTE });
      await hold(store, retry);
      assert.deepEqual(await active(store, hash), retry);
      assert.deepEqual(await byHash(store, hash), [failed, retry]);
      assert.deepEqual(await totals(store), sum(requestOf(first), holdOf(retry)));

      before = await snapshot(store, [hash]);
      await rejectsWithCode(hold(store, payment({ paymentHash: hash })), 'conflict', 'the retry in flight:');
      assert.deepEqual(await snapshot(store, [hash]), before);

      const paid = await finishPayment(store, retry.id, { state: 'succeeded', preimage: preimageOf(retry), feeMsat: 7n }, costOf(retry, 7n), T0 + 3 * MINUTE, 11);
      before = await snapshot(store, [hash]);
      await rejectsWithCode(hold(store, payment({ paymentHash: hash })), 'conflict', 'succeeded:');
      assert.deepEqual(await snapshot(store, [hash]), before);
      assert.deepEqual(before.records, [[failed, paid]]);
      assert.deepEqual(before.totals, sum(requestOf(first), costOf(retry, 7n)));
    });

    test('lightning: finishing in flight -> succeeded releases every hold, charges exactly what it cost and records preimage and fee; finishing again fails with conflict and changes nothing', async () => {
      const store = await open();
      const p = payment({ resource: 'https://api.example/v1/data', origin: 'https://api.example', l402: { scheme: 'LSAT', macaroon: 'AgEEbHNhdAJCAAA' } });
      const other = payment();
      await hold(store, p);
      await hold(store, other);
      const at = T0 + 10 * MINUTE;
      // A fee below the limit: the charge (amount + fee) is less than the hold (amount + limit), so neither
      // "hold + charge" nor "the larger of the two" can pass for it.
      const done = await finishPayment(store, p.id, { state: 'succeeded', preimage: preimageOf(p), feeMsat: 150n }, costOf(p, 150n), at, 41);
      const expected: LightningPaymentRecord = { ...p, state: 'succeeded', preimage: preimageOf(p), feeMsat: 150n, finishedSeq: 41, updatedAt: at };
      assert.deepEqual(done, expected);
      assert.deepEqual(await store.getLightningPayment(p.id), expected);
      assert.deepEqual(await active(store, p.paymentHash), expected, 'a succeeded payment is the active one of its hash');
      assert.deepEqual(await inFlight(store), [other]);

      assert.deepEqual(await totals(store), sum(costOf(p, 150n), holdOf(other)), 'exactly the charge, not the hold and the charge');
      assert.deepEqual(await totals(store, at), sum(costOf(p, 150n), amountsOnly(holdOf(other))), 'charged at `now` (the other hold, made before: its amount)');
      assert.deepEqual(await totals(store, at + 1), sum(amountsOnly(holdOf(other))), 'its hold counts in no window any more');

      const before = await snapshot(store, [p.paymentHash]);
      await rejectsWithCode(finishPayment(store, p.id, { state: 'succeeded', preimage: preimageOf(p), feeMsat: 150n }, costOf(p, 150n), at + MINUTE, 42), 'conflict');
      await rejectsWithCode(finishPayment(store, p.id, { state: 'failed', failureReason: 'timeout' }, requestOf(p), at + MINUTE, 43), 'conflict');
      assert.deepEqual(await snapshot(store, [p.paymentHash]), before, 'nothing charged twice, the record unchanged');
      await assert.rejects(finishPayment(store, 'lnp_ffffffffffffffff', { state: 'failed' }, requestOf(p), at + MINUTE, 44));
      assert.deepEqual(await snapshot(store, [p.paymentHash]), before);
    });

    test('lightning: finishing in flight -> failed releases every hold and leaves only what `charges` names; a failed payment cannot be finished again', async () => {
      const store = await open();
      const p = payment();
      const other = payment();
      const third = payment();
      for (const x of [p, other, third]) await hold(store, x);
      const at = T0 + 10 * MINUTE;
      const done = await finishPayment(store, p.id, { state: 'failed', failureReason: 'no_route' }, requestOf(p), at, 51);
      const expected: LightningPaymentRecord = { ...p, state: 'failed', failureReason: 'no_route', finishedSeq: 51, updatedAt: at };
      assert.deepEqual(done, expected);
      assert.deepEqual(await store.getLightningPayment(p.id), expected);
      assert.equal(await active(store, p.paymentHash), undefined, 'a failed payment is no active one');
      assert.deepEqual(await inFlight(store), [other, third]);
      assert.deepEqual(await totals(store), sum(requestOf(p), holdOf(other), holdOf(third)), 'its request counted, its amount released');
      assert.deepEqual(await totals(store, at + 1), sum(amountsOnly(holdOf(other)), amountsOnly(holdOf(third))), 'the holds made before the window: their amounts');

      // No charges at all: nothing of it remains.
      await finishPayment(store, other.id, { state: 'failed', failureReason: 'not_found_after_grace' }, [], at + 1, 52);
      assert.deepEqual(await totals(store), sum(requestOf(p), holdOf(third)));

      const before = await snapshot(store, [p.paymentHash, other.paymentHash]);
      await rejectsWithCode(finishPayment(store, p.id, { state: 'succeeded', preimage: preimageOf(p), feeMsat: 1n }, costOf(p, 1n), at + MINUTE, 53), 'conflict');
      await rejectsWithCode(finishPayment(store, other.id, { state: 'failed', failureReason: 'again' }, requestOf(other), at + MINUTE, 54), 'conflict');
      assert.deepEqual(await snapshot(store, [p.paymentHash, other.paymentHash]), before);
    });

    test('lightning: lightningPaymentsByHash returns every record of the hash, in any state, oldest first; an unknown hash none', async () => {
      const store = await open();
      const hash = payment().paymentHash;
      // Held in an order that is neither the age order nor the id order.
      const x = payment({ id: 'lnp_a000000000000000', paymentHash: hash, createdAt: T0 + 3_000, updatedAt: T0 + 3_000 });
      const y = payment({ id: 'lnp_f000000000000000', paymentHash: hash, createdAt: T0 + 1_000, updatedAt: T0 + 1_000 });
      const z = payment({ id: 'lnp_0000000000000001', paymentHash: hash, createdAt: T0 + 2_000, updatedAt: T0 + 2_000 });
      const noise = payment();
      await hold(store, noise);
      await hold(store, x);
      const xFailed = await finishPayment(store, x.id, { state: 'failed', failureReason: 'a' }, requestOf(x), T0 + 4_000, 61);
      await hold(store, y);
      const yFailed = await finishPayment(store, y.id, { state: 'failed', failureReason: 'b' }, requestOf(y), T0 + 5_000, 62);
      await hold(store, z);

      assert.deepEqual(await byHash(store, hash), [yFailed, z, xFailed]);
      assert.deepEqual(await byHash(store, hash, true), [yFailed, z, xFailed], 'forUpdate reads the same');
      const zPaid = await finishPayment(store, z.id, { state: 'succeeded', preimage: preimageOf(z), feeMsat: 3n }, costOf(z, 3n), T0 + 6_000, 63);
      assert.deepEqual(await byHash(store, hash), [yFailed, zPaid, xFailed]);
      assert.deepEqual(await byHash(store, noise.paymentHash), [noise]);
      assert.deepEqual(await byHash(store, hex64(0, 'unknown')), []);
      assert.deepEqual(await byHash(store, hex64(0, 'unknown'), true), []);
    });

    test('lightning: chargeLightningAfterFailure moves failed -> succeeded and charges it exactly once, with its transaction', async () => {
      const store = await open();
      const p = payment();
      await hold(store, p);
      const failedAt = T0 + MINUTE;
      await finishPayment(store, p.id, { state: 'failed', failureReason: 'timeout' }, requestOf(p), failedAt, 70);

      // Rolled back with its transaction (the audit entry failed, say): nothing charged, still failed and uncharged.
      const before = await snapshot(store, [p.paymentHash]);
      await assert.rejects(store.transaction(async (tx) => {
        await tx.chargeLightningAfterFailure(p.id, { preimage: preimageOf(p), feeMsat: 300n }, lateCostOf(p, 300n), failedAt + 1, 71);
        throw new Error('abort');
      }), /abort/);
      assert.deepEqual(await snapshot(store, [p.paymentHash]), before);

      const at = T0 + 20 * MINUTE;
      const done = await chargeLate(store, p.id, { preimage: preimageOf(p), feeMsat: 300n }, lateCostOf(p, 300n), at, 72);
      const expected = { ...p, state: 'succeeded' as const, preimage: preimageOf(p), feeMsat: 300n, finishedSeq: 72, updatedAt: at };
      assert.deepEqual(withoutReason(done), expected);
      assert.deepEqual(withoutReason((await store.getLightningPayment(p.id))!), expected);
      assert.deepEqual(await active(store, p.paymentHash), done, 'now the active payment of its hash');
      assert.deepEqual(await totals(store), sum(requestOf(p), lateCostOf(p, 300n)), 'the request (from the failure) and the amount and fee, once');
      assert.deepEqual(await totals(store, at), sum(lateCostOf(p, 300n)), 'charged at `now`');

      const after = await snapshot(store, [p.paymentHash]);
      await rejectsWithCode(chargeLate(store, p.id, { preimage: preimageOf(p), feeMsat: 300n }, lateCostOf(p, 300n), at + 1, 73), 'conflict', 'a second charge:');
      assert.deepEqual(await snapshot(store, [p.paymentHash]), after, 'charged once');
    });

    test('lightning: chargeLightningAfterFailure on a payment in flight or succeeded fails with conflict and charges nothing', async () => {
      const store = await open();
      const p = payment();
      await hold(store, p);
      let before = await snapshot(store, [p.paymentHash]);
      await rejectsWithCode(chargeLate(store, p.id, { preimage: preimageOf(p), feeMsat: 5n }, lateCostOf(p, 5n), T0 + MINUTE, 80), 'conflict', 'in flight:');
      assert.deepEqual(await snapshot(store, [p.paymentHash]), before, 'still in flight, still held, nothing charged');

      await finishPayment(store, p.id, { state: 'succeeded', preimage: preimageOf(p), feeMsat: 5n }, costOf(p, 5n), T0 + 2 * MINUTE, 81);
      before = await snapshot(store, [p.paymentHash]);
      await rejectsWithCode(chargeLate(store, p.id, { preimage: preimageOf(p), feeMsat: 5n }, lateCostOf(p, 5n), T0 + 3 * MINUTE, 82), 'conflict', 'succeeded:');
      assert.deepEqual(await snapshot(store, [p.paymentHash]), before);
    });

    test('lightning: chargeLightningAfterFailure while another payment of the hash is in flight or succeeded keeps the record failed, with its preimage and fee, and charges it', async () => {
      const store = await open();
      // Another payment of the hash in flight.
      const a = payment();
      await hold(store, a);
      await finishPayment(store, a.id, { state: 'failed', failureReason: 'timeout' }, requestOf(a), T0 + MINUTE, 90);
      const b = payment({ paymentHash: a.paymentHash, createdAt: T0 + 2 * MINUTE, updatedAt: T0 + 2 * MINUTE });
      await hold(store, b);
      const at = T0 + 3 * MINUTE;
      const done = await chargeLate(store, a.id, { preimage: preimageOf(a), feeMsat: 100n }, lateCostOf(a, 100n), at, 91);
      const expectedA = { ...a, state: 'failed' as const, preimage: preimageOf(a), feeMsat: 100n, finishedSeq: 91, updatedAt: at };
      assert.deepEqual(withoutReason(done), expectedA);
      assert.deepEqual(withoutReason((await store.getLightningPayment(a.id))!), expectedA);
      assert.deepEqual(await active(store, a.paymentHash), b, 'the other payment stays the active one, unchanged');
      assert.deepEqual(await byHash(store, a.paymentHash), [done, b]);
      assert.deepEqual(await totals(store), sum(requestOf(a), lateCostOf(a, 100n), holdOf(b)), 'charged all the same');
      // It carries a preimage now: a second charge fails.
      let before = await snapshot(store, [a.paymentHash]);
      await rejectsWithCode(chargeLate(store, a.id, { preimage: preimageOf(a), feeMsat: 100n }, lateCostOf(a, 100n), at + 1, 92), 'conflict', 'charged and failed:');
      assert.deepEqual(await snapshot(store, [a.paymentHash]), before);

      // Another payment of the hash succeeded.
      const c = payment();
      await hold(store, c);
      await finishPayment(store, c.id, { state: 'failed', failureReason: 'timeout' }, requestOf(c), T0 + 4 * MINUTE, 93);
      const d = payment({ paymentHash: c.paymentHash, createdAt: T0 + 5 * MINUTE, updatedAt: T0 + 5 * MINUTE });
      await hold(store, d);
      const dPaid = await finishPayment(store, d.id, { state: 'succeeded', preimage: preimageOf(c), feeMsat: 9n }, costOf(d, 9n), T0 + 6 * MINUTE, 94);
      const lateAt = T0 + 7 * MINUTE;
      const cDone = await chargeLate(store, c.id, { preimage: preimageOf(c), feeMsat: 11n }, lateCostOf(c, 11n), lateAt, 95);
      const expectedC = { ...c, state: 'failed' as const, preimage: preimageOf(c), feeMsat: 11n, finishedSeq: 95, updatedAt: lateAt };
      assert.deepEqual(withoutReason(cDone), expectedC);
      assert.deepEqual(await active(store, c.paymentHash), dPaid);
      assert.deepEqual(await byHash(store, c.paymentHash), [cDone, dPaid]);
      assert.deepEqual(await totals(store), sum(requestOf(a), lateCostOf(a, 100n), holdOf(b), requestOf(c), costOf(d, 9n), lateCostOf(c, 11n)));
      before = await snapshot(store, [a.paymentHash, c.paymentHash]);
      await rejectsWithCode(chargeLate(store, c.id, { preimage: preimageOf(c), feeMsat: 11n }, lateCostOf(c, 11n), lateAt + 1, 96), 'conflict');
      assert.deepEqual(await snapshot(store, [a.paymentHash, c.paymentHash]), before);
    });

    test('lightning: inFlightLightningPayments is ordered by (createdAt, id) and paging with `after` visits every payment in flight exactly once, skipping finished ones', async () => {
      const store = await open();
      const at = (ms: number, id: string) => payment({ id: `lnp_${id}`, createdAt: T0 + ms, updatedAt: T0 + ms });
      // Held out of order; several share a createdAt (a page boundary falls inside the tie).
      const all = [
        at(3, 'c000000000000000'), at(1, 'b000000000000000'), at(2, '2000000000000000'), at(1, '0000000000000009'),
        at(1, 'f000000000000000'), at(5, '5000000000000000'), at(1, '1a00000000000000'), at(2, '1000000000000000'), at(4, 'a000000000000000'),
      ];
      for (const p of all) await hold(store, p);
      const succeeded = all[6]!; // in the middle of the tie at T0+1
      const failed = all[2]!;
      await finishPayment(store, succeeded.id, { state: 'succeeded', preimage: preimageOf(succeeded), feeMsat: 1n }, costOf(succeeded, 1n), T0 + MINUTE, 100);
      await finishPayment(store, failed.id, { state: 'failed', failureReason: 'no_route' }, requestOf(failed), T0 + MINUTE, 101);
      const order = (p: LightningPaymentRecord, q: LightningPaymentRecord) => p.createdAt - q.createdAt || (p.id < q.id ? -1 : p.id > q.id ? 1 : 0);
      const expected = all.filter((p) => p !== succeeded && p !== failed).sort(order);
      assert.deepEqual(expected.map((p) => p.id), ['lnp_0000000000000009', 'lnp_b000000000000000', 'lnp_f000000000000000', 'lnp_1000000000000000', 'lnp_c000000000000000', 'lnp_a000000000000000', 'lnp_5000000000000000']);

      assert.deepEqual(await inFlight(store), expected);
      assert.deepEqual(await inFlight(store, 3), expected.slice(0, 3));
      for (const limit of [1, 2, 3, 7]) {
        const seen: string[] = [];
        let after: { createdAt: number; id: string } | undefined;
        for (let pages = 0; pages <= expected.length + 1; pages++) {
          const page = await inFlight(store, limit, after);
          assert.ok(page.length <= limit);
          seen.push(...page.map((p) => p.id));
          if (page.length < limit) break;
          after = { createdAt: page.at(-1)!.createdAt, id: page.at(-1)!.id };
        }
        assert.deepEqual(seen, expected.map((p) => p.id), `limit ${limit}: each in order, exactly once`);
      }
      // A cursor at a payment that has finished since (the reconciler's last one), or between two, still pages on.
      const position = (p: LightningPaymentRecord) => ({ createdAt: p.createdAt, id: p.id });
      const later = (c: { createdAt: number; id: string }) => expected.filter((p) => p.createdAt > c.createdAt || (p.createdAt === c.createdAt && p.id > c.id));
      assert.deepEqual(await inFlight(store, 100, position(succeeded)), later(position(succeeded)));
      assert.deepEqual(await inFlight(store, 100, position(failed)), later(position(failed)));
      assert.deepEqual(await inFlight(store, 100, { createdAt: T0 + 1, id: 'lnp_c' }), later({ createdAt: T0 + 1, id: 'lnp_c' }));
      assert.deepEqual(await inFlight(store, 100, position(expected.at(-1)!)), []);
      assert.equal(later({ createdAt: T0 + 1, id: 'lnp_c' })[0]!.id, 'lnp_f000000000000000');
    });

    test('lightning: recordLightningAlert records each alert key of a payment once, durably, and not in a transaction that rolled back', async () => {
      const store = await open();
      const p = payment();
      const other = payment();
      await hold(store, p);
      await hold(store, other);
      const record = (id: string, alertKey: string, at = T0) => store.transaction((tx) => tx.recordLightningAlert(id, alertKey, at));
      const mismatch = (msat: string) => `{"reason":"amount_mismatch","reportedMsat":"${msat}"}`;

      assert.equal(await record(p.id, mismatch('5000000')), true, 'the first time');
      assert.equal(await record(p.id, mismatch('5000000'), T0 + MINUTE), false, 'again: already raised');
      assert.equal(await record(p.id, mismatch('5000000'), T0 + DAY), false, 'and again');
      assert.equal(await record(p.id, mismatch('6000000')), true, 'another figure is another alert');
      assert.equal(await record(p.id, '{"reason":"preimage_mismatch"}'), true, 'another reason is another alert');
      assert.equal(await record(other.id, mismatch('5000000')), true, 'the same alert of another payment is its own');
      // In one transaction: the second sees the first.
      assert.deepEqual(await store.transaction(async (tx) => [await tx.recordLightningAlert(other.id, mismatch('7'), T0), await tx.recordLightningAlert(other.id, mismatch('7'), T0)]), [true, false]);

      // A transaction that rolls back records nothing: the alert is still to be raised.
      await assert.rejects(store.transaction(async (tx) => {
        assert.equal(await tx.recordLightningAlert(p.id, mismatch('8'), T0), true);
        throw new Error('rolled back');
      }), /rolled back/);
      assert.equal(await record(p.id, mismatch('8')), true, 'after a rollback, recorded by the next transaction');

      // A finished payment keeps its record (the key stays raised).
      await finishPayment(store, other.id, { state: 'failed', failureReason: 'no_route' }, requestOf(other), T0 + MINUTE, 10);
      assert.equal(await record(other.id, mismatch('5000000')), false);

      await rejectsWithCode(record('lnp_ffffffffffffffff', mismatch('5000000')), 'not_found', 'no such payment:');
    });

    if (options.instances) {
      const instances = options.instances;
      const race = async (check: (stores: Store[]) => Promise<void>) => {
        const stores = await instances();
        opened.push(...stores);
        await Promise.all(stores.map((s) => s.migrate()));
        await check(stores);
      };
      test('lightning: instances holding payments of one hash at once record exactly one; the others fail with conflict', () => race((stores) => checkConcurrentLightningHolds(stores)));
      test('lightning: instances finishing one payment at once (successes and failures) finish it once; the others fail with conflict', () => race((stores) => checkConcurrentFinishes(stores)));
      test('lightning: instances charging the late success of one failed payment at once charge it exactly once; the others fail with conflict', () => race((stores) => checkConcurrentChargeAfterFailure(stores)));
      test('lightning: instances recording one alert of one payment at once record it exactly once', () => race((stores) => checkConcurrentLightningAlerts(stores)));
      // PostgreSQL read "no other payment active" before a concurrent hold committed, then its UPDATE to `succeeded`
      // failed on lightning_payments_active_hash: the late success was neither recorded nor charged (fixed: the
      // hold and the late charge take the hash's lock).
      test('lightning: a late success charged while another instance holds a payment of the hash keeps the record failed and charges it', () => race((stores) => checkChargeAfterFailureBesideConcurrentHold(stores)));
    }
  });
}
