import type { ApprovalQuorum, Violation } from '../policy/decision.ts';

/** One quorum a held request must meet: `min` distinct approvers from `groups`; `rule` is the tier that asked. */
export interface QuorumRequirement extends ApprovalQuorum {
  rule: string;
}

/** What a counted vote contributes: who, their groups when they voted, and how they voted. */
export interface CountedVote {
  approverId: string;
  groups: readonly string[];
  decision: 'approve' | 'reject';
}

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
 * approvers of a large transfer for that tier's. Tiers without a quorum add nothing once one tier has a quorum:
 * signed votes of named approvers are the stricter control. Identical requirements count once (the first tier).
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
  return all.filter((r, i) => !all.some((l, j) => j !== i && implies(l, r) && (!same(l, r) || j < i)));
}

/** An approver may vote when one of their groups is named by one of the requirements. */
export function eligibleGroups(requirements: readonly QuorumRequirement[], groups: readonly string[]): boolean {
  return requirements.some((r) => r.groups.some((g) => groups.includes(g)));
}

/**
 * Met when every requirement has `min` distinct approving approvers among its groups. One approver counts once
 * per requirement, and towards every requirement whose groups include one of theirs.
 */
export function quorumMet(requirements: readonly QuorumRequirement[], votes: readonly CountedVote[]): boolean {
  return requirements.every((r) => {
    const approvers = new Set(votes.filter((v) => v.decision === 'approve' && v.groups.some((g) => r.groups.includes(g))).map((v) => v.approverId));
    return approvers.size >= r.min;
  });
}
