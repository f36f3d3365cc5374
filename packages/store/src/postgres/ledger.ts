import type { LedgerWrite, WindowQuery, WindowTotal } from '@airlock/core';
import { mergeLedgerWrites } from '../shared/ledger-writes.ts';
import { toAmount, toInt } from '../shared/values.ts';
import type { Q } from './pg-query.ts';

/**
 * Every window in one round trip. Per query: the head row (primary key), the last row before the
 * window (one seek on ledger_by_time) and the pending holds (small): cost does not grow with history.
 */
const WINDOW_TOTALS = `
  SELECT (COALESCE(h.cum_amount, 0) - COALESCE(b.cum_amount, 0) + COALESCE(held.amount, 0))::text AS amount,
         (COALESCE(h.cum_count, 0) - COALESCE(b.cum_count, 0) + COALESCE(held.count, 0))::text AS count
  FROM unnest($1::text[], $2::text[], $3::bigint[]) WITH ORDINALITY AS q(series, asset, since_ms, ord)
  LEFT JOIN ledger_heads h ON h.series = q.series AND h.asset = q.asset
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
 * Every write in one round trip: the head upsert computes the next seq, the clamped time
 * (never before the series' last entry) and the running totals; the ledger row copies them.
 */
const APPEND_LEDGER = `
  WITH w AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::numeric[], $4::bigint[]) AS w(series, asset, amount, count)
  ), up AS (
    INSERT INTO ledger_heads AS h (series, asset, seq, at, cum_amount, cum_count)
    SELECT series, asset, 1, $5::bigint, amount, count FROM w
    ON CONFLICT (series, asset) DO UPDATE SET
      seq = h.seq + 1,
      at = GREATEST(h.at, EXCLUDED.at),
      cum_amount = h.cum_amount + EXCLUDED.cum_amount,
      cum_count = h.cum_count + EXCLUDED.cum_count
    RETURNING h.series, h.asset, h.seq, h.at, h.cum_amount, h.cum_count
  )
  INSERT INTO ledger (series, asset, seq, at, amount, count, cum_amount, cum_count, audit_seq)
  SELECT up.series, up.asset, up.seq, up.at, w.amount, w.count, up.cum_amount, up.cum_count, $6::bigint
  FROM up JOIN w ON w.series = up.series AND w.asset = up.asset`;

export async function appendLedger(q: Q, writes: LedgerWrite[], at: number, auditSeq: number): Promise<void> {
  // Merged first: one statement cannot upsert the same head twice.
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
