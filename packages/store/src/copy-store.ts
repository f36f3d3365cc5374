// `airlock store migrate`: copies every row of a SQLite store into an empty PostgreSQL store.
import { existsSync } from 'node:fs';
import { DatabaseSync, type SQLOutputValue } from 'node:sqlite';
import pg from 'pg';
import { AirlockError } from '@airlock/core/errors';
import { openPostgresStore, type PostgresStoreOptions } from './postgres/postgres-store.ts';
import { openSqliteStore } from './sqlite/sqlite-store.ts';
import { mapPgError } from './postgres/pg-errors.ts';

export interface StoreCopyReport {
  /** Rows copied per table, in copy order. */
  tables: { table: string; rows: number }[];
}

/** Each store's bookkeeping of its own schema: never copied, the target has its own. */
const SCHEMA_BOOKKEEPING = new Set(['schema_migrations']);
/** PostgreSQL-only state derived from the copied rows (audit sequencing, 008_audit_sequencing): set after the copy. */
const DERIVED_TARGET_TABLES = new Set(['audit_leaf_counter']);
/** SQLite-only columns: the ledger's rowid alias orders appends; PostgreSQL keys the ledger by (series, at, seq). */
const SOURCE_ONLY_COLUMNS = new Set(['ledger.id']);
/** Tables whose migration inserts their one row: the copy updates it instead. */
const SINGLE_ROW_TABLES: Record<string, { key: string }> = { account_counter: { key: 'id' } };

/**
 * Copies a SQLite store (a file) into an empty PostgreSQL store, all in one PostgreSQL transaction.
 *
 * Generic over the tables on purpose: every table of the SQLite schema must exist in the PostgreSQL
 * schema with the same columns (both dialects migrate to twin schemas), so a table added to one dialect
 * only makes the copy refuse instead of silently leaving data behind. Values keep their text: audit
 * entries' `data` and `leaf` land in `json`/`text` columns byte for byte, so hashes, the Merkle tree and
 * signed tree heads verify at the target exactly as at the source. Amounts travel as decimal strings.
 *
 * Refuses a target that holds any row (it would merge two histories). On any failure the transaction
 * rolls back: the target keeps its (migrated) empty schema, which `init`, `start` or another copy accept.
 * The source is only read, inside one read transaction (a consistent snapshot); stop the daemon first,
 * or what it writes after the snapshot is not copied.
 */
export async function copySqliteToPostgres(sqlitePath: string, target: PostgresStoreOptions): Promise<StoreCopyReport> {
  if (!existsSync(sqlitePath)) throw new AirlockError('not_found', 'No SQLite store at the --from path.');
  // Bring both to the newest schema, so the copy is column for column.
  const source = await openSqliteStore(sqlitePath);
  try {
    await source.migrate();
  } finally {
    await source.close();
  }
  const targetStore = await openPostgresStore(target);
  try {
    await targetStore.migrate();
  } finally {
    await targetStore.close();
  }

  const db = new DatabaseSync(sqlitePath);
  const client = new pg.Client({ connectionString: target.connectionString, ...(target.schema === undefined ? {} : { options: `-c search_path=${target.schema}` }) });
  client.on('error', () => undefined);
  try {
    await client.connect();
    db.exec('BEGIN');
    const plan = await copyPlan(db, client);
    await refuseNonEmpty(client, plan);
    await client.query('BEGIN');
    try {
      const tables: StoreCopyReport['tables'] = [];
      for (const table of plan) tables.push({ table: table.name, rows: await copyTableNamed(db, client, table) });
      // What 008_audit_sequencing derives from the stored entries, derived again from the copied ones.
      await client.query(`SELECT setval('audit_entry_seq', COALESCE((SELECT max(seq) FROM audit_entries), 0) + 1, false)`);
      await client.query('UPDATE audit_leaf_counter SET next_leaf = (SELECT COALESCE(max(leaf_index) + 1, 0) FROM audit_entries)');
      for (const { table, rows } of tables) {
        const { rows: [counted] } = await client.query(`SELECT count(*)::text AS n FROM ${quote(table)}`);
        if (Number(counted.n) !== rows) throw new AirlockError('internal', `store copy: ${table} has ${counted.n} rows at the target, ${rows} at the source`);
      }
      await client.query('COMMIT');
      return { tables };
    } catch (e) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw e;
    }
  } catch (e) {
    throw e instanceof AirlockError ? e : mapPgError(e);
  } finally {
    if (db.isTransaction) db.exec('ROLLBACK');
    db.close();
    await client.end().catch(() => undefined);
  }
}

