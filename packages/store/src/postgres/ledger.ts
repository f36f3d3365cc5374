import type { LedgerWrite, WindowQuery, WindowTotal } from '@airlock/core';
import { chargesBySeries, chargesJson } from '../shared/ledger-entries.ts';
import { toAmount, toInt } from '../shared/values.ts';
import type { Q } from './pg-query.ts';

/**
 * Every window in one round trip. Per query two seeks on the ledger's only index, the primary key
 * (series, at, seq) (schema 008): the head (the series' last key) and the last entry before the window,
 * each read for the asset's running total; plus the pending holds (small). Cost does not grow with history.
 */
const WINDOW_TOTALS = `
  SELECT (COALESCE((h.totals -> q.asset ->> 0)::numeric, 0) - COALESCE((b.totals -> q.asset ->> 0)::numeric, 0) + COALESCE(held.amount, 0))::text AS amount,
         (COALESCE((h.totals -> q.asset ->> 1)::bigint, 0) - COALESCE((b.totals -> q.asset ->> 1)::bigint, 0) + COALESCE(held.count, 0))::text AS count
  FROM unnest($1::text[], $2::text[], $3::bigint[]) WITH ORDINALITY AS q(series, asset, since_ms, ord)
  LEFT JOIN LATERAL (
    SELECT l.totals FROM ledger l
    WHERE l.series = q.series
    ORDER BY l.at DESC, l.seq DESC LIMIT 1
  ) h ON true
  LEFT JOIN LATERAL (
    SELECT l.totals FROM ledger l
    WHERE l.series = q.series AND l.at < q.since_ms
    ORDER BY l.at DESC, l.seq DESC LIMIT 1
  ) b ON true
  LEFT JOIN LATERAL (
    SELECT SUM(x.amount) AS amount, SUM(x.count) AS count FROM (
      SELECT ah.amount, ah.count FROM approval_holds ah
      WHERE ah.series = q.series AND ah.asset = q.asset AND ah.state = 'held' -- counted in every window while held (see sqlite/ledger.ts)
      UNION ALL
      SELECT ph.amount, ph.count FROM payment_holds ph
      WHERE ph.series = q.series AND ph.asset = q.asset AND ph.state = 'held' -- reserved x402 payments, likewise
    ) x
  ) held ON true
  ORDER BY q.ord`;

export async function windowTotals(q: Q, queries: WindowQuery[]): Promise<WindowTotal[]> {
  if (queries.length === 0) return [];
  const rows = await q(WINDOW_TOTALS, [queries.map((x) => x.series), queries.map((x) => x.asset), queries.map((x) => x.sinceMs)]);
  return rows.map((r) => ({ amount: toAmount(r.amount), count: toInt(r.count) }));
}

/**
 * Every entry in one round trip: per series one seek for the head, then one insert with the next seq, the
 * clamped time (never before the series' last entry, so key order stays seq order) and the head's running
 * totals with the charged assets increased (`||` keeps every other asset as it was). No row is updated.
 */
const APPEND_LEDGER = `
  INSERT INTO ledger (series, at, seq, audit_seq, charges, totals)
  SELECT w.series, GREATEST($3::bigint, COALESCE(h.at, $3::bigint)), COALESCE(h.seq, 0) + 1, $4::bigint, w.charges,
         COALESCE(h.totals, '{}'::jsonb) || (
           SELECT jsonb_object_agg(c.key, jsonb_build_array(
                    (COALESCE((h.totals -> c.key ->> 0)::numeric, 0) + (c.value ->> 0)::numeric)::text,
                    COALESCE((h.totals -> c.key ->> 1)::bigint, 0) + (c.value ->> 1)::bigint))
           FROM jsonb_each(w.charges) AS c)
  FROM unnest($1::text[], $2::jsonb[]) AS w(series, charges)
  LEFT JOIN LATERAL (
    SELECT l.at, l.seq, l.totals FROM ledger l
    WHERE l.series = w.series
    ORDER BY l.at DESC, l.seq DESC LIMIT 1
  ) h ON true`;

export async function appendLedger(q: Q, writes: LedgerWrite[], at: number, auditSeq: number): Promise<void> {
  // Grouped by series first: two entries for one series in one statement would both read the same head.
  const bySeries = chargesBySeries(writes);
  if (bySeries.size === 0) return;
  await q(APPEND_LEDGER, [[...bySeries.keys()], [...bySeries.values()].map(chargesJson), at, auditSeq]);
}
