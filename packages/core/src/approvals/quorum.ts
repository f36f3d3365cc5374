import { JUDGED_ALL_OF_ASSET, type ApprovalQuorum, type Violation } from '../policy/decision.ts';

/** One quorum a held request must meet: `min` distinct approvers from `groups`; `rule` is the tier that asked. */
export interface QuorumRequirement extends ApprovalQuorum {
  rule: string;
  /**
   * Set on the operator's requirement: a matched tier without a quorum (the operator decides) that no higher rung of
   * its ladder stands in for (`requiredQuorum`), or a tripped breaker that holds the request. `min` 1 and no
   * `groups`: no approver's vote counts for it, only the operator's approve with the admin token, recorded as
   * `approvedBy` once given.
   */
  operator?: { approvedBy?: string };
}

/** What a counted vote contributes: who, their groups when they voted, and how they voted. */
export interface CountedVote {
  approverId: string;
  groups: readonly string[];
  decision: 'approve' | 'reject';
}

/** How far a layer's author is trusted, most first: the fleet's operator, then the agent's policy, then sessions. */
const LAYER_TRUST = ['fleet', 'agent'];
const trustRank = (rule: string): number => {
  const rank = LAYER_TRUST.indexOf(rule.slice(0, rule.indexOf('/')));
  return rank === -1 ? LAYER_TRUST.length : rank;
};

/** The violations of a tripped `require_approval` breaker that holds the request (circuit-breakers.ts `screen`). */
const BREAKER_HOLDS: ReadonlySet<string> = new Set(['breaker_open', 'breaker_tripped']);

/**
 * Whether quorum tier `q` is a higher rung of the ladder of `operatorTier` (a tier without a quorum): of its layer or
 * a more trusted one, on the same asset, its threshold (`limit`) at least `operatorTier`'s. A tier without a
 * threshold (a `match` alone) is on no ladder.
 */
const higherRung = (q: Violation, operatorTier: Violation): boolean =>
  trustRank(q.rule) <= trustRank(operatorTier.rule) &&
  operatorTier.asset !== undefined && operatorTier.limit !== undefined &&
  q.asset === operatorTier.asset && q.limit !== undefined && BigInt(q.limit) >= BigInt(operatorTier.limit) &&
  judgedAll(q);

/**
 * Whether quorum tier `q` judged all of its asset the request moves: no `match`, or every part of the request
 * moving or approving some is one its `match` touches (calls.ts `touchesEveryPartMoving`; found by review: "router
 * approvals above 1,000 USDC: 1 of treasury" stood in for "above 1,000 USDC: the operator" on a batch of a 2,000
 * USDC router approve and a 5,000 USDC transfer, so one treasury vote granted the transfer; a `to: [router]` match
 * touches such a batch as a whole through its approve). A tier found on one call of a batch judged only that call.
 */
const judgedAll = (q: Violation): boolean => q[JUDGED_ALL_OF_ASSET] === true;

/**
 * The quorums a `require_approval` decision needs, from the `approval_required` violations of the tiers that
 * matched; undefined when no matched tier has a quorum (an operator approves, as before quorums existed).
 *
 * Every matched tier with a quorum applies, in every layer, except one that another matched tier already
 * implies: L implies R when L's `min` is at least R's and every group of L is one of R's (each approver counting
 * for L then counts for R, so meeting L meets R). That is how a ladder is written: "1 of [ops, treasury] above
 * 100" and "2 of [treasury] above 1,000": above 1,000 the 2 of treasury stand alone. A larger `min` alone never
 * replaces a smaller quorum of other groups: which tiers match depends on the request, so otherwise an agent
 * could add a part that touches a tier of its choosing (a 1-unit approval to a listed router, say) and swap the
 * approvers of a large transfer for that tier's. Identical requirements count once (the first tier).
 *
 * A matched tier without a quorum (the operator decides) is met only by a higher rung of its own ladder: a matched
 * quorum tier of its layer or a more trusted one (fleet over agent over session: that layer's author chose those
 * approvers) on the same asset with a threshold at least its own ("above 100 USDC: the operator", "above 1,000
 * USDC: 2 of treasury"). Any other quorum never stands in for it, for the same reason as above: a quorum of a less
 * trusted layer (found by review: an agent policy's "1 of [devops] for anything touching the router" took a 5,000
 * USDC transfer from the fleet's operator once the agent added a 1-unit router approve), and one of the same layer
 * written for something else (found by review: the fleet's own router tier did the same). The operator's approval
 * is then required too (an `operator` requirement, named after the first such tier), and the grant needs both, in
 * either order.
 *
 * A tripped `require_approval` breaker (`breaker_open`, or `breaker_tripped` on the request that trips it) is such a
 * requirement whatever quorum matched, the fleet's included: a breaker is the operator's control (only an operator
 * resets it), and it holds the agent's requests because the agent looks compromised, which no approver group's
 * tier was written for (found by review: once a quorum tier matched, approvers' votes alone granted a request the
 * breaker held for the operator).
 */
