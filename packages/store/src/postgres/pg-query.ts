import type { Row } from '../shared/rows.ts';
import { mapPgError } from './pg-errors.ts';

/** Anything that can run a parameterised query: a Pool or a checked-out client. */
export interface PgQueryable {
  query(config: { text: string; values: unknown[]; name?: string }): Promise<{ rows: unknown[]; rowCount: number | null }>;
  query(sql: string, params?: unknown[]): Promise<{ rows: unknown[]; rowCount: number | null }>;
}

/** A query function with errors already mapped to AirlockError. */
export type Q = (sql: string, params?: unknown[]) => Promise<Row[]>;

/** Distinct statements one store names; past this (dynamic SQL run with many shapes) they run unnamed. */
const MAX_NAMED_STATEMENTS = 512;

/**
 * Names for a store's parameterised statements. node-postgres prepares a named statement once per
 * connection (Parse) and afterwards only binds and executes it, so PostgreSQL plans it once per connection
 * (and after five runs may keep a generic plan) instead of on every run. Measured on the signing path, the
 * window read and the ledger append each spent 0.5 to 0.9 ms planning against 0.3 to 0.6 ms executing.
 *
 * Off (`prepared_statements=off` in the store URL) for a connection pooler that hands one client's
 * statements to different server connections (PgBouncer in transaction mode before 1.21, or without
 * max_prepared_statements): a named statement would then not exist where it is executed.
 */
/**
 * Put in a statement's text to keep it unnamed: planned on every run for the parameters it has. For statements
 * whose generic plan is far worse than their custom ones (ledger.ts, APPEND_LEDGER_ENTRIES: PostgreSQL's
 * generic plan cannot know how many rows an `unnest` of a parameter gives, and it slowed as the ledger grew).
 */
export const PLAN_EACH_RUN = '/* planned on each run */';

export class StatementNames {
  private readonly names = new Map<string, string>();
  private next = 0; // names are never reused: a connection may still hold a forgotten one

  private readonly enabled: boolean;

  constructor(enabled: boolean) {
    this.enabled = enabled;
  }

  nameFor(sql: string): string | undefined {
    if (!this.enabled || sql.startsWith(PLAN_EACH_RUN)) return undefined;
    let name = this.names.get(sql);
    if (name === undefined) {
      if (this.names.size >= MAX_NAMED_STATEMENTS) return undefined;
      name = `airlock_${this.next++}`;
      this.names.set(sql, name);
    }
    return name;
  }

  /**
   * Every statement is prepared afresh from now on: after a migration (this instance's own), a statement a
   * pooled connection prepared earlier may return columns the table no longer has in that shape.
   */
  reset(): void {
    this.names.clear();
  }

  /**
   * PostgreSQL refuses to run a prepared statement whose result type a schema change altered (SQLSTATE
   * 0A000, "cached plan must not change result type": another instance migrated the schema). The statement
   * that failed is prepared under a new name on its next run; this run's error stands.
   */
  forget(sql: string): void {
    this.names.delete(sql);
  }
}

export function queryFn(target: PgQueryable, statements?: StatementNames): Q {
  return async (sql, params = []) => {
    const name = params.length > 0 ? statements?.nameFor(sql) : undefined;
    try {
      const result = name === undefined ? await target.query(sql, params) : await target.query({ name, text: sql, values: params });
      return result.rows as Row[];
    } catch (e) {
      if (name !== undefined && (e as { code?: unknown } | null)?.code === '0A000') statements?.forget(sql);
      throw mapPgError(e);
    }
  };
}

/** Fixed advisory lock keys ("AIRLSIGN" and "AIRLMIGR" as big-endian int8): one per database. */
export const SIGNING_LOCK_KEY = '4704381773533497166';
export const MIGRATION_LOCK_KEY = '4704381773432833874';
