/**
 * SQLite schema, version 9: each policy version keeps the text the operator set (YAML or JSON, with its
 * comments and key order), so `policy show` prints what was written. NULL for versions set as a JSON
 * document through the API, and for every version stored before this migration.
 */
export const statements: string[] = [`ALTER TABLE policies ADD COLUMN source TEXT`];
