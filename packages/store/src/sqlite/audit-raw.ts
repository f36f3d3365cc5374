// The raw reader `audit verify` workers use on SQLite (`AuditLeafReader`): its own read-only connection,
// each entry as the array node:sqlite makes (no row object, no mapping), in leaf order.
import { DatabaseSync } from 'node:sqlite';
import { AUDIT_LEAF_COLUMNS, type AuditLeafReader, type AuditLeafRow } from '@airlock/core/audit-leaf-reader';
import { BUSY_TIMEOUT_MS } from './sqlite-db.ts';
import { mapSqliteError } from './sqlite-errors.ts';

// Rows per query: a page is garbage once checked, and little is kept alive for the young-generation
// collector; 128 to 4,096 measured alike (the per-query cost does not show).
const PAGE = 2048;

export function openSqliteAuditLeafReader(path: string): AuditLeafReader {
  try {
    // Read-only: verifying never writes, and a missing database file is an error, not a new empty log.
    const db = new DatabaseSync(path, { readOnly: true });
    db.exec(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
    const select = db.prepare(`SELECT ${AUDIT_LEAF_COLUMNS.join(', ')} FROM audit_entries WHERE leaf_index >= ? AND leaf_index < ? ORDER BY leaf_index`);
    select.setReturnArrays(true);
    return {
      *pages(from, to) {
        for (let at = from; at < to; at += PAGE) {
          let rows: AuditLeafRow[];
          try {
            rows = select.all(at, Math.min(at + PAGE, to)) as unknown as AuditLeafRow[];
          } catch (e) {
            throw mapSqliteError(e);
          }
          yield rows;
        }
      },
      async close() {
        db.close();
      },
    };
  } catch (e) {
    throw mapSqliteError(e);
  }
}
