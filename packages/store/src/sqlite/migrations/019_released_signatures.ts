/**
 * SQLite schema, version 19: released signatures (core/ports/released-signatures.ts). What a non-deterministic key
 * backend (a PKCS#11 token) released for a charged decision, so that every replay returns the same bytes. One row
 * per charged audit entry, first writer wins; nothing is written with a deterministic backend.
 */
export const statements: string[] = [
  `CREATE TABLE released_signatures (
     audit_seq   INTEGER PRIMARY KEY,
     digest      TEXT NOT NULL,
     signatures  TEXT NOT NULL,
     created_at  INTEGER NOT NULL
   ) STRICT`,
];
