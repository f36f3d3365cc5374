/**
 * Audit sequencing without a global lock (PostgreSQL only; SQLite has one writer and keeps seq = leaf + 1).
 * An entry's seq comes from a sequence when its request appends it; its leaf index from a counter row when
 * its batch commits (postgres/audit.ts). Both continue from the entries already stored.
 */
export const statements = [
  `CREATE SEQUENCE audit_entry_seq AS bigint MINVALUE 1`,
  `SELECT setval('audit_entry_seq', COALESCE((SELECT max(seq) FROM audit_entries), 0) + 1, false)`,
  `CREATE TABLE audit_leaf_counter (
     only_row  boolean PRIMARY KEY DEFAULT true CHECK (only_row),
     next_leaf bigint NOT NULL CHECK (next_leaf >= 0)
   )`,
  `INSERT INTO audit_leaf_counter (next_leaf) SELECT COALESCE(max(leaf_index) + 1, 0) FROM audit_entries`,
];
