import pg from 'pg';
import { AirlockError } from '@airlock/core/errors';

// Socket-level failures from Node, and SQLSTATE classes that mean "the server cannot serve us now".
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH']);
// 55000 is what a connection attempt gets while the database refuses connections (ALLOW_CONNECTIONS false).
const UNAVAILABLE_SQLSTATES = new Set(['57P01', '57P02', '57P03', '53300', '53100', '53200', '3D000', '28P01', '28000', '55000']);
// "Query read timeout": node-postgres's client-side query_timeout; in pipeline mode it also ends the connection.
const PG_MESSAGES = /Connection terminated|connection timeout|timeout exceeded when trying to connect|not queryable|Cannot use a pool after calling end|Client was closed|Query read timeout/i;

/** Turns a `pg` error into an AirlockError with a stable code; AirlockErrors pass through. Never echoes the URL. */
export function mapPgError(e: unknown): AirlockError {
  if (e instanceof AirlockError) return e;
  const code = (e as { code?: unknown } | null)?.code;
  if (code === '23505') return new AirlockError('conflict', 'a record with this key already exists', { cause: e });
  if (code === '40001' || code === '40P01') return new AirlockError('conflict', 'the store reported a concurrent update; retry', { cause: e });
  // Text PostgreSQL cannot hold (a NUL byte, invalid UTF-8) can only have come from the request: bad input, not
  // an internal error (SQLite stores it, so there the lookup simply finds nothing).
  if (code === '22021' || code === '22P05') return new AirlockError('invalid_request', 'a value holds a character the store cannot hold (a NUL byte or invalid UTF-8)', { cause: e });
  // program_limit_exceeded: a value larger than PostgreSQL can hold or index (a key over 2,704 bytes). The same
  // request fails the same way every time: not store_unavailable, which tells the caller to retry.
  if (code === '54000') return new AirlockError('invalid_request', 'a value is larger than the store can hold or index', { cause: e });
  const unavailable =
    (typeof code === 'string' && (NETWORK_CODES.has(code) || UNAVAILABLE_SQLSTATES.has(code) || code.startsWith('08'))) ||
    (e instanceof Error && PG_MESSAGES.test(e.message));
  if (unavailable) return new AirlockError('store_unavailable', 'the PostgreSQL store is unavailable', { cause: e });
  return new AirlockError('internal', 'unexpected PostgreSQL error', { cause: e });
}

export function isConnectionError(e: unknown): boolean {
  return mapPgError(e).code === 'store_unavailable';
}

/**
 * True for an answer PostgreSQL itself gave (an ErrorResponse, which node-postgres raises as a DatabaseError):
 * the statement was refused and the server said so. Anything else (a socket error, a client-side timeout, a
 * connection torn down) leaves open whether the server carried the statement out.
 */
export function isServerAnswer(e: unknown): boolean {
  return e instanceof pg.DatabaseError;
}
