import type { LedgerWrite, WindowQuery, WindowTotal } from '@airlock/core';
import { mergeLedgerWrites } from '../shared/ledger-writes.ts';
import { toAmount, toInt } from '../shared/values.ts';
import type { SqliteDb } from './sqlite-db.ts';

const HEAD = 'SELECT seq, at, cum_amount, cum_count FROM ledger_heads WHERE series = ? AND asset = ?';
// Uses ledger_by_time (series, asset, at, seq): one index seek, whatever the history size.
const LAST_BEFORE = 'SELECT cum_amount, cum_count FROM ledger WHERE series = ? AND asset = ? AND at < ? ORDER BY at DESC, seq DESC LIMIT 1';
// A pending approval's hold counts in every window while it is held, whatever its age: it can still become
// spend (converted at approval time), so letting it age out of a window would let that window overfill.
// Reserved x402 payments hold the same way until they settle (converted) or expire unused (released).
const HELD = `SELECT amount, count FROM approval_holds WHERE series = ? AND asset = ? AND state = 'held'
  UNION ALL SELECT amount, count FROM payment_holds WHERE series = ? AND asset = ? AND state = 'held'`;

/** Window total = head cumulative - cumulative of the last row before the window + pending holds. */
export function windowTotals(db: SqliteDb, queries: WindowQuery[]): WindowTotal[] {
  return queries.map((q) => {
    let amount = 0n;
    let count = 0;
    const head = db.get(HEAD, q.series, q.asset);
    if (head) {
      const before = db.get(LAST_BEFORE, q.series, q.asset, q.sinceMs);
      amount = toAmount(head.cum_amount) - (before ? toAmount(before.cum_amount) : 0n);
      count = toInt(head.cum_count) - (before ? toInt(before.cum_count) : 0);
    }
    for (const hold of db.all(HELD, q.series, q.asset, q.series, q.asset)) {
      amount += toAmount(hold.amount);
      count += toInt(hold.count);
    }
    return { amount, count };
  });
}

/** Appends one row per (series, asset), at `at` or the series' last time if later (time never goes back). */
export function appendLedger(db: SqliteDb, writes: LedgerWrite[], at: number, auditSeq: number): void {
  for (const w of mergeLedgerWrites(writes)) {
    const head = db.get(HEAD, w.series, w.asset);
    const seq = (head ? toInt(head.seq) : 0) + 1;
    const rowAt = head ? Math.max(at, toInt(head.at)) : at;
    const cumAmount = (head ? toAmount(head.cum_amount) : 0n) + w.amount;
    const cumCount = (head ? toInt(head.cum_count) : 0) + w.count;
    db.run(
      `INSERT INTO ledger (series, asset, seq, at, amount, count, cum_amount, cum_count, audit_seq)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      w.series, w.asset, seq, rowAt, w.amount.toString(), w.count, cumAmount.toString(), cumCount, auditSeq,
    );
    db.run(
      `INSERT INTO ledger_heads (series, asset, seq, at, cum_amount, cum_count) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (series, asset) DO UPDATE SET
         seq = excluded.seq, at = excluded.at, cum_amount = excluded.cum_amount, cum_count = excluded.cum_count`,
      w.series, w.asset, seq, rowAt, cumAmount.toString(), cumCount,
    );
  }
}
