import { AirlockError, COUNT_ASSET, type LedgerWrite, type WindowQuery, type WindowTotal } from '@airlock/core';
import { ASSETS_KEPT_PER_SERIES, assetSeries, chargesBySeries, chargesJson, entryAfter } from '../shared/ledger-entries.ts';
import type { Row } from '../shared/rows.ts';
import { toAmount, toInt } from '../shared/values.ts';
import type { SqliteDb } from './sqlite-db.ts';

// One entry per (series, charge) (schema 008), found through `ledger_by_series (series, at, seq)`: `at` never
// decreases as `seq` grows within a series, so the newest entry of a series (its head) is the last key of its
// range and the last entry before a window is one seek. Each entry carries the series' running totals for
// every asset it keeps (shared/ledger-entries.ts; the others have series of their own).
const HEAD = 'SELECT at, seq, kept_totals AS totals FROM ledger WHERE series = ? ORDER BY at DESC, seq DESC LIMIT 1';
// A pending approval's held amount counts in every window while it is held, whatever its age: it can still
// become spend (converted at approval time), so letting it age out of a window would let that window overfill.
// Reserved x402 payments hold the same way until they settle (converted) or expire unused (released), and
// Lightning payments in flight until the backend gives a definite answer. A hold's count is a request made at
// the hold's time and counts only in the windows that time is in, as a ledger entry's does (found by review:
// counted in every window, one agent's requests waiting for a human filled a fleet-wide rate limit for every
// agent until they were decided). Converted, it is counted again at its conversion, where the grant is judged.
// One statement per query: the asset's running total in the head (kind 'head') and in the last entry before
// the window ('before'), picked out by SQLite's json_each (an exact key match: no JSON path to quote), and
// the holds. An entry without the asset gives no row (zero).
const WINDOW_LEDGER = `
  SELECT 'head' AS kind, e.value ->> 0 AS amount, e.value ->> 1 AS count FROM
    (SELECT kept_totals AS totals FROM ledger WHERE series = ?1 ORDER BY at DESC, seq DESC LIMIT 1) AS h, json_each(h.totals) AS e WHERE e.key = ?2
  UNION ALL SELECT 'before', e.value ->> 0, e.value ->> 1 FROM
    (SELECT kept_totals AS totals FROM ledger WHERE series = ?1 AND at < ?3 ORDER BY at DESC, seq DESC LIMIT 1) AS b, json_each(b.totals) AS e WHERE e.key = ?2`;
const WINDOW = `${WINDOW_LEDGER}
  UNION ALL SELECT 'held', amount, CASE WHEN at >= ?3 THEN count ELSE 0 END FROM approval_holds WHERE series = ?1 AND asset = ?2 AND state = 'held'
  UNION ALL SELECT 'held', amount, CASE WHEN at >= ?3 THEN count ELSE 0 END FROM payment_holds WHERE series = ?1 AND asset = ?2 AND state = 'held'
  UNION ALL SELECT 'held', amount, CASE WHEN at >= ?3 THEN count ELSE 0 END FROM lightning_holds WHERE series = ?1 AND asset = ?2 AND state = 'held'`;
// For any asset but the request count, the head's row also says whether the head keeps the asset and how many
// assets it keeps (one pass over it, always one row): the asset can have its own series only if the head keeps
// ASSETS_KEPT_PER_SERIES assets and not this one (shared/ledger-entries.ts entryAfter; a head never keeps fewer
// assets than the one before it, nor later keeps an asset that went apart), and only then is that series read
// (OWN_WINDOW): nearly every read needs no more seeks than before.
const WINDOW_ASSET_LEDGER = `
  SELECT 'head' AS kind, max(CASE WHEN e.key = ?2 THEN e.value ->> 0 END) AS amount, max(CASE WHEN e.key = ?2 THEN e.value ->> 1 END) AS count,
         count(*) AS keeps, coalesce(sum(e.key = ?2), 0) AS has FROM
    (SELECT kept_totals AS totals FROM ledger WHERE series = ?1 ORDER BY at DESC, seq DESC LIMIT 1) AS h, json_each(h.totals) AS e
  UNION ALL SELECT 'before', e.value ->> 0, e.value ->> 1, NULL, 1 FROM
    (SELECT kept_totals AS totals FROM ledger WHERE series = ?1 AND at < ?3 ORDER BY at DESC, seq DESC LIMIT 1) AS b, json_each(b.totals) AS e WHERE e.key = ?2`;
