/**
 * Ledger migrations must not change a single window total. Run by sqlite.test.ts and postgres.test.ts.
 *
 * - `checkLedgerUpgrade` (006, the ledger in one B-tree), on a store migrated up to 005: writes a ledger
 *   the way the pre-006 code did (a `ledger` row per charge with running totals, `ledger_heads` upserted),
 *   reads every boundary window the way the pre-006 code did, upgrades (006 and every later migration) and
 *   compares with `windowTotals` and with the brute-force reference.
 * - `checkLedgerUpgradeTo008` (one entry per series), on a store migrated up to 007: the same with the
 *   006-007 layout (a row per (series, asset) keyed (series, asset, at, seq)), over charges whose assets
 *   vary from one entry to the next, so the migrated running totals must carry every asset forward.
 *
 * Both then keep charging through the upgraded store (with clock skew) to show the migrated heads are used.
 */
import assert from 'node:assert/strict';
import type { Store, WindowQuery, WindowTotal } from '@airlock/core';
import { DAI, generateCharges, LedgerModel } from './ledger-reference.test-suite.ts';

export interface PreUpgradeStore {
  /** A store whose schema is just before the migration under test (005 for 006, 007 for 008). */
  store: Store & { rawExec(sql: string): Promise<void> };
  /** Rows of a read-only query on the same database (column values as the driver returns them). */
  query(sql: string): Promise<Record<string, unknown>[]>;
}

const literal = (value: string | number | bigint) => (typeof value === 'string' ? `'${value.replaceAll("'", "''")}'` : String(value));

/** The pre-006 window read: head from ledger_heads, minus the last ledger row before the window. */
function oldWindowSql(q: WindowQuery): string {
  const key = `series = ${literal(q.series)} AND asset = ${literal(q.asset)}`;
  const before = (column: string) => `(SELECT ${column} FROM ledger WHERE ${key} AND at < ${q.sinceMs} ORDER BY at DESC, seq DESC LIMIT 1)`;
  return `SELECT (SELECT cum_amount FROM ledger_heads WHERE ${key}) AS head_amount, (SELECT cum_count FROM ledger_heads WHERE ${key}) AS head_count,
    ${before('cum_amount')} AS before_amount, ${before('cum_count')} AS before_count`;
}

const big = (v: unknown) => (v === null || v === undefined ? 0n : BigInt(String(v)));

export async function checkLedgerUpgrade({ store, query }: PreUpgradeStore): Promise<void> {
  const model = new LedgerModel('pair');
  for (const c of generateCharges(11, 200)) model.append(c.writes, c.at, c.auditSeq);

  // The old layout, row for row as the pre-006 appendLedger wrote it.
  const series = model.series();
  const rows = series.flatMap((s) => s.rows.map((r) => `(${[s.series, s.asset, r.seq, r.at, r.amount.toString(), r.count, r.cumAmount.toString(), r.cumCount, r.auditSeq].map(literal).join(', ')})`));
  for (let i = 0; i < rows.length; i += 500) {
    await store.rawExec(`INSERT INTO ledger (series, asset, seq, at, amount, count, cum_amount, cum_count, audit_seq) VALUES ${rows.slice(i, i + 500).join(', ')}`);
  }
  const heads = series.map((s) => {
    const h = s.rows.at(-1)!;
    return `(${[s.series, s.asset, h.seq, h.at, h.cumAmount.toString(), h.cumCount].map(literal).join(', ')})`;
  });
  await store.rawExec(`INSERT INTO ledger_heads (series, asset, seq, at, cum_amount, cum_count) VALUES ${heads.join(', ')}`);

  const queries = model.boundaryQueries(15);
  const before: WindowTotal[] = [];
  for (const q of queries) {
    const [r] = await query(oldWindowSql(q));
    before.push({ amount: big(r!.head_amount) - big(r!.before_amount), count: Number(big(r!.head_count) - big(r!.before_count)) });
  }
  assert.deepEqual(before, queries.map((q) => model.total(q)), 'the old layout and the reference agree before the upgrade');

  await store.migrate();
  const after = await store.transaction((tx) => tx.windowTotals(queries));
  assert.deepEqual(after, before, 'every window total is the same after the upgrade');
  const [{ n }] = (await query('SELECT count(*) AS n FROM ledger')) as [{ n: unknown }];
  assert.equal(Number(n), rows.length, 'every entry is kept');

  await chargeOn(store, model, 12, {});
}

