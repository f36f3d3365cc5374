import { canonicalJson, type ShadowOutcome, type ShadowOutcomeCounts, type ShadowPolicyRecord } from '@airlock/core';
import { OUTCOME_COLUMNS, shadowCountsFromRows, shadowOutcomeFromRow, shadowOutcomeValues, shadowPolicyFromRow } from '../shared/shadow-rows.ts';
import type { Q } from './pg-query.ts';

export async function listShadowPolicies(q: Q): Promise<ShadowPolicyRecord[]> {
  return (await q('SELECT * FROM shadow_policies ORDER BY scope')).map(shadowPolicyFromRow);
}

export async function getShadowPolicy(q: Q, scope: string): Promise<ShadowPolicyRecord | undefined> {
  const [row] = await q('SELECT * FROM shadow_policies WHERE scope = $1', [scope]);
  return row && shadowPolicyFromRow(row);
}

export async function putShadowPolicy(q: Q, record: ShadowPolicyRecord): Promise<void> {
  await deleteShadowPolicy(q, record.scope);
  await q(
    'INSERT INTO shadow_policies (scope, id, hash, document, source, author, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)',
    [record.scope, record.id, record.hash, canonicalJson(record.document ?? null), record.source ?? null, record.author, record.createdAt],
  );
}

export async function deleteShadowPolicy(q: Q, scope: string): Promise<ShadowPolicyRecord | undefined> {
  const [row] = await q('DELETE FROM shadow_policies WHERE scope = $1 RETURNING *', [scope]);
  if (!row) return undefined;
  const record = shadowPolicyFromRow(row);
  await q('DELETE FROM shadow_outcomes WHERE shadow_id = $1', [record.id]);
  return record;
}

export async function shadowOutcomeCounts(q: Q, shadowId: string): Promise<ShadowOutcomeCounts> {
  return shadowCountsFromRows(await q('SELECT kind, count(*) AS n FROM shadow_outcomes WHERE shadow_id = $1 GROUP BY kind', [shadowId]));
}

export async function listShadowDifferences(q: Q, shadowId: string, filter: { afterSeq?: number; limit: number }): Promise<ShadowOutcome[]> {
  const rows = await q("SELECT * FROM shadow_outcomes WHERE shadow_id = $1 AND audit_seq > $2 AND kind <> 'same' ORDER BY audit_seq LIMIT $3", [shadowId, filter.afterSeq ?? 0, filter.limit]);
  return rows.map(shadowOutcomeFromRow);
}

/**
 * All outcomes in one statement. Only those whose candidate is still staged are kept (another instance may
 * have unstaged it since this one cached it); a conflict (impossible: one audit entry per request) is ignored.
 */
export async function appendShadowOutcomes(q: Q, outcomes: readonly ShadowOutcome[]): Promise<void> {
  if (outcomes.length === 0) return;
  const columns = OUTCOME_COLUMNS.map((_, i) => outcomes.map((o) => shadowOutcomeValues(o)[i]));
  await q(
    `INSERT INTO shadow_outcomes (${OUTCOME_COLUMNS.join(', ')})
     SELECT o.* FROM unnest($1::text[], $2::bigint[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::text[], $8::text[], $9::jsonb[])
       AS o(shadow_id, audit_seq, agent_id, at, kind, action, active_decision, candidate_decision, detail)
     WHERE EXISTS (SELECT 1 FROM shadow_policies s WHERE s.id = o.shadow_id)
     ON CONFLICT DO NOTHING`,
    columns,
  );
}
