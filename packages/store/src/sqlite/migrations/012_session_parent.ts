/**
 * SQLite schema, version 12: sessions derived from a session (child sessions for sub-agents) name their parent.
 * NULL for operator-issued sessions and every session stored before. No foreign key: a parent is never
 * deleted, and the store copy inserts rows in any order.
 */
export const statements: string[] = [
  `ALTER TABLE sessions ADD COLUMN parent_id TEXT`,
  // Descendants are found by walking parent_id downwards (a cascading revoke, an agent's list of its children).
  `CREATE INDEX sessions_by_parent ON sessions (parent_id) WHERE parent_id IS NOT NULL`,
];
