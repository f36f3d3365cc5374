/**
 * PostgreSQL schema, version 20: released signatures (core/ports/released-signatures.ts), the twin of SQLite's 019.
 * One row per charged audit entry, first writer wins (INSERT ... ON CONFLICT DO NOTHING, then read back).
 */
export const statements: string[] = [
  `CREATE TABLE released_signatures (
     audit_seq   bigint PRIMARY KEY,
     digest      text NOT NULL,
     signatures  text NOT NULL,
     created_at  bigint NOT NULL
   )`,
];
