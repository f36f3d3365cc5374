// `@airlock/store/audit-leaf-reader`: what an `audit verify` worker loads to read the log (see
// core/src/ports/audit-leaf-reader.ts). Kept apart from the store's main entry so a worker thread starts
// without loading every store module and the whole of core (about half a second of CPU per worker), and
// it loads only the reader of the store it reads (pg is not loaded for a SQLite file).
import type { AuditLeafReader } from '@airlock/core/audit-leaf-reader';
import { storeTarget } from './store-url.ts';

/** The raw audit reader of the store at `url` (its own connection, read only). */
export async function openAuditLeafReader(url: string): Promise<AuditLeafReader> {
  const target = storeTarget(url);
  if ('sqlite' in target) return (await import('./sqlite/audit-raw.ts')).openSqliteAuditLeafReader(target.sqlite);
  return (await import('./postgres/audit-raw.ts')).openPostgresAuditLeafReader(target.postgres);
}