const WINDOW_ASSET = `${WINDOW_ASSET_LEDGER}
  UNION ALL SELECT 'held', amount, CASE WHEN at >= ?3 THEN count ELSE 0 END, NULL, 1 FROM approval_holds WHERE series = ?1 AND asset = ?2 AND state = 'held'
  UNION ALL SELECT 'held', amount, CASE WHEN at >= ?3 THEN count ELSE 0 END, NULL, 1 FROM payment_holds WHERE series = ?1 AND asset = ?2 AND state = 'held'
  UNION ALL SELECT 'held', amount, CASE WHEN at >= ?3 THEN count ELSE 0 END, NULL, 1 FROM lightning_holds WHERE series = ?1 AND asset = ?2 AND state = 'held'`;
const OWN_WINDOW = `
  SELECT 'head' AS kind, e.value ->> 0 AS amount, e.value ->> 1 AS count, 1 AS has FROM
    (SELECT kept_totals AS totals FROM ledger WHERE series = ?1 ORDER BY at DESC, seq DESC LIMIT 1) AS h, json_each(h.totals) AS e WHERE e.key = ?2
  UNION ALL SELECT 'before', e.value ->> 0, e.value ->> 1, 1 FROM
    (SELECT kept_totals AS totals FROM ledger WHERE series = ?1 AND at < ?3 ORDER BY at DESC, seq DESC LIMIT 1) AS b, json_each(b.totals) AS e WHERE e.key = ?2`;

// Detectors (StoreTx.detectorTotals) read the same ledger rows, and a hold, amount and count alike, only if it was
// made at or after ?4: the window's start, or NO_HOLDS for a query of the ledger's charges alone. The holds'
// index (series, asset, state, at) answers either as one range.
const DETECTOR_WINDOW = `${WINDOW_LEDGER}
  UNION ALL SELECT 'held', amount, count FROM approval_holds WHERE series = ?1 AND asset = ?2 AND state = 'held' AND at >= ?4
  UNION ALL SELECT 'held', amount, count FROM payment_holds WHERE series = ?1 AND asset = ?2 AND state = 'held' AND at >= ?4
  UNION ALL SELECT 'held', amount, count FROM lightning_holds WHERE series = ?1 AND asset = ?2 AND state = 'held' AND at >= ?4`;
const DETECTOR_WINDOW_ASSET = `${WINDOW_ASSET_LEDGER}
  UNION ALL SELECT 'held', amount, count, NULL, 1 FROM approval_holds WHERE series = ?1 AND asset = ?2 AND state = 'held' AND at >= ?4
  UNION ALL SELECT 'held', amount, count, NULL, 1 FROM payment_holds WHERE series = ?1 AND asset = ?2 AND state = 'held' AND at >= ?4
  UNION ALL SELECT 'held', amount, count, NULL, 1 FROM lightning_holds WHERE series = ?1 AND asset = ?2 AND state = 'held' AND at >= ?4`;
/** Later than any hold: a charges-only query counts none. */
const NO_HOLDS = Number.MAX_SAFE_INTEGER;

/**
 * Window total = the asset's total at the head - its total at the last entry before the window, in the series
 * and, where it can have one, in the asset's own series (shared/ledger-entries.ts, assetSeries) + pending
 * holds (their counts made in the window).
 */
export function windowTotals(db: SqliteDb, queries: WindowQuery[]): WindowTotal[] {
  return queries.map((q) => {
    const total = { amount: 0n, count: 0 };
    if (q.asset === COUNT_ASSET) {
      addRows(total, db.all(WINDOW, q.series, q.asset, q.sinceMs));
      return total;
    }
    const rows = db.all(WINDOW_ASSET, q.series, q.asset, q.sinceMs);
    addRows(total, rows);
    addOwnSeries(db, total, q, rows);
    return total;
  });
}

/**
 * What detectors read (StoreTx.detectorTotals): the same ledger sums, and the holds made in the window (none for
 * a `chargesOnly` query), their amounts included. As cheap as a budget's read: the same statements' shape.
 */
