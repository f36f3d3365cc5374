import { canonicalJson, type GrantRecord } from '@airlock/core';
import type { SQLInputValue } from 'node:sqlite';
import { GRANT_COLUMNS, grantFromRow, grantValues } from '../shared/grant-rows.ts';
import { clampLimit } from '../shared/values.ts';
import type { SqliteDb } from './sqlite-db.ts';

// Grants (schema 018; core/ports/grants.ts): what each agent's key handed to others.

export function recordGrants(db: SqliteDb, grants: readonly GrantRecord[]): void {
  const placeholders = GRANT_COLUMNS.split(',').map(() => '?').join(', ');
  for (const g of grants) db.run(`INSERT INTO grants (${GRANT_COLUMNS}) VALUES (${placeholders})`, ...(grantValues(g, canonicalJson, (b) => (b ? 1 : 0)) as SQLInputValue[]));
}

export function listGrants(db: SqliteDb, agentId: string, filter: { after?: { auditSeq: number; index: number }; limit?: number }): GrantRecord[] {
  const seq = filter.after?.auditSeq ?? -1;
  const idx = filter.after?.index ?? -1;
  return db.all(
    `SELECT ${GRANT_COLUMNS} FROM grants WHERE agent_id = ? AND (audit_seq > ? OR (audit_seq = ? AND idx > ?)) ORDER BY audit_seq, idx LIMIT ?`,
    agentId, seq, seq, idx, clampLimit(filter.limit ?? 1000),
  ).map(grantFromRow);
}
