/**
 * SQLite schema, version 5: the audit hash version of each entry (see `hashAuditEntry`). Rows written
 * before this migration were hashed with the pre-RFC 8785 canonical form, version 1, which is the
 * default; the store writes every new row with the current version explicitly.
 */
export const statements: string[] = [
  `ALTER TABLE audit_entries ADD COLUMN hash_version INTEGER NOT NULL DEFAULT 1 CHECK (hash_version IN (1, 2))`,
];
