// The raw reader `audit verify` workers use on PostgreSQL (`AuditLeafReader`): its own connection, each
// page one `COPY (SELECT …) TO STDOUT (FORMAT binary)` parsed in place into row arrays (integers as
// numbers, text as strings: no DataRow objects, no type parsers), in leaf order (`leaf_index`, never
// `seq`: a writer may leave gaps in seq).
import pg from 'pg';
import { AUDIT_LEAF_COLUMNS, type AuditLeafReader, type AuditLeafRow } from '@airlock/core/audit-leaf-reader';
import { AirlockError } from '@airlock/core/errors';
import { mapPgError } from './pg-errors.ts';
import type { PostgresStoreOptions } from './postgres-store.ts';

// Rows per COPY. The next page is asked for before this one is checked, so PostgreSQL produces it meanwhile.
const PAGE = 4096;
// As openPostgresStore checks it: the name goes into the connection's startup options.
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

// Each column cast to the type whose binary form the parser reads (PostgreSQL's `int8send`, `int2send`,
// `textsend`), whatever a migration made of it.
const INTEGER_COLUMNS: Record<string, 'int8' | 'int2'> = { seq: 'int8', leaf_index: 'int8', hash_version: 'int2', at: 'int8' };
const KINDS: ('int8' | 'int2' | 'text')[] = AUDIT_LEAF_COLUMNS.map((c) => INTEGER_COLUMNS[c] ?? 'text');
const SELECT_LIST = AUDIT_LEAF_COLUMNS.map((c, i) => `${c}::${KINDS[i]}`).join(', ');

function copyStatement(from: number, to: number): string {
  // COPY takes no parameters: the bounds are integers checked here.
  if (!Number.isSafeInteger(from) || !Number.isSafeInteger(to)) throw new RangeError('leaf indexes must be integers');
  return `COPY (SELECT ${SELECT_LIST} FROM audit_entries WHERE leaf_index >= ${from} AND leaf_index < ${to} ORDER BY leaf_index) TO STDOUT (FORMAT binary)`;
}

const malformed = () => new AirlockError('internal', 'PostgreSQL sent malformed COPY data for the audit log');

/**
 * COPY's binary format (PostgreSQL documentation, "COPY", Binary Format): a header (11-byte signature,
 * flags, header extension), then per row a 16-bit field count and each field as a 32-bit length (-1 for
 * NULL) and its bytes, then a count of -1. PostgreSQL sends each row as one CopyData message, the header
 * with the first; a row split across messages is refused rather than guessed at.
 */
class CopyBinaryRows {
  static readonly SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');
  readonly rows: AuditLeafRow[] = [];
  private started = false;

  push(chunk: Buffer): void {
    let at = 0;
    if (!this.started) {
      if (chunk.length < 19 || !chunk.subarray(0, 11).equals(CopyBinaryRows.SIGNATURE)) throw malformed();
      at = 19 + chunk.readUInt32BE(15);
      this.started = true;
    }
    while (at < chunk.length) {
      const fields = chunk.readInt16BE(at);
      at += 2;
      if (fields === -1) return;
      if (fields !== KINDS.length) throw malformed();
      const row: (string | number | null)[] = new Array(KINDS.length);
      for (let i = 0; i < KINDS.length; i++) {
        const length = chunk.readInt32BE(at);
        at += 4;
        if (length === -1) {
          row[i] = null;
          continue;
        }
        const end = at + length;
        if (end > chunk.length) throw malformed();
        const kind = KINDS[i];
        if (kind === 'text') row[i] = chunk.toString('utf8', at, end);
        else if (kind === 'int8' && length === 8) row[i] = int8(chunk, at);
        else if (kind === 'int2' && length === 2) row[i] = chunk.readInt16BE(at);
        else throw malformed();
        at = end;
      }
      // The columns of AUDIT_LEAF_COLUMNS, each of the kind its cast gives it.
      this.rows.push(row as AuditLeafRow);
    }
  }
}

/** A big-endian int8 as a number, or as decimal text beyond 2^53 (which the verifier refuses). */
function int8(b: Buffer, at: number): number | string {
  const n = b.readInt32BE(at) * 2 ** 32 + b.readUInt32BE(at + 4);
  return Number.isSafeInteger(n) ? n : b.readBigInt64BE(at).toString();
}

/** Runs one COPY … TO STDOUT on `client` (pg's extension point for custom queries), handing it each CopyData message. */
function copyOut(client: pg.Client, sql: string, onData: (chunk: Buffer) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    let failure: unknown;
    const submittable = {
      submit: (connection: { query(text: string): void }) => connection.query(sql),
      handleCopyData: (message: { chunk: Buffer }) => {
        if (failure !== undefined) return;
        try {
          onData(message.chunk);
        } catch (e) {
          failure = e;
        }
      },
      handleCommandComplete: () => undefined,
      handleReadyForQuery: () => (failure === undefined ? resolve() : reject(failure)),
      // An error ends the query here: pg does not call handleReadyForQuery for it.
      handleError: (e: unknown) => reject(mapPgError(e)),
      handleRowDescription: () => undefined,
      handleDataRow: () => undefined,
      handleEmptyQuery: () => undefined,
      handlePortalSuspended: () => undefined,
      handleCopyInResponse: () => undefined,
    };
    client.query(submittable as unknown as pg.QueryConfig);
  });
}

export async function openPostgresAuditLeafReader(options: PostgresStoreOptions): Promise<AuditLeafReader> {
  if (options.schema !== undefined && !SCHEMA_NAME.test(options.schema)) throw new AirlockError('invalid_request', 'schema must be a lowercase identifier (a-z, 0-9, _)');
  const client = new pg.Client({
    connectionString: options.connectionString,
    application_name: options.schema === undefined ? 'airlock:verify' : `airlock:${options.schema}:verify`,
    ...(options.schema === undefined ? {} : { options: `-c search_path=${options.schema}` }),
  });
  // A lost connection fails the COPY in flight; it must not crash the worker as an 'error' event.
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (e) {
    throw mapPgError(e);
  }
  const page = (from: number, to: number): Promise<AuditLeafRow[]> => {
    const parsed = new CopyBinaryRows();
    const rows = copyOut(client, copyStatement(from, to), (chunk) => parsed.push(chunk)).then(() => parsed.rows);
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
        // Stopped early (a problem found): let the COPY already sent finish before the next one.
        await next?.catch(() => undefined);
      }
    },
    close: () => client.end(),
  };
}
