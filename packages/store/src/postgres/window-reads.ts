import { COUNT_ASSET, type WindowQuery, type WindowTotal } from '@airlock/core';
import { ASSETS_KEPT_PER_SERIES } from '../shared/ledger-entries.ts';
import { toAmount, toInt } from '../shared/values.ts';
import type { Row } from '../shared/rows.ts';

/**
 * Entries after a window's start read with it: a batch's later requests ask for the same windows starting a
 * few milliseconds later, and while that start has not passed the last of these entries, the answer needs no
 * round trip. One batch lasts tens of milliseconds; sixteen entries cover it unless the series was charged
 * more than sixteen times in that span one window ago (then the read goes to the store again).
 */
export const ENTRIES_AFTER_START = 16;

/**
 * Whether the asset may also have entries in this physical series' own series for it (`apart`; ledger-entries.ts
 * assetSeries): only if the head keeps ASSETS_KEPT_PER_SERIES assets and not this one (an asset goes there
 * only then; a head never keeps fewer assets than the one before it, nor later keeps an asset that went
 * apart). Nearly never: the read answers without those series, and a second statement reads them where it
 * is (ledger.ts, OWN_TOTALS).
 */
export const APART = `(q.asset <> '${COUNT_ASSET}' AND NOT COALESCE(h.totals ? q.asset, true)
  AND (SELECT count(*) FROM jsonb_object_keys(h.totals)) >= ${ASSETS_KEPT_PER_SERIES})`;

/** Whether a kept head may leave some of the asset to its own series (APART, on this side). */
function apartFrom(head: Totals | null, asset: string): boolean {
  return asset !== COUNT_ASSET && head !== null && !Object.hasOwn(head, asset) && Object.keys(head).length >= ASSETS_KEPT_PER_SERIES;
}

/**
 * The window reads a locked read (a budget's) sends (`$1`-`$5` as DETECTOR_TOTALS in ledger.ts, `$6`
 * ENTRIES_AFTER_START): one row per query with its pending holds (`physical` null; their amounts, every one
 * whatever its age, the counts of those made in the window, and the time of the first of those, after which the
 * count changes), and one per physical series of each query with the head's running totals, the totals of the
 * last entry before the window and the first entries in it, and APART. The ledger's part of the answer is
 * DETECTOR_TOTALS's (a detector counts only the holds made in its window), summed here (windowTotalsOf), and it
 * keeps what later reads need.
 */
export const WINDOW_ROWS = `
  WITH q AS (SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[]) WITH ORDINALITY AS q(series, asset, since_ms, ord))
  SELECT q.ord AS ord, NULL::text AS physical, NULL::text AS head, NULL::text AS base, NULL::text AS after,
         COALESCE(held.amount, 0)::text AS held_amount, COALESCE(held.count, 0)::text AS held_count,
         held.counts_to::text AS held_counts_to, NULL::boolean AS apart
  FROM q LEFT JOIN LATERAL (
    SELECT SUM(x.amount) AS amount, SUM(CASE WHEN x.at >= q.since_ms THEN x.count ELSE 0 END) AS count,
           MIN(x.at) FILTER (WHERE x.at >= q.since_ms) AS counts_to FROM (
      SELECT ah.amount, ah.count, ah.at FROM approval_holds ah
      WHERE ah.series = q.series AND ah.asset = q.asset AND ah.state = 'held'
      UNION ALL
      SELECT ph.amount, ph.count, ph.at FROM payment_holds ph
      WHERE ph.series = q.series AND ph.asset = q.asset AND ph.state = 'held'
      UNION ALL
      SELECT lh.amount, lh.count, lh.at FROM lightning_holds lh
      WHERE lh.series = q.series AND lh.asset = q.asset AND lh.state = 'held'
    ) x
  ) held ON true
  UNION ALL
  SELECT q.ord, p.series, h.totals::text, b.totals::text, e.after::text, NULL, NULL, NULL, ${APART}
  FROM q JOIN unnest($4::bigint[], $5::text[]) AS p(ord, series) ON p.ord = q.ord
  LEFT JOIN LATERAL (
    SELECT l.kept_totals AS totals FROM ledger l WHERE l.series = p.series ORDER BY l.at DESC, l.seq DESC LIMIT 1
  ) h ON true
  LEFT JOIN LATERAL (
    SELECT l.kept_totals AS totals FROM ledger l WHERE l.series = p.series AND l.at < q.since_ms ORDER BY l.at DESC, l.seq DESC LIMIT 1
  ) b ON true
  LEFT JOIN LATERAL (
    SELECT jsonb_agg(jsonb_build_array(x.at, x.totals) ORDER BY x.at, x.seq) AS after FROM (
      SELECT l.at, l.seq, l.kept_totals AS totals FROM ledger l WHERE l.series = p.series AND l.at >= q.since_ms ORDER BY l.at, l.seq LIMIT $6
    ) x
  ) e ON true`;

/** A ledger row's running totals: per asset, [amount as decimal text, count]. */
type Totals = Record<string, [string, number]>;

/** What one read found of a query's holds: their amounts, and the counts of those made at or after `since`. */
interface HeldRead extends WindowTotal {
  since: number;
  /** The latest window start the count answers for: the time of the first hold it counts (a later start leaves it out). */
  countsTo: number;
}

/** What one read found for one physical series and one window start. */
interface SeriesRead {
  since: number;
  head: Totals | null;
  /** The last entry before `since`. */
  base: Totals | null;
  /** The first entries at or after `since`, in key order. */
  after: { at: number; totals: Totals }[];
  /** The latest window start these answer for: every entry before it is in `after` (or before `since`). */
  coversTo: number;
}

