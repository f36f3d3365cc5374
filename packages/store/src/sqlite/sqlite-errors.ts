import { AirlockError } from '@airlock/core/errors';

// Primary result codes (the low byte of an extended code) that mean "the database cannot be used
// right now", as opposed to a bug or a constraint: fail closed with store_unavailable.
const UNAVAILABLE = new Set([
  5, // SQLITE_BUSY
  6, // SQLITE_LOCKED
  7, // SQLITE_NOMEM
  8, // SQLITE_READONLY
  10, // SQLITE_IOERR
  11, // SQLITE_CORRUPT
  13, // SQLITE_FULL
  14, // SQLITE_CANTOPEN
  26, // SQLITE_NOTADB
]);
const SQLITE_CONSTRAINT_PRIMARYKEY = 1555;
const SQLITE_CONSTRAINT_UNIQUE = 2067;

function sqliteErrcode(e: unknown): number | undefined {
  const code = (e as { errcode?: unknown } | null)?.errcode;
  return typeof code === 'number' ? code : undefined;
}

/**
 * A write that failed for want of disk (SQLITE_FULL) or on an I/O error (SQLITE_IOERR, which covers the
 * shared-memory index failing to grow): the errors after which SqliteDb reclaims its WAL before writing again.
 * Looks through an AirlockError to its cause.
 */
export function isDiskTrouble(e: unknown): boolean {
  const code = sqliteErrcode(e) ?? sqliteErrcode((e as { cause?: unknown } | null)?.cause);
  return code !== undefined && ((code & 0xff) === 13 || (code & 0xff) === 10);
}

export function isSqliteBusy(e: unknown): boolean {
  return sqliteErrcode(e) === 5;
}

/** Turns a `node:sqlite` error into an AirlockError with a stable code; AirlockErrors pass through. */
export function mapSqliteError(e: unknown): AirlockError {
  if (e instanceof AirlockError) return e;
  const errcode = sqliteErrcode(e);
  if (errcode === SQLITE_CONSTRAINT_UNIQUE || errcode === SQLITE_CONSTRAINT_PRIMARYKEY) {
    return new AirlockError('conflict', 'a record with this key already exists', { cause: e });
  }
  if ((errcode !== undefined && UNAVAILABLE.has(errcode & 0xff)) || (e as { code?: unknown } | null)?.code === 'ERR_INVALID_STATE') {
    return new AirlockError('store_unavailable', 'the SQLite store is unavailable', { cause: e });
  }
  return new AirlockError('internal', 'unexpected SQLite error', { cause: e });
}
