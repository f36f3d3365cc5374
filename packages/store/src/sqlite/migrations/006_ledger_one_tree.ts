/**
 * SQLite schema, version 6: the ledger in one B-tree. Until 005 each charge to a (series, asset) wrote
 * three B-trees: the `ledger` row (keyed by seq), its `ledger_by_time` index entry and the `ledger_heads`
 * upsert; a signature charging 13 series dirtied about 40 pages. Keyed by (series, asset, at, seq), the
 * table is its own time index and its own head (the last key of a series), so each charge is one insert.
 *
 * The rows are copied unchanged, so every window total is the same after the upgrade: the old code never
 * let `at` go back within a series, so the newest row by (at, seq) is the row `ledger_heads` pointed at,
 * and the last row before a window is the one `ledger_by_time` found. `at` is still copied as the running
 * maximum over seq, which is what that rule produces, so a hand-edited history cannot break the key order
 * the new code relies on (such a row could only move later: a window then over-counts, never under-counts).
 */
export const statements: string[] = [
  `CREATE TABLE ledger_v6 (
     series     TEXT NOT NULL,
     asset      TEXT NOT NULL,
     at         INTEGER NOT NULL,
     seq        INTEGER NOT NULL,
     amount     TEXT NOT NULL,
     count      INTEGER NOT NULL,
     cum_amount TEXT NOT NULL,
     cum_count  INTEGER NOT NULL,
     audit_seq  INTEGER NOT NULL,
     PRIMARY KEY (series, asset, at, seq)
   ) STRICT, WITHOUT ROWID`,
  `INSERT INTO ledger_v6 (series, asset, at, seq, amount, count, cum_amount, cum_count, audit_seq)
   SELECT series, asset, MAX(at) OVER (PARTITION BY series, asset ORDER BY seq ROWS UNBOUNDED PRECEDING),
          seq, amount, count, cum_amount, cum_count, audit_seq
   FROM ledger`,
  `DROP TABLE ledger_heads`,
  `DROP TABLE ledger`,
  `ALTER TABLE ledger_v6 RENAME TO ledger`,
];
