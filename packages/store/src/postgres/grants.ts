import { canonicalJson, type GrantRecord } from '@airlock/core';
import { GRANT_COLUMNS, grantFromRow, grantValues } from '../shared/grant-rows.ts';
import { clampLimit } from '../shared/values.ts';
import type { Q } from './pg-query.ts';

// Grants (schema 019; core/ports/grants.ts): what each agent's key handed to others.

const SELECT_COLUMNS = GRANT_COLUMNS.replace('amount', 'amount::text AS amount').replace('domain', 'domain::text AS domain');

export async function recordGrants(q: Q, grants: readonly GrantRecord[]): Promise<void> {
  const placeholders = GRANT_COLUMNS.split(',').map((_, i) => `$${i + 1}`).join(', ');
  for (const g of grants) await q(`INSERT INTO grants (${GRANT_COLUMNS}) VALUES (${placeholders})`, grantValues(g, canonicalJson, (b) => (b ? 1 : 0)));
}

export async function listGrants(q: Q, agentId: string, filter: { after?: { auditSeq: number; index: number }; limit?: number }): Promise<GrantRecord[]> {
  const rows = await q(
    `SELECT ${SELECT_COLUMNS} FROM grants WHERE agent_id = $1 AND (audit_seq, idx) > ($2, $3) ORDER BY audit_seq, idx LIMIT $4`,
    [agentId, filter.after?.auditSeq ?? -1, filter.after?.index ?? -1, clampLimit(filter.limit ?? 1000)],
  );
  return rows.map(grantFromRow);
}
