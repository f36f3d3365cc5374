import type { LedgerWrite, WindowQuery, WindowTotal } from '@airlock/core';
import { mergeLedgerWrites } from '../shared/ledger-writes.ts';
import { toAmount, toInt } from '../shared/values.ts';
import type { Q } from './pg-query.ts';

/**
 * Every window in one round trip. Per query two seeks on the ledger's only index, the primary key
 * (series, asset, at, seq) (schema 006): the head (the series' last key) and the last entry before the
 * window; plus the pending holds (small). Cost does not grow with history.
 */
const WINDOW_TOTALS = `
  SELECT (COALESCE(h.cum_amount, 0) - COALESCE(b.cum_amount, 0) + COALESCE(held.amount, 0))::text AS amount,
         (COALESCE(h.cum_count, 0) - COALESCE(b.cum_count, 0) + COALESCE(held.count, 0))::text AS count
  FROM unnest($1::text[], $2::text[], $3::bigint[]) WITH ORDINALITY AS q(series, asset, since_ms, ord)
  LEFT JOIN LATERAL (
    SELECT l.cum_amount, l.cum_count FROM ledger l
    WHERE l.series = q.series AND l.asset = q.asset
    ORDER BY l.at DESC, l.seq DESC LIMIT 1
  ) h ON true
  LEFT JOIN LATERAL (
    SELECT l.cum_amount, l.cum_count FROM ledger l
    WHERE l.series = q.series AND l.asset = q.asset AND l.at < q.since_ms
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
 * Every write in one round trip: per (series, asset) one seek for the head, then one insert with the next
 * seq, the clamped time (never before the series' last entry, so key order stays seq order) and the
 * running totals. No other row is updated.
 */
const APPEND_LEDGER = `
  INSERT INTO ledger (series, asset, at, seq, amount, count, cum_amount, cum_count, audit_seq)
  SELECT w.series, w.asset, GREATEST($5::bigint, COALESCE(h.at, $5::bigint)), COALESCE(h.seq, 0) + 1,
         w.amount, w.count, COALESCE(h.cum_amount, 0) + w.amount, COALESCE(h.cum_count, 0) + w.count, $6::bigint
  FROM unnest($1::text[], $2::text[], $3::numeric[], $4::bigint[]) AS w(series, asset, amount, count)
  LEFT JOIN LATERAL (
    SELECT l.at, l.seq, l.cum_amount, l.cum_count FROM ledger l
    WHERE l.series = w.series AND l.asset = w.asset
    ORDER BY l.at DESC, l.seq DESC LIMIT 1
  ) h ON true`;

export async function appendLedger(q: Q, writes: LedgerWrite[], at: number, auditSeq: number): Promise<void> {
  // Merged first: two writes to one series in one statement would both read the same head.
  const merged = mergeLedgerWrites(writes);
  if (merged.length === 0) return;
  await q(APPEND_LEDGER, [
    merged.map((w) => w.series),
    merged.map((w) => w.asset),
    merged.map((w) => w.amount.toString()),
    merged.map((w) => w.count),
    at,
    auditSeq,
  ]);
}
