import { canonicalJson, emptyShadowCounts, SHADOW_OUTCOMES, type DecisionKind, type ShadowOutcome, type ShadowOutcomeCounts, type ShadowOutcomeKind, type ShadowPolicyRecord } from '@airlock/core';
import type { Row } from './rows.ts';
import { fromJson, toInt, toOptionalString } from './values.ts';

/** Row mapping of shadow_policies and shadow_outcomes, shared by both dialects (their columns are twins). */
export function shadowPolicyFromRow(r: Row): ShadowPolicyRecord {
  const source = toOptionalString(r.source);
  return {
    id: String(r.id),
    scope: String(r.scope),
    hash: String(r.hash),
    document: fromJson(r.document),
    ...(source !== undefined ? { source } : {}),
    author: String(r.author),
    createdAt: toInt(r.created_at),
  };
}

export function shadowOutcomeFromRow(r: Row): ShadowOutcome {
  const action = toOptionalString(r.action);
  const candidate = toOptionalString(r.candidate_decision);
  const detail = fromJson(r.detail) as ShadowOutcome['detail'];
  return {
    shadowId: String(r.shadow_id),
    auditSeq: toInt(r.audit_seq),
    agentId: String(r.agent_id),
    at: toInt(r.at),
    kind: String(r.kind) as ShadowOutcomeKind,
    ...(action !== undefined ? { action } : {}),
    activeDecision: String(r.active_decision) as DecisionKind,
    ...(candidate !== undefined ? { candidateDecision: candidate as DecisionKind } : {}),
    ...(detail !== undefined ? { detail } : {}),
  };
}

/** The column values of one outcome, in the order of OUTCOME_COLUMNS. */
export const OUTCOME_COLUMNS = ['shadow_id', 'audit_seq', 'agent_id', 'at', 'kind', 'action', 'active_decision', 'candidate_decision', 'detail'] as const;
export function shadowOutcomeValues(o: ShadowOutcome): (string | number | null)[] {
  return [o.shadowId, o.auditSeq, o.agentId, o.at, o.kind, o.action ?? null, o.activeDecision, o.candidateDecision ?? null, o.detail === undefined ? null : canonicalJson(o.detail)];
}

/** `kind, n` rows of a GROUP BY as counts (every kind present, zero when absent). */
export function shadowCountsFromRows(rows: Row[]): ShadowOutcomeCounts {
  const counts = emptyShadowCounts();
  for (const r of rows) {
    const kind = String(r.kind) as ShadowOutcomeKind;
    if ((SHADOW_OUTCOMES as readonly string[]).includes(kind)) counts[kind] = toInt(r.n);
  }
  return counts;
}
