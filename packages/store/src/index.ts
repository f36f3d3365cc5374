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
/** `readOnly`: a connection that cannot write (the key process's view of decisions and the log). */
export async function openStore(url: string, options: { sqlite?: SqliteStoreOptions; readOnly?: boolean } = {}): Promise<Store> {
  const target = storeTarget(url);
  const readOnly = options.readOnly ? { readOnly: true } : {};
  return 'sqlite' in target ? openSqliteStore(target.sqlite, { ...options.sqlite, ...readOnly }) : openPostgresStore({ ...target.postgres, ...readOnly });
}
export { copySqliteToPostgres, type StoreCopyReport } from './copy-store.ts';
export { storeTarget } from './store-url.ts';
