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
    const prepared = parsed.searchParams.get('prepared_statements') ?? undefined;
    parsed.searchParams.delete('prepared_statements');
    if (prepared !== undefined && prepared !== 'on' && prepared !== 'off') {
      throw new AirlockError('invalid_request', 'prepared_statements in the PostgreSQL store URL must be on or off');
    }
    return {
      postgres: {
        connectionString: parsed.toString(),
        ...(schema === undefined ? {} : { schema }),
        ...(prepared === undefined ? {} : { preparedStatements: prepared === 'on' }),
      },
    };
  }
  throw new AirlockError('invalid_request', 'unknown store URL: use sqlite:<path> or postgres://…', {
    hints: ['sqlite:./airlock.db', 'postgres://user@host:5432/db?schema=airlock'],
  });
}