export function detectorTotals(db: SqliteDb, queries: WindowQuery[]): WindowTotal[] {
  return queries.map((q) => {
    const total = { amount: 0n, count: 0 };
    const holdsFrom = q.chargesOnly ? NO_HOLDS : q.sinceMs;
    if (q.asset === COUNT_ASSET) {
      addRows(total, db.all(DETECTOR_WINDOW, q.series, q.asset, q.sinceMs, holdsFrom));
      return total;
    }
    const rows = db.all(DETECTOR_WINDOW_ASSET, q.series, q.asset, q.sinceMs, holdsFrom);
    addRows(total, rows);
    addOwnSeries(db, total, q, rows);
    return total;
  });
}

/** The asset's own series, where the head's row says it can have one (WINDOW_ASSET): its ledger entries only. */
function addOwnSeries(db: SqliteDb, total: WindowTotal, q: WindowQuery, rows: readonly Row[]): void {
  const head = rows.find((r) => r.kind === 'head');
  if (head !== undefined && toInt(head.has) === 0 && toInt(head.keeps) >= ASSETS_KEPT_PER_SERIES) addRows(total, db.all(OWN_WINDOW, assetSeries(q.series, q.asset), q.asset, q.sinceMs));
}

function addRows(total: WindowTotal, rows: readonly Row[]): void {
  for (const row of rows) {
    // The head's row of WINDOW_ASSET comes whether or not the head keeps the asset.
    if (row.has !== undefined && toInt(row.has) === 0) continue;
    // A total that is not ["<amount>", <count>] must fail, not read as zero.
    if (row.kind !== 'held' && typeof row.amount !== 'string') throw new AirlockError('internal', 'store returned malformed ledger totals');
    // The entry before the window is subtracted; the head and every hold are added.
    const sign = row.kind === 'before' ? -1 : 1;
    total.amount += BigInt(sign) * toAmount(row.amount);
    total.count += sign * toInt(row.count);
  }
}

/**
 * Appends one entry per series charged: at `at`, or at the series' last time if later (time never goes
 * back, which keeps the key order and the seq order the same), with the series' new running totals; and
 * one entry in its own series per asset the series does not keep (splitCharges), at the same time or later.
 */
export function appendLedger(db: SqliteDb, writes: LedgerWrite[], at: number, auditSeq: number): void {
  const memo = db.transactionMemo();
  for (const [series, charges] of chargesBySeries(writes)) {
    const entry = appendEntry(db, memo, series, at, auditSeq, charges);
    // The asset's own series gets what it holds alone: it keeps its one asset.
    for (const w of entry.apart) appendEntry(db, memo, assetSeries(series, w.asset), entry.at, auditSeq, [w]);
  }
}

function appendEntry(db: SqliteDb, memo: Map<string, unknown> | undefined, series: string, at: number, auditSeq: number, charges: readonly LedgerWrite[]): Head & { apart: LedgerWrite[] } {
  const head = headOf(db, memo, series);
  const { totals, kept, apart } = entryAfter(head?.totals, charges);
  const entry: Head = { at: head ? Math.max(at, head.at) : at, seq: (head ? head.seq : 0) + 1, totals };
  db.run('INSERT INTO ledger (series, at, seq, audit_seq, charges, kept_totals) VALUES (?, ?, ?, ?, ?, ?)', series, entry.at, entry.seq, auditSeq, chargesJson(kept), totals);
  memo?.set(memoKey(series), entry);
  return { ...entry, apart };
}

interface Head {
  at: number;
  seq: number;
  /** As stored: the JSON text of the running totals. */
  totals: unknown;
}

const memoKey = (series: string) => `ledger-head\u0000${series}`;

/**
 * The series' newest entry. Within one write transaction the head a series was last read or written at is
 * remembered (SqliteDb.transactionMemo): a batch signing for one agent charges the same series once per
 * request, and each re-read was a statement. The transaction's write lock keeps it true; a savepoint
 * rollback or the transaction's end forgets it.
 */
function headOf(db: SqliteDb, memo: Map<string, unknown> | undefined, series: string): Head | undefined {
  const known = memo?.get(memoKey(series)) as Head | undefined;
  if (known) return known;
  const row = db.get(HEAD, series);
  if (!row) return undefined;
  const head: Head = { at: toInt(row.at), seq: toInt(row.seq), totals: row.totals };
  memo?.set(memoKey(series), head);
  return head;
}
