import type { LedgerWrite, WindowQuery, WindowTotal } from '@airlock/core';
import { assetTotal, chargesBySeries, chargesJson, totalsAfter } from '../shared/ledger-entries.ts';
import { toAmount, toInt } from '../shared/values.ts';
import type { SqliteDb } from './sqlite-db.ts';

// One entry per (series, charge) (schema 008), found through `ledger_by_series (series, at, seq)`: `at` never
// decreases as `seq` grows within a series, so the newest entry of a series (its head) is the last key of its
// range and the last entry before a window is one seek. Each entry carries the series' running totals for
// every asset it has been charged (shared/ledger-entries.ts).
const HEAD = 'SELECT at, seq, totals FROM ledger WHERE series = ? ORDER BY at DESC, seq DESC LIMIT 1';
// A pending approval's hold counts in every window while it is held, whatever its age: it can still become
// spend (converted at approval time), so letting it age out of a window would let that window overfill.
// Reserved x402 payments hold the same way until they settle (converted) or expire unused (released).
// One statement per query: the head (kind 'head'), the last entry before the window ('before'), the holds.
const WINDOW = `
  SELECT 'head' AS kind, totals, NULL AS amount, NULL AS count FROM
    (SELECT totals FROM ledger WHERE series = ?1 ORDER BY at DESC, seq DESC LIMIT 1)
  UNION ALL SELECT 'before', totals, NULL, NULL FROM
    (SELECT totals FROM ledger WHERE series = ?1 AND at < ?3 ORDER BY at DESC, seq DESC LIMIT 1)
  UNION ALL SELECT 'held', NULL, amount, count FROM approval_holds WHERE series = ?1 AND asset = ?2 AND state = 'held'
  UNION ALL SELECT 'held', NULL, amount, count FROM payment_holds WHERE series = ?1 AND asset = ?2 AND state = 'held'`;

/** Window total = the asset's total at the head - its total at the last entry before the window + pending holds. */
export function windowTotals(db: SqliteDb, queries: WindowQuery[]): WindowTotal[] {
  return queries.map((q) => {
    let amount = 0n;
    let count = 0;
    for (const row of db.all(WINDOW, q.series, q.asset, q.sinceMs)) {
      const t = row.kind === 'held' ? { amount: toAmount(row.amount), count: toInt(row.count) } : assetTotal(row.totals, q.asset);
      // The entry before the window is subtracted; the head and every hold are added.
      const sign = row.kind === 'before' ? -1 : 1;
      amount += BigInt(sign) * t.amount;
      count += sign * t.count;
    }
    return { amount, count };
  });
}

/**
 * Appends one entry per series charged: at `at`, or at the series' last time if later (time never goes
 * back, which keeps the key order and the seq order the same), with the series' new running totals.
 */
export function appendLedger(db: SqliteDb, writes: LedgerWrite[], at: number, auditSeq: number): void {
  for (const [series, charges] of chargesBySeries(writes)) {
    const head = db.get(HEAD, series);
    db.run(
      'INSERT INTO ledger (series, at, seq, audit_seq, charges, totals) VALUES (?, ?, ?, ?, ?, ?)',
      series,
      head ? Math.max(at, toInt(head.at)) : at,
      (head ? toInt(head.seq) : 0) + 1,
      auditSeq,
      chargesJson(charges),
      totalsAfter(head?.totals, charges),
    );
  }
}
