import { canonicalJson } from '../canonical-json.ts';

/**
 * What an approver signs. A vote is an Ed25519 signature over the canonical JSON (RFC 8785) of
 * `{type: "airlock.approval.vote", approvalId, digest, decision, approver, at, comment?}`: it names the approval and
 * the exact digest that will be signed, so it cannot be moved to another approval or another payload, and `at`
 * bounds how long it can be presented. A view (an approver reading an approval before voting) signs
 * `{type: "airlock.approval.view", approvalId, approver, at}`. The SDK builds the same bytes (sdk/src/approvals.ts).
 */
export const APPROVAL_VOTE_TYPE = 'airlock.approval.vote';
export const APPROVAL_VIEW_TYPE = 'airlock.approval.view';
/** How far a signed `at` may be from the server's clock, either way. */
export const VOTE_MAX_SKEW_MS = 5 * 60_000;

export type VoteDecision = 'approve' | 'reject';

export interface ApprovalVoteMessage {
  approvalId: string;
  /** Hex of the 32-byte digest the approval will sign. */
  digest: string;
  decision: VoteDecision;
  /** The approver's name. */
  approver: string;
  /** `new Date().toISOString()` form (UTC, milliseconds, `Z`). */
  at: string;
  comment?: string;
}

export interface ApprovalViewMessage {
  approvalId: string;
  approver: string;
  at: string;
}

export function approvalVoteBytes(m: ApprovalVoteMessage): Uint8Array {
  const { approvalId, digest, decision, approver, at, comment } = m;
  return new TextEncoder().encode(canonicalJson({ type: APPROVAL_VOTE_TYPE, approvalId, digest, decision, approver, at, comment }));
}

export function approvalViewBytes(m: ApprovalViewMessage): Uint8Array {
  const { approvalId, approver, at } = m;
  return new TextEncoder().encode(canonicalJson({ type: APPROVAL_VIEW_TYPE, approvalId, approver, at }));
}

/**
 * ms since epoch of a signed `at`, or undefined unless it is exactly `Date.prototype.toISOString` form
 * (`2025-01-31T12:00:00.000Z`): the one spelling, so the time stored and shown with a vote re-verifies.
 */
export function parseVoteTime(at: string): number | undefined {
  const ms = Date.parse(at);
  return Number.isFinite(ms) && new Date(ms).toISOString() === at ? ms : undefined;
}
