import { COUNT_ASSET, type LedgerWrite, type WindowQuery, type WindowTotal } from '@airlock/core';
import { ASSETS_KEPT_PER_SERIES, assetSeries, chargesBySeries, chargesJson } from '../shared/ledger-entries.ts';
import { toAmount, toInt } from '../shared/values.ts';
import { PLAN_EACH_RUN, type Q } from './pg-query.ts';
import type { Row } from '../shared/rows.ts';
import { FLEET_SLOTS, fleetShard, isFleetSeries, type TxLocks } from './tx-locks.ts';
import { APART, ENTRIES_AFTER_START, WINDOW_ROWS, WindowReads } from './window-reads.ts';

/**
 * What detectors read (StoreTx.detectorTotals), every window in one round trip. Per physical series two seeks on
 * the ledger's only index, the primary key (series, at, seq) (schema 009): the head (the series' last key) and the
 * last entry before the window, each read for the asset's running total; plus the pending holds made at or after
 * `$6` (the window's start, or NO_HOLDS for a query of the ledger's charges alone), amount and count alike: a
 * budget counts a held amount in every window (WINDOW_ROWS), a detector only what happened in its window. Cost
 * does not grow with history. A fleet series is the sum of its stripes (`fleet#0` ... `fleet#15`, see
 * tx-locks.ts) and of its unstriped rows written before them.
 */
const DETECTOR_TOTALS = `
  SELECT q.ord AS ord, (COALESCE(led.amount, 0) + COALESCE(held.amount, 0))::text AS amount,
         (COALESCE(led.count, 0) + COALESCE(held.count, 0))::text AS count, led.apart AS apart
  FROM unnest($1::text[], $2::text[], $3::bigint[], $6::bigint[]) WITH ORDINALITY AS q(series, asset, since_ms, holds_from, ord)
  LEFT JOIN LATERAL (
    SELECT SUM(COALESCE((h.totals -> q.asset ->> 0)::numeric, 0) - COALESCE((b.totals -> q.asset ->> 0)::numeric, 0)) AS amount,
           SUM(COALESCE((h.totals -> q.asset ->> 1)::bigint, 0) - COALESCE((b.totals -> q.asset ->> 1)::bigint, 0)) AS count,
           bool_or(${APART}) AS apart
    FROM unnest($4::bigint[], $5::text[]) AS p(ord, series)
    LEFT JOIN LATERAL (
      SELECT l.kept_totals AS totals FROM ledger l
      WHERE l.series = p.series
      ORDER BY l.at DESC, l.seq DESC LIMIT 1
    ) h ON true
    LEFT JOIN LATERAL (
      SELECT l.kept_totals AS totals FROM ledger l
      WHERE l.series = p.series AND l.at < q.since_ms
      ORDER BY l.at DESC, l.seq DESC LIMIT 1
    ) b ON true
    WHERE p.ord = q.ord
  ) led ON true
  LEFT JOIN LATERAL (
    -- Holds made in the window only (see sqlite/ledger.ts, DETECTOR_WINDOW); the index (series, asset, state, at) gives them as one range.
    SELECT SUM(x.amount) AS amount, SUM(x.count) AS count FROM (
      SELECT ah.amount, ah.count FROM approval_holds ah
      WHERE ah.series = q.series AND ah.asset = q.asset AND ah.state = 'held' AND ah.at >= q.holds_from
      UNION ALL
      SELECT ph.amount, ph.count FROM payment_holds ph
      WHERE ph.series = q.series AND ph.asset = q.asset AND ph.state = 'held' AND ph.at >= q.holds_from -- reserved x402 payments
      UNION ALL
      SELECT lh.amount, lh.count FROM lightning_holds lh
      WHERE lh.series = q.series AND lh.asset = q.asset AND lh.state = 'held' AND lh.at >= q.holds_from -- Lightning payments in flight
    ) x
  ) held ON true
  ORDER BY q.ord`;
