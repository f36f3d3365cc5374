import type { LedgerWrite, WindowQuery, WindowTotal } from '@airlock/core';
import { mergeLedgerWrites } from '../shared/ledger-writes.ts';
import { toAmount, toInt } from '../shared/values.ts';
import type { Q } from './pg-query.ts';
import { FLEET_SLOTS, fleetShard, isFleetSeries, type TxLocks } from './tx-locks.ts';

/**
 * Every window in one round trip. Per physical series two seeks on the ledger's only index, the primary key
 * (series, asset, at, seq) (schema 006): the head (the series' last key) and the last entry before the
 * window; plus the pending holds (small). Cost does not grow with history. A fleet series is the sum of its
 * stripes (`fleet#0` ... `fleet#15`, see tx-locks.ts) and of its unstriped rows written before them.
 */
const WINDOW_TOTALS = `
  SELECT (COALESCE(led.amount, 0) + COALESCE(held.amount, 0))::text AS amount,
         (COALESCE(led.count, 0) + COALESCE(held.count, 0))::text AS count
  FROM unnest($1::text[], $2::text[], $3::bigint[]) WITH ORDINALITY AS q(series, asset, since_ms, ord)
  LEFT JOIN LATERAL (
    SELECT SUM(COALESCE(h.cum_amount, 0) - COALESCE(b.cum_amount, 0)) AS amount,
           SUM(COALESCE(h.cum_count, 0) - COALESCE(b.cum_count, 0)) AS count
    FROM unnest($4::bigint[], $5::text[]) AS p(ord, series)
    LEFT JOIN LATERAL (
      SELECT l.cum_amount, l.cum_count FROM ledger l
      WHERE l.series = p.series AND l.asset = q.asset
      ORDER BY l.at DESC, l.seq DESC LIMIT 1
    ) h ON true
    LEFT JOIN LATERAL (
      SELECT l.cum_amount, l.cum_count FROM ledger l
      WHERE l.series = p.series AND l.asset = q.asset AND l.at < q.since_ms
      ORDER BY l.at DESC, l.seq DESC LIMIT 1
    ) b ON true
    WHERE p.ord = q.ord
  ) led ON true
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

/** Holds keep the logical series name; only ledger rows are striped. */
function physicalSeries(series: string): string[] {
  return isFleetSeries(series) ? [series, ...Array.from({ length: FLEET_SLOTS }, (_, slot) => fleetShard(series, slot))] : [series];
}

/**
 * Locks the series first (their writers are excluded until COMMIT), then reads them in a later statement.
 * `charging`: the series the transaction will charge if allowed, locked in the same round trip (with a
 * fleet slot if any is a fleet series), so the charge later needs no lock statement of its own.
 */
export async function windowTotals(q: Q, locks: TxLocks, queries: WindowQuery[], charging: readonly string[] = []): Promise<WindowTotal[]> {
  if (queries.length === 0) return [];
  const readKeys = locks.seriesKeys(queries.map((x) => x.series), { allSlots: true });
  const chargeKeys = locks.seriesKeys(charging, { allSlots: false });
  await locks.acquire({ keys: [...readKeys, ...chargeKeys], slot: charging.some(isFleetSeries) });
  const ords: number[] = [];
  const physical: string[] = [];
  queries.forEach((x, i) => {
    for (const series of physicalSeries(x.series)) {
      ords.push(i + 1);
      physical.push(series);
    }
  });
  const rows = await q(WINDOW_TOTALS, [queries.map((x) => x.series), queries.map((x) => x.asset), queries.map((x) => x.sinceMs), ords, physical]);
  return rows.map((r) => ({ amount: toAmount(r.amount), count: toInt(r.count) }));
}

/**
 * Every write in one round trip: per (series, asset) one seek for the head, then one insert with the next
 * seq, the clamped time and the running totals. No other row is updated. The time is never before the
 * series' last entry, so key order stays seq order; for a stripe of a fleet series it is also never before
 * the last entry of any stripe (`$7`, the logical series), so a late write lands at the fleet series' head
 * time as it would unstriped. (Another stripe's uncommitted head is not seen; the entry is then still at or
 * after its own time, so a window can only over-count, never miss it.)
 */
const APPEND_LEDGER = `
  INSERT INTO ledger (series, asset, at, seq, amount, count, cum_amount, cum_count, audit_seq)
  SELECT w.series, w.asset, GREATEST($5::bigint, COALESCE(h.at, $5::bigint), COALESCE(f.at, $5::bigint)), COALESCE(h.seq, 0) + 1,
         w.amount, w.count, COALESCE(h.cum_amount, 0) + w.amount, COALESCE(h.cum_count, 0) + w.count, $6::bigint
  FROM unnest($1::text[], $2::text[], $3::numeric[], $4::bigint[], $7::text[]) AS w(series, asset, amount, count, logical)
  LEFT JOIN LATERAL (
    SELECT l.at, l.seq, l.cum_amount, l.cum_count FROM ledger l
    WHERE l.series = w.series AND l.asset = w.asset
    ORDER BY l.at DESC, l.seq DESC LIMIT 1
  ) h ON true
  LEFT JOIN LATERAL (
    SELECT max(sh.at) AS at
    FROM (SELECT w.logical AS series UNION ALL SELECT w.logical || '#' || i FROM generate_series(0, ${FLEET_SLOTS - 1}) AS i) AS stripe
    CROSS JOIN LATERAL (
      SELECT l.at FROM ledger l WHERE l.series = stripe.series AND l.asset = w.asset ORDER BY l.at DESC, l.seq DESC LIMIT 1
    ) sh
    WHERE w.logical IS NOT NULL
  ) f ON true`;

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

export async function appendLedger(q: Q, locks: TxLocks, writes: LedgerWrite[], at: number, auditSeq: number): Promise<void> {
  const slot = await lockForWrites(locks, writes);
  // Merged first: two writes to one series in one statement would both read the same head.
  const merged = mergeLedgerWrites(writes);
  if (merged.length === 0) return;
  const striped = (w: LedgerWrite) => slot !== undefined && isFleetSeries(w.series);
  await q(APPEND_LEDGER, [
    merged.map((w) => (striped(w) ? fleetShard(w.series, slot!) : w.series)),
    merged.map((w) => w.asset),
    merged.map((w) => w.amount.toString()),
    merged.map((w) => w.count),
    at,
    auditSeq,
    merged.map((w) => (striped(w) ? w.series : null)),
  ]);
}
