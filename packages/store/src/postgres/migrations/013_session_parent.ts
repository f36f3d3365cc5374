/** PostgreSQL schema, version 13: a derived session's parent (see sqlite/migrations/012_session_parent.ts). */
export const statements: string[] = [
  `ALTER TABLE sessions ADD COLUMN parent_id text`,
  `CREATE INDEX sessions_by_parent ON sessions (parent_id) WHERE parent_id IS NOT NULL`,
];