/** Later than any hold: a charges-only query counts none. */
const NO_HOLDS = Number.MAX_SAFE_INTEGER;

/** Holds keep the logical series name; only ledger rows are striped. */
function physicalSeries(series: string): string[] {
  return isFleetSeries(series) ? [series, ...Array.from({ length: FLEET_SLOTS }, (_, slot) => fleetShard(series, slot))] : [series];
}

/**
 * Locks the series first (their writers are excluded until COMMIT), then reads them in a later statement.
 * `charging`: the series the transaction will charge if allowed, locked in the same round trip (with a
 * fleet slot if any is a fleet series), so the charge later needs no lock statement of its own. `reads`: the
 * batch's earlier window reads (window-reads.ts), which answer without a round trip where they can.
 */
export async function windowTotals(q: Q, locks: TxLocks, queries: WindowQuery[], charging: readonly string[] = [], pending?: PendingLedger, reads?: WindowReads): Promise<WindowTotal[]> {
  if (queries.length === 0) return [];
  const totals = await lockedWindowTotals(q, locks, queries, charging, reads);
  return pending ? pending.addTo(queries, totals) : totals;
}

async function lockedWindowTotals(q: Q, locks: TxLocks, queries: WindowQuery[], charging: readonly string[], reads: WindowReads | undefined): Promise<WindowTotal[]> {
  const readKeys = locks.seriesKeys(queries.map((x) => x.series), { allSlots: true });
  const chargeKeys = locks.seriesKeys(charging, { allSlots: false });
  const slot = charging.some(isFleetSeries);
  const read = windowRowsRead(queries);
  // Kept only if the read's locks are held when it is sent: nothing else can then change what it found.
  const since = reads?.current() ?? 0;
  if (readKeys.every((k) => locks.holds(k))) {
    const known = reads?.totals(queries, read.physical);
    if (known !== undefined) {
      await locks.acquire({ keys: chargeKeys, slot });
      return known;
    }
    // Everything the read depends on is held already (taken with the agent, StoreTx.lockAhead): the series
    // only charged and the fleet slot to charge through are taken in the read's own statement. The read does
    // not depend on them: they only keep other writers of those series out until this batch commits.
    const rows = await locks.acquire({ keys: chargeKeys, slot, then: read });
    const { totals, apart } = windowTotalsOf(queries, rows, reads, since);
    return withOwnSeries(q, queries, totals, apart);
  }
  await locks.acquire({ keys: [...readKeys, ...chargeKeys], slot });
  // The generation when the read is sent (not when it answers): a clear meanwhile means it is not kept.
  const sent = reads?.current() ?? 0;
  const { totals, apart } = windowTotalsOf(queries, await q(read.sql, read.params), reads, sent);
  return withOwnSeries(q, queries, totals, apart);
}

function windowTotalsOf(queries: WindowQuery[], rows: readonly Row[], reads: WindowReads | undefined, since: number): { totals: WindowTotal[]; apart: number[] } {
  return (reads ?? new WindowReads()).add(queries, rows, reads !== undefined, since);
}

/**
 * What the assets' own series add to the windows whose read found they may have some (APART): per physical
 * series of each such query, its own series' head minus its last entry before the window. Under the read's
 * locks, like the read.
 */
const OWN_TOTALS = `
  SELECT o.ord AS ord, SUM(COALESCE((h.totals -> o.asset ->> 0)::numeric, 0) - COALESCE((b.totals -> o.asset ->> 0)::numeric, 0))::text AS amount,
         SUM(COALESCE((h.totals -> o.asset ->> 1)::bigint, 0) - COALESCE((b.totals -> o.asset ->> 1)::bigint, 0))::text AS count
  FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[]) AS o(ord, own, asset, since_ms)
  LEFT JOIN LATERAL (
    SELECT l.kept_totals AS totals FROM ledger l WHERE l.series = o.own ORDER BY l.at DESC, l.seq DESC LIMIT 1
  ) h ON true
  LEFT JOIN LATERAL (
    SELECT l.kept_totals AS totals FROM ledger l WHERE l.series = o.own AND l.at < o.since_ms ORDER BY l.at DESC, l.seq DESC LIMIT 1
  ) b ON true
  GROUP BY o.ord`;

