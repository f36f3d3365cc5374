import type { ViolationCode } from '../codes.ts';

export type Layer = 'fleet' | 'agent' | 'session';
export type DecisionKind = 'allow' | 'deny' | 'require_approval';

/** Why a request was refused (or needs approval). Amounts are decimal strings of base units. */
export interface Violation {
  /** `<layer>/<rule name>`, e.g. `agent/usdc-daily`. */
  rule: string;
  code: ViolationCode;
  message: string;
  limit?: string;
  used?: string;
  requested?: string;
  /** Asset the amounts are in (CAIP-19), when the rule is about an amount. */
  asset?: string;
  /** `approval_required` from a tier with a quorum: `min` distinct approvers of these groups must approve. */
  quorum?: ApprovalQuorum;
  /**
   * `approval_required` from a tier with `asset` and `above`: true when the tier judged all of `asset` the request
   * moves (no `match`, or every part of the request moving or approving some is one its `match` touches). Only such
   * a quorum tier stands in for an operator tier (approvals/quorum.ts). Under a symbol: used while deciding, never
   * written to answers or audit entries.
   */
  [JUDGED_ALL_OF_ASSET]?: boolean;
}

/** The key of Violation's in-memory `judged all of the asset` flag (see there). */
export const JUDGED_ALL_OF_ASSET: unique symbol = Symbol('judgedAllOfAsset');

/** M of the approvers who belong to any of the named groups (approval_tier `quorum`). */
export interface ApprovalQuorum {
  min: number;
  groups: string[];
}

export interface Decision {
  decision: DecisionKind;
  /** Deny reasons for `deny`; the thresholds crossed for `require_approval`; empty for `allow`. */
  violations: Violation[];
  /** Which allow rules granted the request (`<layer>/<name>`). */
  allowedBy: string[];
  /** Identifies the exact policy versions used, e.g. `fleet@3:1a2b3c4d,agent@5:9f8e7d6c`. */
  policyVersion: string;
}
