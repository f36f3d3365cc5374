import type { DecisionKind, Violation } from '../policy/decision.ts';

/**
 * A candidate policy staged beside the active one of a scope (`fleet` or `agent:<agentId>`): every request
 * is evaluated under both, only the active one decides, and what the candidate would have decided is
 * recorded (docs/policy.md, "Trying a policy on real traffic").
 */
export interface ShadowPolicyRecord {
  /** `shd_` + 16 hex; new each time a candidate is staged, so outcomes of a replaced candidate never mix in. */
  id: string;
  scope: string;
  /** sha256 hex of the canonical JSON of the document. */
  hash: string;
  document: unknown;
  /** The text the operator staged (YAML or JSON), when staged as text. */
  source?: string;
  author: string;
  createdAt: number;
}

/**
 * How the candidate's decision compares with the active one for one request. `rules_differ`: the same
 * decision by other rules. `would_allow`: the candidate allows what the active policy refused or held for
 * a human; `would_deny`: it refuses what the active policy allowed or held; `would_require_approval`: it
 * holds for a human what the active policy allowed or refused. `error`: the candidate could not be evaluated.
 */
export const SHADOW_OUTCOMES = ['same', 'rules_differ', 'would_allow', 'would_deny', 'would_require_approval', 'error'] as const;
export type ShadowOutcomeKind = (typeof SHADOW_OUTCOMES)[number];

/** One side of a difference: what decided, by which rules. */
export interface ShadowDecisionDetail {
  decision: DecisionKind;
  violations: Violation[];
  allowedBy: string[];
  policyVersion: string;
}

/** One evaluation of a candidate, recorded with the audit entry of the request it shadowed. */
export interface ShadowOutcome {
  shadowId: string;
  /** The audit entry that recorded the request (and the active decision). */
  auditSeq: number;
  agentId: string;
  at: number;
  kind: ShadowOutcomeKind;
  action?: string;
  activeDecision: DecisionKind;
  /** Absent when the candidate could not be evaluated. */
  candidateDecision?: DecisionKind;
  /** Kept for differences only (every kind but `same`): what the intent was and what each side said. */
  detail?: {
    summary?: string;
    active: ShadowDecisionDetail;
    candidate?: ShadowDecisionDetail;
    /** Why the candidate could not be evaluated (`error`). */
    error?: string;
  };
}

export type ShadowOutcomeCounts = Record<ShadowOutcomeKind, number>;

export function emptyShadowCounts(): ShadowOutcomeCounts {
  return { same: 0, rules_differ: 0, would_allow: 0, would_deny: 0, would_require_approval: 0, error: 0 };
}
