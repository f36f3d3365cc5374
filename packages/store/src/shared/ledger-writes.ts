import { AirlockError, type LedgerWrite } from '@airlock/core';

/**
 * Folds writes to the same (series, asset) into one, so a batch appends one entry per series (PostgreSQL
 * appends a batch in one statement, where two writes to one series would both read the same head).
 * Totals are unchanged: both writes land at the same instant. Rejects amounts and counts that would let a
 * window shrink.
 */
export function mergeLedgerWrites(writes: LedgerWrite[]): LedgerWrite[] {
  const merged = new Map<string, LedgerWrite>();
  for (const w of writes) {
    if (w.amount < 0n) throw new AirlockError('invalid_amount', 'ledger amounts cannot be negative');
    if (!Number.isSafeInteger(w.count) || w.count < 0) throw new AirlockError('invalid_request', 'ledger counts must be non-negative integers');
    const key = `${w.series}\u0000${w.asset}`;
    const prev = merged.get(key);
    if (prev) merged.set(key, { ...prev, amount: prev.amount + w.amount, count: prev.count + w.count });
    else merged.set(key, { series: w.series, asset: w.asset, amount: w.amount, count: w.count });
  }
  return [...merged.values()];
}
