import { AirlockError, type AuditLeafReader, type Store } from '@airlock/core';
import { openPostgresAuditLeafReader } from './postgres/audit-raw.ts';
import { openPostgresStore, type PostgresStoreOptions } from './postgres/postgres-store.ts';
import { openSqliteAuditLeafReader } from './sqlite/audit-raw.ts';
import { openSqliteStore } from './sqlite/sqlite-store.ts';

export { openSqliteStore, SqliteStore } from './sqlite/sqlite-store.ts';
export { openPostgresStore, PostgresStore, type PostgresStoreOptions } from './postgres/postgres-store.ts';

/** Where a store URL points: a SQLite file, or a PostgreSQL database and schema. */
function storeTarget(url: string): { sqlite: string } | { postgres: PostgresStoreOptions } {
  if (url.startsWith('sqlite:')) {
    const path = url.slice('sqlite:'.length).replace(/^\/\/(?=\/)/, '');
    if (!path) throw new AirlockError('invalid_request', 'a sqlite store URL needs a path: sqlite:<path>');
    return { sqlite: path };
  }
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      // Never echo the URL: it may carry a password.
      throw new AirlockError('invalid_request', 'the PostgreSQL store URL is malformed');
    }
    const schema = parsed.searchParams.get('schema') ?? undefined;
    parsed.searchParams.delete('schema');
    return { postgres: schema === undefined ? { connectionString: parsed.toString() } : { connectionString: parsed.toString(), schema } };
  }
  throw new AirlockError('invalid_request', 'unknown store URL: use sqlite:<path> or postgres://…', {
    hints: ['sqlite:./airlock.db', 'postgres://user@host:5432/db?schema=airlock'],
  });
}

/**
 * Opens a store from a URL: `sqlite:<path>` (`sqlite::memory:` for a throwaway one) or
 * `postgres://…` / `postgresql://…` with an optional `?schema=<name>`. Does not migrate: call
 * `migrate()` once the store is open.
 */
export async function openStore(url: string): Promise<Store> {
  const target = storeTarget(url);
  return 'sqlite' in target ? openSqliteStore(target.sqlite) : openPostgresStore(target.postgres);
}

/** The raw audit reader of the store at `url` (its own connection, read only): what `audit verify` workers read. */
export async function openAuditLeafReader(url: string): Promise<AuditLeafReader> {
  const target = storeTarget(url);
  return 'sqlite' in target ? openSqliteAuditLeafReader(target.sqlite) : openPostgresAuditLeafReader(target.postgres);
}