async function withOwnSeries(q: Q, queries: readonly WindowQuery[], totals: WindowTotal[], apart: readonly number[]): Promise<WindowTotal[]> {
  if (apart.length === 0) return totals;
  const params = { ord: [] as number[], own: [] as string[], asset: [] as string[], since: [] as number[] };
  for (const i of apart) {
    const query = queries[i]!;
    for (const p of physicalSeries(query.series)) {
      params.ord.push(i);
      params.own.push(assetSeries(p, query.asset));
      params.asset.push(query.asset);
      params.since.push(query.sinceMs);
    }
  }
  const out = [...totals];
  for (const r of await q(OWN_TOTALS, [params.ord, params.own, params.asset, params.since])) {
    const i = toInt(r.ord);
    out[i] = { amount: out[i]!.amount + toAmount(r.amount), count: out[i]!.count + toInt(r.count) };
  }
  return out;
}

/**
 * The window sums alone, without locks: what detectors read (StoreTx.detectorTotals; DETECTOR_TOTALS for how holds
 * count). A fleet figure may miss a concurrent batch's uncommitted charges; an agent's own series are exact under
 * the agent's lock. The batch's own pending charges are ledger charges, added to every query.
 */
export async function readWindowTotals(q: Q, queries: WindowQuery[], pending?: PendingLedger): Promise<WindowTotal[]> {
  if (queries.length === 0) return [];
  const read = detectorTotalsRead(queries);
  const rows = await q(read.sql, read.params);
  const apart = rows.filter((r) => r.apart === true).map((r) => toInt(r.ord) - 1);
  const totals = await withOwnSeries(q, queries, windowTotalsFrom(rows, queries.length), apart);
  return pending ? pending.addTo(queries, totals) : totals;
}

function physicalOf(queries: readonly WindowQuery[]): string[][] {
  return queries.map((x) => physicalSeries(x.series));
}

function detectorTotalsRead(queries: WindowQuery[]): { sql: string; params: unknown[] } {
  return { sql: DETECTOR_TOTALS, params: [...windowParams(queries, physicalOf(queries)), queries.map((x) => (x.chargesOnly ? NO_HOLDS : x.sinceMs))] };
}

/** WINDOW_ROWS and its parameters, and the physical series of each query (for WindowReads.totals). */
function windowRowsRead(queries: WindowQuery[]): { sql: string; params: unknown[]; physical: string[][] } {
  const physical = physicalOf(queries);
  return { sql: WINDOW_ROWS, params: [...windowParams(queries, physical), ENTRIES_AFTER_START], physical };
}

function windowParams(queries: readonly WindowQuery[], physical: readonly string[][]): unknown[] {
  const ords: number[] = [];
  const flat: string[] = [];
  physical.forEach((list, i) => {
    for (const series of list) {
      ords.push(i + 1);
      flat.push(series);
    }
  });
  return [queries.map((x) => x.series), queries.map((x) => x.asset), queries.map((x) => x.sinceMs), ords, flat];
}

/** One total per query, in the queries' order (by `ord`: rows joined to the lock row keep no order of their own). */
function windowTotalsFrom(rows: readonly Row[], count: number): WindowTotal[] {
  const totals: WindowTotal[] = new Array(count);
  for (const r of rows) totals[toInt(r.ord) - 1] = { amount: toAmount(r.amount), count: toInt(r.count) };
  for (let i = 0; i < count; i++) if (totals[i] === undefined) throw new Error(`window total ${i + 1} missing from the store's answer`);
  return totals;
}

/**
 * Locks what charging `writes` needs: each agent or session series, and one fleet slot if any write is to a
 * fleet series (returned; undefined if none). Holds take these locks too: a fleet-wide budget's reader must
 * wait for a writer's hold as for its ledger rows.
 */