/**
 * copyTable, its failure naming the table: a value PostgreSQL cannot hold (a NUL character, kept by SQLite from
 * before requests were refused one) otherwise failed the whole copy with no hint of where it is.
 */
async function copyTableNamed(db: DatabaseSync, client: pg.Client, table: TablePlan): Promise<number> {
  try {
    return await copyTable(db, client, table);
  } catch (e) {
    const mapped = e instanceof AirlockError ? e : mapPgError(e);
    if (mapped.code !== 'invalid_request') throw mapped;
    throw new AirlockError('invalid_request', `store copy: a row of the table ${table.name} holds a value PostgreSQL cannot hold (a NUL character or invalid UTF-8); nothing was copied. Find it in the SQLite file (for a NUL: instr(<column>, char(0)) > 0 on its text columns), correct it with the daemon stopped, and copy again.`, { cause: e });
  }
}

interface TablePlan {
  name: string;
  /** Columns copied, with the target's data type of each. */
  columns: { name: string; type: string }[];
}

/** The tables to copy, parents before the tables whose foreign keys point at them; refuses schemas that differ. */
async function copyPlan(db: DatabaseSync, client: pg.Client): Promise<TablePlan[]> {
  const sourceTables = (db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name`).all() as { name: string }[])
    .map((r) => r.name)
    .filter((n) => !SCHEMA_BOOKKEEPING.has(n));
  const { rows } = await client.query<{ table_name: string; column_name: string; data_type: string }>(
    'SELECT table_name, column_name, data_type FROM information_schema.columns WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position',
  );
  const targetColumns = new Map<string, Map<string, string>>();
  for (const r of rows) (targetColumns.get(r.table_name) ?? targetColumns.set(r.table_name, new Map()).get(r.table_name)!).set(r.column_name, r.data_type);

  const mismatch = (what: string) => new AirlockError('internal', `store copy: the SQLite and PostgreSQL schemas differ (${what}); nothing was copied.`);
  for (const t of targetColumns.keys()) {
    if (!sourceTables.includes(t) && !SCHEMA_BOOKKEEPING.has(t) && !DERIVED_TARGET_TABLES.has(t)) throw mismatch(`table ${t} only in PostgreSQL`);
  }
  const plans: TablePlan[] = [];
  const parents = new Map<string, string[]>();
  for (const name of sourceTables) {
    const target = targetColumns.get(name);
    if (!target) throw mismatch(`table ${name} only in SQLite`);
    const sourceColumns = (db.prepare(`PRAGMA table_info(${quote(name)})`).all() as { name: string }[]).map((c) => c.name);
    const columns: TablePlan['columns'] = [];
    for (const c of sourceColumns) {
      const type = target.get(c);
      if (type !== undefined) columns.push({ name: c, type });
      else if (!SOURCE_ONLY_COLUMNS.has(`${name}.${c}`)) throw mismatch(`column ${name}.${c} only in SQLite`);
    }
    for (const c of target.keys()) if (!sourceColumns.includes(c)) throw mismatch(`column ${name}.${c} only in PostgreSQL`);
    plans.push({ name, columns });
    parents.set(name, (db.prepare(`PRAGMA foreign_key_list(${quote(name)})`).all() as { table: string }[]).map((f) => f.table).filter((p) => p !== name));
  }
  // Topological order by foreign key (the schema has no cycles).
  const ordered: TablePlan[] = [];
  const placed = new Set<string>();
  const place = (plan: TablePlan) => {
    if (placed.has(plan.name)) return;
    placed.add(plan.name);
    for (const p of parents.get(plan.name) ?? []) place(plans.find((x) => x.name === p)!);
    ordered.push(plan);
  };
  for (const plan of plans) place(plan);
  return ordered;
}

/** A target with any row (beyond what its own migrations insert) already has a history: never merge two. */
async function refuseNonEmpty(client: pg.Client, plan: TablePlan[]): Promise<void> {
  const occupied: string[] = [];
  for (const { name } of plan) {
    const single = SINGLE_ROW_TABLES[name];
    const sql = single ? `SELECT count(*)::text AS n FROM ${quote(name)} WHERE next_index <> 0` : `SELECT count(*)::text AS n FROM ${quote(name)}`;
    const { rows: [row] } = await client.query(sql);
    if (Number(row.n) > 0) occupied.push(name);
  }
  if (occupied.length) {
    throw new AirlockError('conflict', `The target store is not empty (rows in ${occupied.join(', ')}); nothing was copied.`, {
      hints: ['Copy into a new database or a new schema (postgres://…/db?schema=NAME).'],
    });
  }
}

const BATCH_PARAMS = 30_000;

async function copyTable(db: DatabaseSync, client: pg.Client, table: TablePlan): Promise<number> {
  const names = table.columns.map((c) => quote(c.name));
  // No ORDER BY: row order means nothing to either schema (some tables are WITHOUT ROWID).
  const select = db.prepare(`SELECT ${names.join(', ')} FROM ${quote(table.name)}`);
  // INTEGER columns as bigint: a seq, an index or a time never passes through a float.
  select.setReadBigInts(true);
  const single = SINGLE_ROW_TABLES[table.name];
  const others = table.columns.filter((c) => c.name !== single?.key);
  let copied = 0;
  if (single) {
    const sets = others.map((c, i) => `${quote(c.name)} = $${i + 2}`);
    for (const row of select.iterate() as Iterable<Record<string, SQLOutputValue>>) {
      await client.query(`UPDATE ${quote(table.name)} SET ${sets.join(', ')} WHERE ${quote(single.key)} = $1`, [toPg(row[single.key], 'bigint'), ...others.map((c) => toPg(row[c.name], c.type))]);
      copied++;
    }
    return copied;
  }
  const perBatch = Math.max(1, Math.floor(BATCH_PARAMS / table.columns.length));
  let batch: Record<string, SQLOutputValue>[] = [];
  const flush = async () => {
    if (!batch.length) return;
    const values: unknown[] = [];
    const tuples = batch.map((row) => `(${table.columns.map((c) => `$${values.push(toPg(row[c.name], c.type))}`).join(', ')})`);
    await client.query(`INSERT INTO ${quote(table.name)} (${names.join(', ')}) VALUES ${tuples.join(', ')}`, values);
    copied += batch.length;
    batch = [];
  };
  for (const row of select.iterate() as Iterable<Record<string, SQLOutputValue>>) {
    batch.push(row);
    if (batch.length >= perBatch) await flush();
  }
  await flush();
  return copied;
}

/** A SQLite value as a pg parameter for a column of `type`: text stays text (json keeps its bytes), numbers go as decimal strings. */
function toPg(value: SQLOutputValue | undefined, type: string): unknown {
  if (value === null || value === undefined) return null;
  if (value instanceof Uint8Array) return Buffer.from(value);
  if (type === 'bytea') throw new AirlockError('internal', 'store copy: a bytea column holds text at the source');
  return typeof value === 'string' ? value : String(value);
}

function quote(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}
