/**
 * PostgreSQL schema, version 26: `ledger.totals` becomes `kept_totals`, unchanged in content. Since this version a
 * series' entries keep at most 32 assets and charges of further ones go to each asset's own series
 * (shared/ledger-entries.ts, ASSETS_KEPT_PER_SERIES). An earlier version reads no own series and, charging such
 * an asset, would write it back into the series' entries, after which budgets under-count on every version
 * (found by review). With the column renamed its ledger statements fail instead: an earlier instance left
 * running, or a rollback without the pre-upgrade backup, refuses requests rather than signing past a budget.
 */
export const statements: string[] = ['ALTER TABLE ledger RENAME COLUMN totals TO kept_totals'];