export async function lockForWrites(locks: TxLocks, writes: readonly LedgerWrite[]): Promise<number | undefined> {
  const fleet = writes.some((w) => isFleetSeries(w.series));
  // Usually nothing is left to lock here: windowTotals took these with its reads (`charging`).
  await locks.acquire({ keys: locks.seriesKeys(writes.map((w) => w.series), { allSlots: false }), slot: fleet });
  return fleet ? locks.chargingSlot() : undefined;
}

/**
 * Appends one entry per series `writes` charge, at `at`, for audit entry `auditSeq`. The locks are taken now
 * (and the amounts checked) whether or not the insert is deferred: `deferTo` keeps the entries in the batch's
 * PendingLedger, inserted with the batch's other entries before its audit entries.
 */
export async function appendLedger(q: Q, locks: TxLocks, writes: LedgerWrite[], at: number, auditSeq: number, deferTo?: DeferredAppend): Promise<void> {
  const slot = await lockForWrites(locks, writes);
  // Grouped by series first: two entries for one series in one statement would both read the same head.
  const bySeries = chargesBySeries(writes);
  if (bySeries.size === 0) return;
  const striped = (s: string) => slot !== undefined && isFleetSeries(s);
  // Not deferred: a batch of its own, inserted now (one statement, as a batch's are).
  const ledger = deferTo?.ledger ?? new PendingLedger();
  const owner = deferTo?.owner ?? { rolledBack: false };
  for (const [logical, charges] of bySeries) ledger.add({ owner, series: striped(logical) ? fleetShard(logical, slot!) : logical, logical, striped: striped(logical), charges, at, auditSeq });
  if (!deferTo) await ledger.flush(q);
}

/**
 * Several entries per series in one statement, for a batch's entries ($1..$7 per entry, in the order they were
 * appended, from batchColumns): an entry's seq is the head's plus its rank in its series (`$7`), its time is
 * clamped to the series' head time and, for a stripe of a fleet series, to the latest time of any stripe (`$4`
 * is already the running latest over every stripe of a fleet series, as the batch's requests may hold
 * different slots; a late write so lands at the fleet series' head time as it would unstriped; another
 * stripe's uncommitted head is not seen, and the entry is then still at or after its own time, so a window
 * can only over-count), and its totals are the head's with `$6` added: the charges of its series' entries in
 * the batch up to and including it, per asset, each with its place among the assets those entries charged
 * (`["<amount>", <count>, <place>]`). What sequential appends would write, in one: the statement's snapshot
 * does not see its own inserts, hence the ranks and the running sums. (Computed in SQL, the running sums
 * were a subquery over the batch's earlier entries per entry: 5 of 8 ms for 16 signatures of one agent; the
 * ranks and times two sorts and window aggregates, another 0.5.)
 *
 * An entry keeps (in `totals` and `charges`) the assets its head keeps, the request count, and new assets
 * while the head's assets and the new ones placed before them in the batch's entries of the series number
 * fewer than ASSETS_KEPT_PER_SERIES, so an asset goes apart only once the series keeps that many (the reads
 * rely on it: APART in window-reads.ts), as shared/ledger-entries.ts entryAfter splits them on SQLite. Every entry of
 * a series in one batch is split by the same head, so an asset goes the same way for all of them and the
 * running sums stay exact. Each entry comes back with what it kept: less than it charged, and APPEND_APART
 * writes the rest to their own series (a second statement, only then).
 */
const KEEPS = (asset: string, place: string) =>
  `(${asset} = '${COUNT_ASSET}' OR COALESCE(h.totals ? ${asset}, false) OR (SELECT count(*) FROM jsonb_object_keys(COALESCE(h.totals, '{}'::jsonb))) + (
     SELECT count(*) FROM jsonb_each(w.batch_sums) AS n WHERE (n.value ->> 2)::int < ${place} AND n.key <> '${COUNT_ASSET}' AND NOT COALESCE(h.totals ? n.key, false)
   ) < ${ASSETS_KEPT_PER_SERIES})`;
