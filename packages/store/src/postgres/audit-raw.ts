// The raw reader `audit verify` workers use on PostgreSQL (`AuditLeafReader`): its own connection, each
// entry as the array pg makes with rowMode 'array' and no type parsing (INT8 and INT2 stay decimal text,
// JSON stays text), in leaf order (`leaf_index`, never `seq`: a writer may leave gaps in seq).
import pg from 'pg';
import { AUDIT_LEAF_COLUMNS, type AuditLeafReader, type AuditLeafRow } from '@airlock/core/audit-leaf-reader';
import { AirlockError } from '@airlock/core/errors';
import { mapPgError } from './pg-errors.ts';
import type { PostgresStoreOptions } from './postgres-store.ts';

// Rows per query. The next page is asked for before this one is checked, so PostgreSQL produces it meanwhile.
const PAGE = 4096;
const SELECT = `SELECT ${AUDIT_LEAF_COLUMNS.join(', ')} FROM audit_entries WHERE leaf_index >= $1 AND leaf_index < $2 ORDER BY leaf_index`;
// As openPostgresStore checks it: the name goes into the connection's startup options.
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;
const asText = (value: string) => value;

export async function openPostgresAuditLeafReader(options: PostgresStoreOptions): Promise<AuditLeafReader> {
  if (options.schema !== undefined && !SCHEMA_NAME.test(options.schema)) throw new AirlockError('invalid_request', 'schema must be a lowercase identifier (a-z, 0-9, _)');
  const client = new pg.Client({
    connectionString: options.connectionString,
    application_name: options.schema === undefined ? 'airlock:verify' : `airlock:${options.schema}:verify`,
    types: { getTypeParser: (() => asText) as pg.CustomTypesConfig['getTypeParser'] },
    ...(options.schema === undefined ? {} : { options: `-c search_path=${options.schema}` }),
  });
  // A lost connection fails the query in flight; it must not crash the worker as an 'error' event.
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (e) {
    throw mapPgError(e);
  }
  const page = (from: number, to: number): Promise<AuditLeafRow[]> => {
    const rows = client.query({ name: 'airlock_audit_leaf_rows', text: SELECT, values: [from, to], rowMode: 'array' }).then(
      (r) => r.rows as AuditLeafRow[],
      (e: unknown) => Promise.reject(mapPgError(e)),
    );
    rows.catch(() => undefined); // awaited later (or drained): not an unhandled rejection meanwhile
    return rows;
  };
  return {
    async *pages(from, to) {
      let next = from < to ? page(from, Math.min(from + PAGE, to)) : undefined;
      try {
        for (let at = from + PAGE; next; at += PAGE) {
          const current = next;
          next = at < to ? page(at, Math.min(at + PAGE, to)) : undefined;
          yield await current;
        }
      } finally {
        // Stopped early (a problem found): let the query already sent finish before the next one.
        await next?.catch(() => undefined);
      }
    },
    close: () => client.end(),
  };
}
