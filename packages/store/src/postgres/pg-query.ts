import type { Row } from '../shared/rows.ts';
import { mapPgError } from './pg-errors.ts';

/** Anything that can run a parameterised query: a Pool or a checked-out client. */
export interface PgQueryable {
  query(sql: string, params?: unknown[]): Promise<{ rows: unknown[]; rowCount: number | null }>;
}

/** A query function with errors already mapped to AirlockError. */
export type Q = (sql: string, params?: unknown[]) => Promise<Row[]>;

export function queryFn(target: PgQueryable): Q {
  return async (sql, params = []) => {
    try {
      return (await target.query(sql, params)).rows as Row[];
    } catch (e) {
      throw mapPgError(e);
    }
  };
}

/** Fixed advisory lock keys ("AIRLSIGN" and "AIRLMIGR" as big-endian int8): one per database. */
export const SIGNING_LOCK_KEY = '4704381773533497166';
export const MIGRATION_LOCK_KEY = '4704381773432833874';