export function requiredQuorum(violations: readonly Violation[]): QuorumRequirement[] | undefined {
  const all: QuorumRequirement[] = [];
  for (const v of violations) {
    if (v.code !== 'approval_required' || v.quorum === undefined) continue;
    all.push({ rule: v.rule, min: v.quorum.min, groups: [...new Set(v.quorum.groups)].sort() });
  }
  if (all.length === 0) return undefined;
  const implies = (l: QuorumRequirement, r: QuorumRequirement) => l.min >= r.min && l.groups.every((g) => r.groups.includes(g));
  const same = (l: QuorumRequirement, r: QuorumRequirement) => l.min === r.min && l.groups.join(',') === r.groups.join(',');
  // Keep R unless another requirement strictly implies it, or an identical one comes first.
  const kept = all.filter((r, i) => !all.some((l, j) => j !== i && implies(l, r) && (!same(l, r) || j < i)));
  const quorumTiers = violations.filter((v) => v.code === 'approval_required' && v.quorum !== undefined);
  const operatorTier = violations.find((v) => BREAKER_HOLDS.has(v.code) || (v.code === 'approval_required' && v.quorum === undefined && !quorumTiers.some((q) => higherRung(q, v))));
  return operatorTier ? [...kept, { rule: operatorTier.rule, min: 1, groups: [], operator: {} }] : kept;
}

/**
 * What approvers' votes must meet to grant a request that `violations` hold (OperatorService.policyRecheck):
 * `requiredQuorum`, or, where that asks no quorum because the operator decides alone (a tier without a quorum, a
 * tripped breaker), the operator's requirement, named after the first tier or breaker that holds the request. The
 * votes met the quorum the request was held for; they never stand in for an operator that the policy in force (or a
 * breaker tripped since) now asks for (found by review: after the fleet's "above 1,000 USDC: 2 of treasury" was
 * replaced by "above 1,000 USDC: the operator", two treasury votes still granted a 5,000 USDC transfer held under
 * the old tier, while a policy with any quorum tier left would have added the operator).
 */
export function requiredOfVotes(violations: readonly Violation[]): QuorumRequirement[] | undefined {
  const quorum = requiredQuorum(violations);
  if (quorum) return quorum;
  const holding = violations.find((v) => v.code === 'approval_required' || BREAKER_HOLDS.has(v.code));
  return holding ? [{ rule: holding.rule, min: 1, groups: [], operator: {} }] : undefined;
}

/**
 * `required` with its operator requirement approved when the operator has approved this request: before
 * (`held`, the requirement stored on the approval) or now (`grantingOperator`, the admin token granting). A policy
 * changed since may name another tier; the operator approved the request, not a tier.
 */
export function withOperatorApproval(required: QuorumRequirement[] | undefined, held: readonly QuorumRequirement[] | undefined, grantingOperator?: string): QuorumRequirement[] | undefined {
  const approvedBy = grantingOperator ?? held?.find((r) => r.operator?.approvedBy !== undefined)?.operator?.approvedBy;
  if (required === undefined || approvedBy === undefined) return required;
  return required.map((r) => (r.operator ? { ...r, operator: { approvedBy } } : r));
}

/** "2 of treasury/risk", or "the operator" for the operator's requirement (for messages). */
export function describeRequirement(r: QuorumRequirement): string {
  return r.operator ? 'the operator' : `${r.min} of ${r.groups.join('/')}`;
}

/** An approver may vote when one of their groups is named by one of the requirements. */
export function eligibleGroups(requirements: readonly QuorumRequirement[], groups: readonly string[]): boolean {
  return requirements.some((r) => r.groups.some((g) => groups.includes(g)));
}

/**
 * Met when every requirement has `min` distinct approving approvers among its groups, and the operator's
 * requirement (if any) the operator's approval. One approver counts once per requirement, and towards every
 * requirement whose groups include one of theirs.
 */
export function quorumMet(requirements: readonly QuorumRequirement[], votes: readonly CountedVote[]): boolean {
  return requirements.every((r) => {
    if (r.operator) return r.operator.approvedBy !== undefined;
    const approvers = new Set(votes.filter((v) => v.decision === 'approve' && v.groups.some((g) => r.groups.includes(g))).map((v) => v.approverId));
    return approvers.size >= r.min;
  });
}
