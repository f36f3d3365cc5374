/**
 * PostgreSQL schema, version 7: the audit log becomes a Merkle tree (see
 * sqlite/migrations/007_audit_merkle_tree.ts). Existing entries get leaf_index = seq - 1 (the append-only
 * trigger is disabled for that one update, inside the migration's transaction); `leaf` is text, not
 * json, so its bytes are kept exactly. `audit_checkpoints` stays and still verifies; it is not converted.
 */
export const statements: string[] = [
  `ALTER TABLE audit_entries DROP CONSTRAINT audit_entries_hash_version_check`,
  `ALTER TABLE audit_entries ADD CONSTRAINT audit_entries_hash_version_check CHECK (hash_version IN (1, 2, 3))`,
  `ALTER TABLE audit_entries ALTER COLUMN data DROP NOT NULL`,
  `ALTER TABLE audit_entries ALTER COLUMN prev_hash DROP NOT NULL`,
  `ALTER TABLE audit_entries ADD COLUMN leaf_index bigint UNIQUE`,
  `ALTER TABLE audit_entries ADD COLUMN leaf text`,
  `ALTER TABLE audit_entries DISABLE TRIGGER audit_entries_append_only`,
  `UPDATE audit_entries SET leaf_index = seq - 1`,
  `ALTER TABLE audit_entries ENABLE TRIGGER audit_entries_append_only`,
  `ALTER TABLE audit_entries ADD CONSTRAINT audit_entries_leaf_check
     CHECK ((hash_version = 3) = (leaf IS NOT NULL AND data IS NULL AND prev_hash IS NULL)
            AND (hash_version = 3 OR (data IS NOT NULL AND prev_hash IS NOT NULL)))`,

  `CREATE TABLE audit_tree_nodes (
     level smallint NOT NULL,
     idx   bigint NOT NULL,
     hash  bytea NOT NULL,
     PRIMARY KEY (level, idx)
   )`,
  // Never deleted; replaced only when an operator acknowledges a rewritten log (see the SQLite migration).
  `CREATE TRIGGER audit_tree_nodes_no_delete BEFORE DELETE ON audit_tree_nodes
   FOR EACH ROW EXECUTE FUNCTION airlock_forbid('audit tree nodes are never deleted')`,

  `CREATE TABLE audit_tree_heads (
     tree_size  bigint PRIMARY KEY,
     root_hash  text NOT NULL,
     at         bigint NOT NULL,
     public_key text NOT NULL,
     signature  text NOT NULL
   )`,
  `CREATE TRIGGER audit_tree_heads_append_only BEFORE UPDATE OR DELETE ON audit_tree_heads
   FOR EACH ROW EXECUTE FUNCTION airlock_forbid('audit tree heads are append-only')`,
];
