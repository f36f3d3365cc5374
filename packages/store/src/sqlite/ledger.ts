import { AirlockError, type LedgerWrite, type WindowQuery, type WindowTotal } from '@airlock/core';
import { chargesBySeries, chargesJson, totalsAfter } from '../shared/ledger-entries.ts';
import { toAmount, toInt } from '../shared/values.ts';
import type { SqliteDb } from './sqlite-db.ts';

// One entry per (series, charge) (schema 008), found through `ledger_by_series (series, at, seq)`: `at` never
// decreases as `seq` grows within a series, so the newest entry of a series (its head) is the last key of its
// range and the last entry before a window is one seek. Each entry carries the series' running totals for
// every asset it has been charged (shared/ledger-entries.ts).
const HEAD = 'SELECT at, seq, totals FROM ledger WHERE series = ? ORDER BY at DESC, seq DESC LIMIT 1';
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
const WINDOW = `
  SELECT 'head' AS kind, e.value ->> 0 AS amount, e.value ->> 1 AS count FROM
    (SELECT totals FROM ledger WHERE series = ?1 ORDER BY at DESC, seq DESC LIMIT 1) AS h, json_each(h.totals) AS e WHERE e.key = ?2
  UNION ALL SELECT 'before', e.value ->> 0, e.value ->> 1 FROM
    (SELECT totals FROM ledger WHERE series = ?1 AND at < ?3 ORDER BY at DESC, seq DESC LIMIT 1) AS b, json_each(b.totals) AS e WHERE e.key = ?2
  UNION ALL SELECT 'held', amount, CASE WHEN at >= ?3 THEN count ELSE 0 END FROM approval_holds WHERE series = ?1 AND asset = ?2 AND state = 'held'
  UNION ALL SELECT 'held', amount, CASE WHEN at >= ?3 THEN count ELSE 0 END FROM payment_holds WHERE series = ?1 AND asset = ?2 AND state = 'held'
  UNION ALL SELECT 'held', amount, CASE WHEN at >= ?3 THEN count ELSE 0 END FROM lightning_holds WHERE series = ?1 AND asset = ?2 AND state = 'held'`;

/** Window total = the asset's total at the head - its total at the last entry before the window + pending holds (their counts made in the window). */
export function windowTotals(db: SqliteDb, queries: WindowQuery[]): WindowTotal[] {
  return queries.map((q) => {
    let amount = 0n;
    let count = 0;
    for (const row of db.all(WINDOW, q.series, q.asset, q.sinceMs)) {
      // A total that is not ["<amount>", <count>] must fail, not read as zero.
      if (row.kind !== 'held' && typeof row.amount !== 'string') throw new AirlockError('internal', 'store returned malformed ledger totals');
      // The entry before the window is subtracted; the head and every hold are added.
      const sign = row.kind === 'before' ? -1 : 1;
      amount += BigInt(sign) * toAmount(row.amount);
      count += sign * toInt(row.count);
    }
    return { amount, count };
  });
}

/**
 * Appends one entry per series charged: at `at`, or at the series' last time if later (time never goes
 * back, which keeps the key order and the seq order the same), with the series' new running totals.
 */
export function appendLedger(db: SqliteDb, writes: LedgerWrite[], at: number, auditSeq: number): void {
  const memo = db.transactionMemo();
  for (const [series, charges] of chargesBySeries(writes)) {
    const head = headOf(db, memo, series);
    const totals = totalsAfter(head?.totals, charges);
    const entry: Head = { at: head ? Math.max(at, head.at) : at, seq: (head ? head.seq : 0) + 1, totals };
    db.run('INSERT INTO ledger (series, at, seq, audit_seq, charges, totals) VALUES (?, ?, ?, ?, ?, ?)', series, entry.at, entry.seq, auditSeq, chargesJson(charges), totals);
    memo?.set(memoKey(series), entry);
  }
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
