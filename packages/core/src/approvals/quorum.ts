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
 * Within one policy the tiers are a ladder: of the matched tiers with a quorum, only those with the largest
 * `min` apply (2 of treasury above 1,000 replaces 1 of ops above 100). Ladders of different layers do not
 * replace each other: the fleet's quorum and the agent's both apply, so an agent policy cannot swap the
 * fleet's approvers for its own. Tiers without a quorum add nothing once one tier has a quorum: signed votes
 * of named approvers are the stricter control. Identical requirements count once.
 */
export function requiredQuorum(violations: readonly Violation[]): QuorumRequirement[] | undefined {
  const byLayer = new Map<string, QuorumRequirement[]>();
  for (const v of violations) {
    if (v.code !== 'approval_required' || v.quorum === undefined) continue;
    const layer = v.rule.split('/')[0]!;
    const rung = byLayer.get(layer) ?? [];
    const top = rung[0]?.min ?? 0;
    if (v.quorum.min < top) continue;
    const requirement = { rule: v.rule, min: v.quorum.min, groups: [...new Set(v.quorum.groups)].sort() };
    byLayer.set(layer, v.quorum.min > top ? [requirement] : [...rung, requirement]);
  }
  if (byLayer.size === 0) return undefined;
  const seen = new Set<string>();
  const out: QuorumRequirement[] = [];
  for (const r of [...byLayer.values()].flat()) {
    const key = `${r.min}:${r.groups.join(',')}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(r);
  }
  return out;
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