const parse = (text: unknown): Totals | null => (text === null || text === undefined ? null : (JSON.parse(String(text)) as Totals));
const heldKey = (series: string, asset: string) => `${series}\u0000${asset}`;

/**
 * The window reads of one batch, kept for its later requests: a batch of one agent's signatures then reads
 * its windows once, not once per request. Only reads made while the batch held every lock their series need
 * are kept (ledger.ts, windowTotals), so no other transaction adds an entry or a hold to those series until
 * COMMIT, and the batch's own charges wait in its PendingLedger, added on top as for any read. Another
 * transaction may release a hold meanwhile: every request of a batch was submitted before the batch began, so
 * answering as before that release is an order that really happened (and only ever counts more). Everything is
 * forgotten on any statement of the batch that writes and when a request is rolled back (postgres-store.ts).
 */
export class WindowReads {
  readonly #series = new Map<string, SeriesRead[]>();
  readonly #held = new Map<string, HeldRead[]>();
  /** Counts the clears: a read that was in flight across one is not kept. */
  #generation = 0;

  current(): number {
    return this.#generation;
  }

  clear(): void {
    this.#series.clear();
    this.#held.clear();
    this.#generation++;
  }

  /** The totals of `queries` over these physical series (`physical[i]`: query i's), or undefined if any is not known. */
  totals(queries: readonly WindowQuery[], physical: readonly (readonly string[])[]): WindowTotal[] | undefined {
    const out: WindowTotal[] = [];
    for (let i = 0; i < queries.length; i++) {
      const { series, asset, sinceMs } = queries[i]!;
      const held = this.#held.get(heldKey(series, asset))?.find((r) => r.since <= sinceMs && sinceMs <= r.countsTo);
      if (held === undefined) return undefined;
      let amount = held.amount;
      let count = held.count;
      for (const p of physical[i]!) {
        const read = this.#series.get(p)?.find((r) => r.since <= sinceMs && sinceMs <= r.coversTo);
        // The asset's own series are never kept: such a query goes to the store each time.
        if (read === undefined || apartFrom(read.head, asset)) return undefined;
        let base = read.base;
        for (const e of read.after) {
          if (e.at >= sinceMs) break;
          base = e.totals;
        }
        amount += sumOf(read.head, asset) - sumOf(base, asset);
        count += countOf(read.head, asset) - countOf(base, asset);
      }
      out.push({ amount, count });
    }
    return out;
  }

  /**
   * The totals of `queries` from WINDOW_ROWS's answer; kept if `keep` and no clear came since `since` (the
   * generation when the read was sent).
   */
  add(queries: readonly WindowQuery[], rows: readonly Row[], keep: boolean, since: number): { totals: WindowTotal[]; apart: number[] } {
    const totals: (WindowTotal | undefined)[] = new Array(queries.length);
    const apart = new Set<number>();
    const store = keep && since === this.#generation;
    for (const r of rows) {
      // A row of nulls: the lock statement's, when the read found nothing (it always finds the held rows).
      if (r.ord === null || r.ord === undefined) continue;
      const i = toInt(r.ord) - 1;
      const query = queries[i];
      if (query === undefined) throw new Error(`window read ${i + 1} not asked for`);
      const total = (totals[i] ??= { amount: 0n, count: 0 });
      if (r.physical === null || r.physical === undefined) {
        const held = { amount: toAmount(r.held_amount), count: toInt(r.held_count) };
        total.amount += held.amount;
        total.count += held.count;
        const countsTo = r.held_counts_to === null || r.held_counts_to === undefined ? Number.MAX_SAFE_INTEGER : toInt(r.held_counts_to);
        if (store) {
          const key = heldKey(query.series, query.asset);
          this.#held.set(key, [...(this.#held.get(key) ?? []), { ...held, since: query.sinceMs, countsTo }]);
        }
        continue;
      }
      if (r.apart === true) apart.add(i);
      const head = parse(r.head);
      const base = parse(r.base);
      total.amount += sumOf(head, query.asset) - sumOf(base, query.asset);
      total.count += countOf(head, query.asset) - countOf(base, query.asset);
      if (!store) continue;
      const after = ((JSON.parse(String(r.after ?? '[]')) ?? []) as [number, Totals][]).map(([at, t]) => ({ at: Number(at), totals: t }));
      // Fewer entries than asked for: they run to the head, and any later start is answered.
      const coversTo = after.length < ENTRIES_AFTER_START ? Number.MAX_SAFE_INTEGER : after.at(-1)!.at;
      const list = this.#series.get(String(r.physical)) ?? [];
      list.push({ since: query.sinceMs, head, base, after, coversTo });
      this.#series.set(String(r.physical), list);
    }
    for (let i = 0; i < queries.length; i++) if (totals[i] === undefined) throw new Error(`window total ${i + 1} missing from the store's answer`);
    return { totals: totals as WindowTotal[], apart: [...apart] };
  }
}

// An asset is any string (`constructor`, `__proto__` included): only the object's own keys are totals.
const entryOf = (totals: Totals | null, asset: string) => (totals !== null && Object.hasOwn(totals, asset) ? totals[asset] : undefined);

function sumOf(totals: Totals | null, asset: string): bigint {
  const entry = entryOf(totals, asset);
  return entry ? toAmount(entry[0]) : 0n;
}

function countOf(totals: Totals | null, asset: string): number {
  const entry = entryOf(totals, asset);
  return entry ? toInt(entry[1]) : 0;
}
