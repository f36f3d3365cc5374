import type { BreakerRecord, BreakerAction, BreakerScope, BreakerState, DetectorFigures } from '@airlock/core';
import type { Row } from './rows.ts';
import { fromJson, toInt, toOptionalInt, toOptionalString } from './values.ts';

/** Row -> breaker, for both dialects (the tables are twins: 015 on SQLite, 016 on PostgreSQL). */
export function breakerFromRow(r: Row): BreakerRecord {
  const resetAt = toOptionalInt(r.reset_at);
  const resetBy = toOptionalString(r.reset_by);
  const resetSeq = toOptionalInt(r.reset_seq);
  return {
    id: String(r.id),
    detector: String(r.detector),
    type: String(r.type),
    action: String(r.action) as BreakerAction,
    scope: String(r.scope) as BreakerScope,
    ...(r.group_label !== null && r.group_label !== undefined ? { group: { label: String(r.group_label), value: String(r.group_value) } } : {}),
    agentId: String(r.agent_id),
    policyVersion: String(r.policy_version),
    figures: fromJson(r.figures) as DetectorFigures,
    message: String(r.message),
    agents: fromJson(r.agents) as string[],
    state: String(r.state) as BreakerState,
    trippedAt: toInt(r.tripped_at),
    trippedSeq: toInt(r.tripped_seq),
    ...(resetAt !== undefined ? { resetAt } : {}),
    ...(resetBy !== undefined ? { resetBy } : {}),
    ...(resetSeq !== undefined ? { resetSeq } : {}),
  };
}

/** Insert values in column order (id ... tripped_seq), JSON as canonical text. */
export function breakerInsertValues(b: BreakerRecord, json: (v: unknown) => string): unknown[] {
  return [b.id, b.detector, b.type, b.action, b.scope, b.group?.label ?? null, b.group?.value ?? null, b.agentId, b.policyVersion, json(b.figures), b.message, json(b.agents), b.state, b.trippedAt, b.trippedSeq];
}

export const BREAKER_INSERT_COLUMNS = 'id, detector, type, action, scope, group_label, group_value, agent_id, policy_version, figures, message, agents, state, tripped_at, tripped_seq';
