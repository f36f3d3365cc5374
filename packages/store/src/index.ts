import type { Store } from '@airlock/core';
import { openPostgresStore } from './postgres/postgres-store.ts';
import { openSqliteStore, type SqliteStoreOptions } from './sqlite/sqlite-store.ts';
import { storeTarget } from './store-url.ts';

export { openSqliteStore, SqliteStore, type SqliteStoreOptions } from './sqlite/sqlite-store.ts';
export { openPostgresStore, PostgresStore, type PostgresStoreOptions } from './postgres/postgres-store.ts';
export { openAuditLeafReader } from './audit-leaf-reader.ts';

/**
 * Opens a store from a URL: `sqlite:<path>` (`sqlite::memory:` for a throwaway one) or
 * `postgres://…` / `postgresql://…` with an optional `?schema=<name>`. Does not migrate: call
 * `migrate()` once the store is open. `options.sqlite` applies to a SQLite store only.
 */
export async function openStore(url: string, options: { sqlite?: SqliteStoreOptions } = {}): Promise<Store> {
  const target = storeTarget(url);
  return 'sqlite' in target ? openSqliteStore(target.sqlite, options.sqlite) : openPostgresStore(target.postgres);
}
export { copySqliteToPostgres, type StoreCopyReport } from './copy-store.ts';
export { storeTarget } from './store-url.ts';
