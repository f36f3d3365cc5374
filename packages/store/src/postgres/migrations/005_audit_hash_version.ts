/**
 * PostgreSQL schema, version 5: the audit hash version of each entry (see
 * sqlite/migrations/005_audit_hash_version.ts). Existing rows are version 1, the default.
 */
export const statements: string[] = [
  `ALTER TABLE audit_entries ADD COLUMN hash_version smallint NOT NULL DEFAULT 1 CHECK (hash_version IN (1, 2))`,
];
