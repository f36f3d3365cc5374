/**
 * PostgreSQL schema, version 6: the ledger in one B-tree (see the SQLite migration of the same number for
 * the reasoning). Until 005 each charge to a (series, asset) wrote the heap row, two indexes
 * (`ledger_pkey` on seq, `ledger_by_time`) and upserted `ledger_heads` (a heap row and its index). Now the
 * primary key (series, asset, at, seq) is the only index: it orders a series by time, its last key is the
 * head, and the last entry before a window is one seek.
 *
 * Rows are copied unchanged (`at` as the running maximum over seq, which is what the old code wrote), so
 * every window total is the same after the upgrade.
 */
export const statements: string[] = [
  `CREATE TABLE ledger_v6 (
     series     text NOT NULL,
     asset      text NOT NULL,
     at         bigint NOT NULL,
     seq        bigint NOT NULL,
     amount     numeric(78, 0) NOT NULL,
     count      bigint NOT NULL,
     cum_amount numeric NOT NULL,
     cum_count  bigint NOT NULL,
     audit_seq  bigint NOT NULL,
     CONSTRAINT ledger_v6_pkey PRIMARY KEY (series, asset, at, seq)
   )`,
  `INSERT INTO ledger_v6 (series, asset, at, seq, amount, count, cum_amount, cum_count, audit_seq)
   SELECT series, asset, MAX(at) OVER (PARTITION BY series, asset ORDER BY seq ROWS UNBOUNDED PRECEDING),
          seq, amount, count, cum_amount, cum_count, audit_seq
   FROM ledger`,
  `DROP TABLE ledger_heads`,
  `DROP TABLE ledger`,
  `ALTER TABLE ledger_v6 RENAME TO ledger`,
  `ALTER INDEX ledger_v6_pkey RENAME TO ledger_pkey`,
  `ANALYZE ledger`,
];