const APPEND_LEDGER_ENTRIES = `${PLAN_EACH_RUN}
  WITH w AS (
    SELECT * FROM unnest($1::text[], $2::jsonb[], $3::text[], $4::bigint[], $5::bigint[], $6::jsonb[], $7::int8[])
      AS w(series, charges, logical, at, audit_seq, batch_sums, rank)
  ),
  -- The latest time of any stripe, once per fleet series (not once per entry: sixteen seeks each).
  fl AS (
    SELECT d.logical, max(sh.at) AS at
    FROM (SELECT DISTINCT w.logical FROM w WHERE w.logical IS NOT NULL) AS d
    CROSS JOIN LATERAL (SELECT d.logical AS series UNION ALL SELECT d.logical || '#' || i FROM generate_series(0, ${FLEET_SLOTS - 1}) AS i) AS stripe
    CROSS JOIN LATERAL (
      SELECT l.at FROM ledger l WHERE l.series = stripe.series ORDER BY l.at DESC, l.seq DESC LIMIT 1
    ) sh
    GROUP BY d.logical
  )
  INSERT INTO ledger (series, at, seq, audit_seq, charges, kept_totals)
  SELECT w.series, GREATEST(w.at, COALESCE(h.at, w.at), COALESCE(f.at, w.at)), COALESCE(h.seq, 0) + w.rank, w.audit_seq,
         COALESCE((SELECT jsonb_object_agg(c.key, c.value) FROM jsonb_each(w.charges) AS c WHERE k.added ? c.key), '{}'::jsonb),
         COALESCE(h.totals, '{}'::jsonb) || COALESCE(k.added, '{}'::jsonb)
  FROM w
  LEFT JOIN LATERAL (
    SELECT l.at, l.seq, l.kept_totals AS totals FROM ledger l
    WHERE l.series = w.series
    ORDER BY l.at DESC, l.seq DESC LIMIT 1
  ) h ON true
  LEFT JOIN fl AS f ON f.logical = w.logical
  -- The kept assets' new running totals; a charge is kept where its asset is among them.
  LEFT JOIN LATERAL (
    SELECT jsonb_object_agg(s.key, jsonb_build_array(
             (COALESCE((h.totals -> s.key ->> 0)::numeric, 0) + (s.value ->> 0)::numeric)::text,
             COALESCE((h.totals -> s.key ->> 1)::bigint, 0) + (s.value ->> 1)::bigint)) AS added
    FROM jsonb_each(w.batch_sums) AS s
    WHERE ${KEEPS('s.key', '(s.value ->> 2)::int')}
  ) k ON true
  RETURNING series, seq, at, charges`;

/**
 * The charges the entries just inserted did not keep, each appended to its asset's own series: one row per
 * charge of an entry that kept fewer assets than it charged (`$1` its series, `$2` its seq, `$3` its time),
 * written where the entry's `charges` lack the asset, at the entry's time or the own series' head time if
 * later, with seq and running totals from the own series' head plus the charge's rank and running sum among
 * the batch's charges of that asset to that series (`$6`, `$8`: every entry of a series in a batch splits an
 * asset the same way, so these are exact).
 */
