/**
 * PostgreSQL schema, version 8: one ledger entry per series a charge touches, instead of one per (series,
 * asset); see the SQLite migration of the same number for the reasoning and the layout. `charges` and
 * `totals` are jsonb (`{"<asset>": ["<amount>", <count>]}`), so appendLedger adds to the head's totals in
 * SQL and a window reads an asset's total with `->`. The primary key (series, at, seq) is the only index.
 *
 * Every 006 row becomes one entry (ordered within its series by at, asset, seq); an entry's totals take,
 * for each asset of its series, that asset's latest row at or before the entry, so every window total is
 * the same after the upgrade.
 */
export const statements: string[] = [
  `CREATE TABLE ledger_v8 (
     series    text NOT NULL,
     at        bigint NOT NULL,
     seq       bigint NOT NULL,
     audit_seq bigint NOT NULL,
     charges   jsonb NOT NULL,
     totals    jsonb NOT NULL,
     CONSTRAINT ledger_v8_pkey PRIMARY KEY (series, at, seq)
   )`,
  // The new order of the old rows, and each series' assets (working tables, dropped below).
  `CREATE TABLE ledger_v8_order AS
   SELECT series, asset, at, audit_seq, amount, count, cum_amount, cum_count,
          ROW_NUMBER() OVER (PARTITION BY series ORDER BY at, asset, seq) AS new_seq
   FROM ledger`,
  'CREATE INDEX ledger_v8_order_by_asset ON ledger_v8_order (series, asset, new_seq)',
  'CREATE TABLE ledger_v8_assets AS SELECT DISTINCT series, asset FROM ledger',
  'CREATE INDEX ledger_v8_assets_by_series ON ledger_v8_assets (series, asset)',
  'ANALYZE ledger_v8_order',
  'ANALYZE ledger_v8_assets',
  `INSERT INTO ledger_v8 (series, at, seq, audit_seq, charges, totals)
   SELECT o.series, o.at, o.new_seq, o.audit_seq,
          jsonb_build_object(o.asset, jsonb_build_array(o.amount::text, o.count)),
          (SELECT jsonb_object_agg(a.asset, jsonb_build_array(p.cum_amount::text, p.cum_count))
           FROM ledger_v8_assets a
           CROSS JOIN LATERAL (
             SELECT x.cum_amount, x.cum_count FROM ledger_v8_order x
             WHERE x.series = a.series AND x.asset = a.asset AND x.new_seq <= o.new_seq
             ORDER BY x.new_seq DESC LIMIT 1
           ) p
           WHERE a.series = o.series)
   FROM ledger_v8_order o`,
  'DROP TABLE ledger_v8_order',
  'DROP TABLE ledger_v8_assets',
  'DROP TABLE ledger',
  'ALTER TABLE ledger_v8 RENAME TO ledger',
  'ALTER INDEX ledger_v8_pkey RENAME TO ledger_pkey',
  'ANALYZE ledger',
];
