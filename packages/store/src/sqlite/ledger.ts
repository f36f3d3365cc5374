import type { LedgerWrite, WindowQuery, WindowTotal } from '@airlock/core';
import { mergeLedgerWrites } from '../shared/ledger-writes.ts';
import { toAmount, toInt } from '../shared/values.ts';
import type { SqliteDb } from './sqlite-db.ts';

// One B-tree holds the ledger (schema 006): the primary key (series, asset, at, seq) orders each series by
// time, and `at` never decreases as `seq` grows, so the newest entry of a series is the last key of its
// range (the head) and the last entry before a window is one seek. Both are lookups on that key alone.
const HEAD = 'SELECT at, seq, cum_amount, cum_count FROM ledger WHERE series = ? AND asset = ? ORDER BY at DESC, seq DESC LIMIT 1';
// A pending approval's hold counts in every window while it is held, whatever its age: it can still become
// spend (converted at approval time), so letting it age out of a window would let that window overfill.
// Reserved x402 payments hold the same way until they settle (converted) or expire unused (released).
// One statement per query: the head (kind 'head'), the last entry before the window ('before'), the holds.
const WINDOW = `
  SELECT 'head' AS kind, cum_amount AS amount, cum_count AS count FROM
    (SELECT cum_amount, cum_count FROM ledger WHERE series = ?1 AND asset = ?2 ORDER BY at DESC, seq DESC LIMIT 1)
  UNION ALL SELECT 'before', cum_amount, cum_count FROM
    (SELECT cum_amount, cum_count FROM ledger WHERE series = ?1 AND asset = ?2 AND at < ?3 ORDER BY at DESC, seq DESC LIMIT 1)
  UNION ALL SELECT 'held', amount, count FROM approval_holds WHERE series = ?1 AND asset = ?2 AND state = 'held'
  UNION ALL SELECT 'held', amount, count FROM payment_holds WHERE series = ?1 AND asset = ?2 AND state = 'held'`;

/** Window total = head cumulative - cumulative of the last entry before the window + pending holds. */
export function windowTotals(db: SqliteDb, queries: WindowQuery[]): WindowTotal[] {
  return queries.map((q) => {
    let amount = 0n;
    let count = 0;
    for (const row of db.all(WINDOW, q.series, q.asset, q.sinceMs)) {
      // The entry before the window is subtracted; the head and every hold are added.
      const sign = row.kind === 'before' ? -1 : 1;
      amount += BigInt(sign) * toAmount(row.amount);
      count += sign * toInt(row.count);
    }
    return { amount, count };
  });
}

/**
 * Appends one entry per (series, asset): at `at`, or at the series' last time if later (time never goes
 * back, which keeps the key order and the seq order the same), with the running totals.
 */
export function appendLedger(db: SqliteDb, writes: LedgerWrite[], at: number, auditSeq: number): void {
  for (const w of mergeLedgerWrites(writes)) {
    const head = db.get(HEAD, w.series, w.asset);
    db.run(
      `INSERT INTO ledger (series, asset, at, seq, amount, count, cum_amount, cum_count, audit_seq)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      w.series,
      w.asset,
      head ? Math.max(at, toInt(head.at)) : at,
      (head ? toInt(head.seq) : 0) + 1,
      w.amount.toString(),
      w.count,
      ((head ? toAmount(head.cum_amount) : 0n) + w.amount).toString(),
      (head ? toInt(head.cum_count) : 0) + w.count,
      auditSeq,
    );
  }
}