/** The 006-007 window read: the last row of the (series, asset), minus the last one before the window. */
function v7WindowSql(q: WindowQuery): string {
  const key = `series = ${literal(q.series)} AND asset = ${literal(q.asset)}`;
  const last = (column: string, since = '') => `(SELECT ${column} FROM ledger WHERE ${key}${since} ORDER BY at DESC, seq DESC LIMIT 1)`;
  const before = ` AND at < ${q.sinceMs}`;
  return `SELECT ${last('cum_amount')} AS head_amount, ${last('cum_count')} AS head_count,
    ${last('cum_amount', before)} AS before_amount, ${last('cum_count', before)} AS before_count`;
}

export async function checkLedgerUpgradeTo008({ store, query }: PreUpgradeStore): Promise<void> {
  // The 006-007 code clamped a late charge to its (series, asset)'s last time.
  const model = new LedgerModel('pair');
  for (const c of generateCharges(13, 250, 1_000_000, { mixedAssets: true })) model.append(c.writes, c.at, c.auditSeq);

  const series = model.series();
  const rows = series.flatMap((s) => s.rows.map((r) => `(${[s.series, s.asset, r.at, r.seq, r.amount.toString(), r.count, r.cumAmount.toString(), r.cumCount, r.auditSeq].map(literal).join(', ')})`));
  for (let i = 0; i < rows.length; i += 500) {
    await store.rawExec(`INSERT INTO ledger (series, asset, at, seq, amount, count, cum_amount, cum_count, audit_seq) VALUES ${rows.slice(i, i + 500).join(', ')}`);
  }
  const queries = model.boundaryQueries(15);
  assert.ok(queries.some((q) => q.asset === DAI) && queries.length > 500, `${queries.length} queries`);
  const before: WindowTotal[] = [];
  for (const q of queries) {
    const [r] = await query(v7WindowSql(q));
    before.push({ amount: big(r!.head_amount) - big(r!.before_amount), count: Number(big(r!.head_count) - big(r!.before_count)) });
  }
  assert.deepEqual(before, queries.map((q) => model.total(q)), 'the 007 layout and the reference agree before the upgrade');

  await store.migrate();
  const after = await store.transaction((tx) => tx.windowTotals(queries));
  assert.deepEqual(after, before, 'every window total is the same after the upgrade');
  const [{ n }] = (await query('SELECT count(*) AS n FROM ledger')) as [{ n: unknown }];
  assert.equal(Number(n), rows.length, 'every 007 row is one entry');

  await chargeOn(store, model, 14, { mixedAssets: true });
}

/** Charging on: each append reads the migrated head (running totals continue, skewed times are clamped). */
async function chargeOn(store: Store, model: LedgerModel, seed: number, options: { mixedAssets?: boolean }): Promise<void> {
  model.clampTo = 'series';
  const lastAt = Math.max(...model.series().map((s) => s.rows.at(-1)!.at));
  for (const c of generateCharges(seed, 60, lastAt - 30_000, options)) {
    await store.transaction((tx) => tx.appendLedger(c.writes, c.at, c.auditSeq));
    model.append(c.writes, c.at, c.auditSeq);
  }
  const later = model.boundaryQueries(15);
  const totals = await store.transaction((tx) => tx.windowTotals(later));
  const mismatches = later.map((q, i) => ({ q, got: totals[i], want: model.total(q) })).filter((x) => x.got!.amount !== x.want.amount || x.got!.count !== x.want.count);
  assert.deepEqual(mismatches.slice(0, 3), [], `${mismatches.length} of ${later.length} windows differ after charging the upgraded ledger`);
}