const APPEND_APART = `
  INSERT INTO ledger (series, at, seq, audit_seq, charges, kept_totals)
  SELECT a.own, GREATEST(a.at, COALESCE(oh.at, a.at)), COALESCE(oh.seq, 0) + a.rank, m.audit_seq,
         jsonb_build_object(a.asset, a.charge),
         jsonb_build_object(a.asset, jsonb_build_array(
           (COALESCE((oh.totals -> a.asset ->> 0)::numeric, 0) + (a.sums ->> 0)::numeric)::text,
           COALESCE((oh.totals -> a.asset ->> 1)::bigint, 0) + (a.sums ->> 1)::bigint))
  FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::text[], $5::text[], $6::int8[], $7::jsonb[], $8::jsonb[]) AS a(series, seq, at, asset, own, rank, charge, sums)
  JOIN ledger m ON m.series = a.series AND m.at = a.at AND m.seq = a.seq
  LEFT JOIN LATERAL (
    SELECT l.at, l.seq, l.kept_totals AS totals FROM ledger l WHERE l.series = a.own ORDER BY l.at DESC, l.seq DESC LIMIT 1
  ) oh ON true
  WHERE NOT m.charges ? a.asset`;

/** Whatever appended the entry: a request of the batch, whose entries go if it is rolled back to its savepoint. */
export interface LedgerOwner {
  readonly rolledBack: boolean;
}

/** Where a request's ledger entries wait for the end of their batch. */
export interface DeferredAppend {
  ledger: PendingLedger;
  owner: LedgerOwner;
}

interface PendingEntry {
  owner: LedgerOwner;
  /** The physical series: a fleet series' stripe, or the series itself. */
  series: string;
  /** The series window reads name (a fleet series without its stripe). */
  logical: string;
  striped: boolean;
  charges: readonly LedgerWrite[];
  at: number;
  auditSeq: number;
}

/**
 * The ledger entries a batch's requests appended, inserted in one statement when the batch ends (flush,
 * before its audit entries) instead of one statement per request: a signature's ledger then costs no round
 * trip of its own. Their locks were taken when they were appended, so nothing else writes their series
 * meanwhile, and the batch's own reads see them through addTo.
 *
 * A window read adds every live pending entry of its series, whatever the entry's time: an entry is at most
 * as old as its batch, and a window lasts at least a second (policy durations), so this is what the
 * inserted entry would add; if a batch ever outlived a window, its reads would over-count (refuse), never
 * under-count. Entries of a request rolled back to its savepoint are skipped, as its SQL would be undone.
 */
export class PendingLedger {
  readonly #entries: PendingEntry[] = [];

  add(entry: PendingEntry): void {
    this.#entries.push(entry);
  }

  #live(): PendingEntry[] {
    return this.#entries.filter((e) => !e.owner.rolledBack);
  }

  /** `totals` (one per query, from the database) with the batch's pending entries added. */
  addTo(queries: readonly WindowQuery[], totals: WindowTotal[]): WindowTotal[] {
    const live = this.#live();
    if (live.length === 0) return totals;
    return totals.map((t, i) => {
      const { series, asset } = queries[i]!;
      let amount = t.amount;
      let count = t.count;
      for (const e of live) {
        if (e.logical !== series) continue;
        for (const w of e.charges) {
          if (w.asset !== asset) continue;
          amount += w.amount;
          count += w.count;
        }
      }
      return amount === t.amount && count === t.count ? t : { amount, count };
    });
  }

  /** Inserts the live entries in the order they were appended (one statement); a no-op when there are none. */
  async flush(q: Q): Promise<void> {
    const live = this.#live();
    this.#entries.length = 0;
    if (live.length === 0) return;
    const { at, batchSums, rank } = batchColumns(live);
    const inserted = await q(APPEND_LEDGER_ENTRIES, [
      live.map((e) => e.series),
      live.map((e) => chargesJson(e.charges)),
      live.map((e) => (e.striped ? e.logical : null)),
      at,
      live.map((e) => e.auditSeq),
      batchSums,
      rank,
    ]);
    const apart = apartRows(live, rank, inserted);
    if (apart !== undefined) await q(APPEND_APART, [apart.series, apart.seq, apart.at, apart.asset, apart.own, apart.rank, apart.charge, apart.sums]);
  }
}

/**
 * What each entry owes to the batch's entries before it, in append order: `rank`, its place among its physical
 * series' entries (1 for the first); `at`, its time raised to the latest time of any earlier entry of its
 * logical series (every stripe of a fleet series); `batchSums`, what its physical series' entries charged up
 * to and including it, per asset (every asset any of them charged), with the asset's place among those assets.
 */
