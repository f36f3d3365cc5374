/**
 * SQLite schema, version 8: one ledger entry per series a charge touches, instead of one per (series,
 * asset). A signature charges about 13 (series, asset) pairs but only 5 series (fleet, agent, session and
 * the two per-destination series), and each key range it appends to is a leaf page to write: a batch of 16
 * signatures from 16 agents wrote ~230 ledger pages (~1 MB of WAL) under 006, ~70 here (docs/architecture.md).
 *
 * An entry keeps what its charge adds per asset (`charges`) and the series' running totals for every asset
 * it has ever been charged (`totals`), both JSON `{"<asset>": ["<amount>", <count>]}`; a window total for
 * (series, asset) is the asset's total at the head minus its total at the last entry before the window.
 *
 * Entries are wider than 006 rows (~280 bytes), so they live in a rowid table, appended at its end (a batch
 * fills a few consecutive pages), and `ledger_by_series (series, at, seq)` is the narrow index the seeks use.
 * As a WITHOUT ROWID table keyed like that index, every interior page would carry whole entries (a fanout of
 * about 13) and a batch wrote ~130 pages.
 *
 * Every 006 row becomes one entry, so no amount is added in SQL (SQLite arithmetic is not exact beyond
 * 2^63). Within a series the rows are ordered by (at, asset, seq): `at` never decreases, and each asset's
 * rows keep their order, so an asset's 006 running total is its running total in the new order. An entry's
 * `totals` take, for each asset of its series, that asset's latest row at or before the entry.
 */
export const statements: string[] = [
  `CREATE TABLE ledger_v8 (
     id        INTEGER PRIMARY KEY,
     series    TEXT NOT NULL,
     at        INTEGER NOT NULL,
     seq       INTEGER NOT NULL,
     audit_seq INTEGER NOT NULL,
     charges   TEXT NOT NULL,
     totals    TEXT NOT NULL
   ) STRICT`,
  // The new order of the old rows, and each series' assets (working tables, dropped below).
  `CREATE TABLE ledger_v8_order AS
   SELECT series, asset, at, audit_seq, amount, count, cum_amount, cum_count,
          ROW_NUMBER() OVER (PARTITION BY series ORDER BY at, asset, seq) AS new_seq
   FROM ledger`,
  'CREATE INDEX ledger_v8_order_by_asset ON ledger_v8_order (series, asset, new_seq)',
  'CREATE TABLE ledger_v8_assets AS SELECT DISTINCT series, asset FROM ledger',
  'CREATE INDEX ledger_v8_assets_by_series ON ledger_v8_assets (series, asset)',
  // Per entry and asset of its series, one seek for that asset's latest row (subtypes do not survive a
  // subquery, hence json() around each total).
  `INSERT INTO ledger_v8 (series, at, seq, audit_seq, charges, totals)
   SELECT o.series, o.at, o.new_seq, o.audit_seq,
          json_object(o.asset, json_array(o.amount, o.count)),
          (SELECT json_group_object(t.asset, json(t.total) ORDER BY t.asset) FROM (
             SELECT a.asset, (SELECT json_array(p.cum_amount, p.cum_count) FROM ledger_v8_order p
                              WHERE p.series = a.series AND p.asset = a.asset AND p.new_seq <= o.new_seq
                              ORDER BY p.new_seq DESC LIMIT 1) AS total
             FROM ledger_v8_assets a WHERE a.series = o.series) t
           WHERE t.total IS NOT NULL)
   FROM ledger_v8_order o`,
  'DROP TABLE ledger_v8_order',
  'DROP TABLE ledger_v8_assets',
  'DROP TABLE ledger',
  'ALTER TABLE ledger_v8 RENAME TO ledger',
  'CREATE UNIQUE INDEX ledger_by_series ON ledger (series, at, seq)',
];
