import { AirlockError, type Store } from '@airlock/core';
import { openPostgresStore } from './postgres/postgres-store.ts';
import { openSqliteStore, type SqliteStoreOptions } from './sqlite/sqlite-store.ts';

export { openSqliteStore, SqliteStore, type SqliteStoreOptions } from './sqlite/sqlite-store.ts';
export { openPostgresStore, PostgresStore, type PostgresStoreOptions } from './postgres/postgres-store.ts';

/**
 * Opens a store from a URL: `sqlite:<path>` (`sqlite::memory:` for a throwaway one) or
 * `postgres://…` / `postgresql://…` with an optional `?schema=<name>`. Does not migrate: call
 * `migrate()` once the store is open. `options.sqlite` applies to a SQLite store only.
 */
export async function openStore(url: string, options: { sqlite?: SqliteStoreOptions } = {}): Promise<Store> {
  if (url.startsWith('sqlite:')) {
    const path = url.slice('sqlite:'.length).replace(/^\/\/(?=\/)/, '');
    if (!path) throw new AirlockError('invalid_request', 'a sqlite store URL needs a path: sqlite:<path>');
    return openSqliteStore(path, options.sqlite);
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
    return openPostgresStore(schema === undefined ? { connectionString: parsed.toString() } : { connectionString: parsed.toString(), schema });
  }
  throw new AirlockError('invalid_request', 'unknown store URL: use sqlite:<path> or postgres://…', {
    hints: ['sqlite:./airlock.db', 'postgres://user@host:5432/db?schema=airlock'],
  });
}
