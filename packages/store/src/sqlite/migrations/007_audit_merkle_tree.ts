/**
 * SQLite schema, version 7: the audit log becomes a Merkle tree (RFC 9162; docs/audit-format.md).
 *
 * - `audit_entries.leaf_index`: the entry's position in the tree (0-based, contiguous). Existing entries
 *   get seq - 1 (the log was single-writer and gap-free). Nullable and unique, so a writer may assign it
 *   after the row exists (per batch), but the store today sets it in the same insert.
 * - `audit_entries.leaf`: a version-3 entry's exact canonical bytes (what is hashed); its `data` column
 *   is NULL (the leaf holds the data). Chained entries (versions 1, 2) keep `data`, `prev_hash` and no leaf.
 * - `hash_version` accepts 3. SQLite cannot change a column's CHECK, so the table is rebuilt (with its
 *   indexes and append-only triggers); the rows are copied unchanged.
 * - `audit_tree_nodes`: the hash of every complete subtree built so far (level 0 = leaf hashes), so a
 *   root or a proof is O(log n) reads. A cache the builder extends; checked by consistency proofs. Rows
 *   are never deleted; they are replaced only when an operator acknowledges a rewritten log.
 * - `audit_tree_heads`: signed tree heads. `audit_checkpoints` (signed chain heads) stays as it is and its
 *   rows still verify against the chain: they are not converted.
 */
export const statements: string[] = [
  `CREATE TABLE audit_entries_v7 (
     seq          INTEGER PRIMARY KEY,
     at           INTEGER NOT NULL,
     type         TEXT NOT NULL,
     actor        TEXT NOT NULL,
     agent_id     TEXT,
     session_id   TEXT,
     action       TEXT,
     decision     TEXT,
     prev_hash    TEXT,
     hash         TEXT NOT NULL,
     data         TEXT,
     hash_version INTEGER NOT NULL DEFAULT 1 CHECK (hash_version IN (1, 2, 3)),
     leaf_index   INTEGER UNIQUE,
     leaf         TEXT,
     CHECK ((hash_version = 3) = (leaf IS NOT NULL AND data IS NULL AND prev_hash IS NULL)),
     CHECK (hash_version = 3 OR (data IS NOT NULL AND prev_hash IS NOT NULL))
   ) STRICT`,
  `INSERT INTO audit_entries_v7 (seq, at, type, actor, agent_id, session_id, action, decision, prev_hash, hash, data, hash_version, leaf_index)
   SELECT seq, at, type, actor, agent_id, session_id, action, decision, prev_hash, hash, data, hash_version, seq - 1 FROM audit_entries`,
  `DROP TABLE audit_entries`,
  `ALTER TABLE audit_entries_v7 RENAME TO audit_entries`,
  `CREATE INDEX audit_by_agent ON audit_entries (agent_id, seq)`,
  `CREATE INDEX audit_by_time ON audit_entries (at)`,
  `CREATE INDEX audit_by_decision ON audit_entries (decision)`,
  `CREATE TRIGGER audit_entries_no_update BEFORE UPDATE ON audit_entries
   BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END`,
  `CREATE TRIGGER audit_entries_no_delete BEFORE DELETE ON audit_entries
   BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END`,

  `CREATE TABLE audit_tree_nodes (
     level INTEGER NOT NULL,
     idx   INTEGER NOT NULL,
     hash  BLOB NOT NULL,
     PRIMARY KEY (level, idx)
   ) STRICT, WITHOUT ROWID`,
  `CREATE TRIGGER audit_tree_nodes_no_delete BEFORE DELETE ON audit_tree_nodes
   BEGIN SELECT RAISE(ABORT, 'audit tree nodes are append-only'); END`,

  `CREATE TABLE audit_tree_heads (
     tree_size  INTEGER PRIMARY KEY,
     root_hash  TEXT NOT NULL,
     at         INTEGER NOT NULL,
     public_key TEXT NOT NULL,
     signature  TEXT NOT NULL
   ) STRICT`,
  `CREATE TRIGGER audit_tree_heads_no_update BEFORE UPDATE ON audit_tree_heads
   BEGIN SELECT RAISE(ABORT, 'audit tree heads are append-only'); END`,
  `CREATE TRIGGER audit_tree_heads_no_delete BEFORE DELETE ON audit_tree_heads
   BEGIN SELECT RAISE(ABORT, 'audit tree heads are append-only'); END`,
];