function batchColumns(entries: readonly PendingEntry[]): { at: number[]; batchSums: string[]; rank: number[] } {
  const sums = new Map<string, Map<string, { amount: bigint; count: number; place: number }>>();
  const ranks = new Map<string, number>();
  const latest = new Map<string, number>();
  const out = { at: [] as number[], batchSums: [] as string[], rank: [] as number[] };
  for (const e of entries) {
    let byAsset = sums.get(e.series);
    if (byAsset === undefined) sums.set(e.series, (byAsset = new Map()));
    for (const w of e.charges) {
      const before = byAsset.get(w.asset);
      byAsset.set(w.asset, before ? { amount: before.amount + w.amount, count: before.count + w.count, place: before.place } : { amount: w.amount, count: w.count, place: byAsset.size });
    }
    out.batchSums.push(`{${[...byAsset].map(([asset, t]) => `${JSON.stringify(asset)}:["${t.amount}",${t.count},${t.place}]`).join(',')}}`);
    const rank = (ranks.get(e.series) ?? 0) + 1;
    ranks.set(e.series, rank);
    out.rank.push(rank);
    const logical = e.striped ? e.logical : e.series;
    const at = Math.max(e.at, latest.get(logical) ?? e.at);
    latest.set(logical, at);
    out.at.push(at);
  }
  return out;
}

/**
 * APPEND_APART's rows, or undefined when every entry kept all it charged (nearly always). The inserted rows
 * come back in no set order; within a physical series their seqs are the head's plus the ranks, so sorted by
 * seq they are the entries in rank order. Every charge but the count of every entry of a series where some
 * entry kept less becomes a row (the statement writes those the entry did not keep), with its rank and running
 * sum among the batch's charges of that asset to that series.
 */
function apartRows(entries: readonly PendingEntry[], rank: readonly number[], inserted: readonly Row[]) {
  const rows = new Map<string, { seq: number; at: number; kept: number }[]>();
  for (const r of inserted) {
    const list = rows.get(String(r.series)) ?? [];
    // Counted here: a count in RETURNING (a subquery per row) cost more than parsing these few small objects.
    const kept = typeof r.charges === 'string' ? JSON.parse(r.charges) : r.charges;
    list.push({ seq: toInt(r.seq), at: toInt(r.at), kept: Object.keys(kept as object).length });
    rows.set(String(r.series), list);
  }
  for (const list of rows.values()) list.sort((x, y) => x.seq - y.seq);
  const rowOf = (i: number) => rows.get(entries[i]!.series)?.[rank[i]! - 1];
  const split = new Set(entries.filter((e, i) => rowOf(i)!.kept < e.charges.length).map((e) => e.series));
  if (split.size === 0) return undefined;
  const out = { series: [] as string[], seq: [] as number[], at: [] as number[], asset: [] as string[], own: [] as string[], rank: [] as number[], charge: [] as string[], sums: [] as string[] };
  const running = new Map<string, { rank: number; amount: bigint; count: number }>();
  entries.forEach((e, i) => {
    if (!split.has(e.series)) return;
    const row = rowOf(i)!;
    for (const w of e.charges) {
      if (w.asset === COUNT_ASSET) continue;
      const own = assetSeries(e.series, w.asset);
      const before = running.get(own);
      const sum = { rank: (before?.rank ?? 0) + 1, amount: (before?.amount ?? 0n) + w.amount, count: (before?.count ?? 0) + w.count };
      running.set(own, sum);
      out.series.push(e.series);
      out.seq.push(row.seq);
      out.at.push(row.at);
      out.asset.push(w.asset);
      out.own.push(own);
      out.rank.push(sum.rank);
      out.charge.push(`["${w.amount}",${w.count}]`);
      out.sums.push(`["${sum.amount}",${sum.count}]`);
    }
  });
  return out;
}
