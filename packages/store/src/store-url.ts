import { AirlockError } from '@airlock/core/errors';
import type { PostgresStoreOptions } from './postgres/postgres-store.ts';

/**
 * Where a store URL points: `sqlite:<path>` (`sqlite::memory:` for a throwaway one), or `postgres://…` /
 * `postgresql://…` with an optional `?schema=<name>`.
 */
export function storeTarget(url: string): { sqlite: string } | { postgres: PostgresStoreOptions } {
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
