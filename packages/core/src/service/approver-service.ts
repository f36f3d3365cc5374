import { AirlockError } from '../errors.ts';
import type { ApprovalRecord, ApprovalVote, Approver, StoreTx } from '../ports/store.ts';
import { eligibleGroups, quorumMet, type CountedVote } from '../approvals/quorum.ts';
import { approvalViewBytes, approvalVoteBytes, parseVoteTime, VOTE_MAX_SKEW_MS, type VoteDecision } from '../approvals/vote.ts';
import { APPROVER_GROUP_RE } from '../policy/rules/approval-tier.ts';
import type { ServiceDeps } from './deps.ts';
import type { GrantedApproval, OperatorService } from './operator-service.ts';

const NAME_RE = /^[a-z0-9][a-z0-9_.-]{0,63}$/;
/** An approver's id (`randomId('apv')`): look-ups take an id or a name, so no name may have this form. */
const APPROVER_ID_RE = /^apv_[0-9a-f]{16}$/;

export interface AddApproverInput {
  name: string;
  /** Hex of the approver's 32-byte Ed25519 public key (the private key stays with the approver). */
  publicKey: string;
  groups: string[];
  /** Agents (ids or names) this approver is linked to: they cannot vote on those agents' requests. */
  agents?: string[];
}

/** A vote as posted: the signature is the credential (approvals/vote.ts says what is signed). */
export interface VoteInput {
  approver: string;
  digest: string;
  decision: VoteDecision;
  at: string;
  signature: string;
  comment?: string;
}

/** An approver's signed read of one approval (to see what they vote on). */
export interface ViewInput {
  approver: string;
  at: string;
  signature: string;
}

/**
 * Approvers and their votes on quorum approvals. An approver is an identity with its own Ed25519 key: the
 * admin registers the public key, the approver signs each vote over the approval id and the exact digest.
 *
 * A vote is checked in this order: the approval exists, the approver exists and the signature verifies (until
 * here nothing is recorded: an unauthenticated post leaves no trace); then, each refusal audited as an
 * `approval.vote` entry with its code and nothing else changed: the approver is active, `at` is within 5
 * minutes, the digest is the approval's, the approval is pending, the approver is eligible (a group of the
 * quorum) and not linked to the requesting agent, and has not voted on it before. An accepted vote is recorded
 * with its entry; one reject denies; the vote that meets every quorum grants the approval exactly as an
 * operator's approve does (OperatorService.grantIn), naming the approvers; a request the policy in force then
 * denies is closed as denied instead (the vote stays counted; `approval_policy_denies`), and one it holds for a
 * quorum these votes do not meet (one added or raised since the request was held, or the operator, where a tier
 * without a quorum or a breaker tripped since now holds it) stays pending for that quorum (the vote counted toward it). All in one transaction that holds
 * the approval, so two last votes landing together grant once.
 */
export class ApproverService {
  private readonly deps: ServiceDeps;
  private readonly operator: OperatorService;

  constructor(deps: ServiceDeps, operator: OperatorService) {
    this.deps = deps;
    this.operator = operator;
  }

  async addApprover(input: AddApproverInput, actor: string): Promise<Approver> {
    if (!NAME_RE.test(input.name)) throw new AirlockError('invalid_request', 'name: 1-64 chars of a-z, 0-9, _ . - starting with a letter or digit.');
    // Found by review: a name shaped like another approver's id made `disable <that id>` (WHERE id = ? OR name = ?)
    // read either row, so the leaked key an operator meant to revoke could stay active.
    if (APPROVER_ID_RE.test(input.name)) throw new AirlockError('invalid_request', 'The approver name has the form of an approver id (apv_ and 16 hex digits); choose another.');
    const publicKey = input.publicKey.toLowerCase();
    if (!this.deps.ed25519.isPublicKey(publicKey)) throw new AirlockError('invalid_request', 'publicKey: expected the 32-byte Ed25519 public key in hex.');
    const groups = [...new Set(input.groups)].sort();
    if (groups.length === 0 || groups.length > 20 || !groups.every((g) => APPROVER_GROUP_RE.test(g))) {
      throw new AirlockError('invalid_request', 'groups: 1-20 names of 1-64 chars of a-z, 0-9, _ . - starting with a letter or digit.');
    }
    const agents: string[] = [];
    for (const a of new Set(input.agents ?? [])) {
      const agent = await this.deps.store.getAgent(a);
      if (!agent) throw new AirlockError('not_found', 'agents: no such agent.');
      agents.push(agent.id);
    }
    const now = this.deps.clock.now();
    const approver: Approver = { id: this.deps.randomId('apv'), name: input.name, publicKey, groups, agents: [...new Set(agents)].sort(), status: 'active', createdAt: now, updatedAt: now };
    await this.deps.store.transaction(async (tx) => {
      await tx.createApprover(approver);
      await tx.appendAudit({ at: now, type: 'approver.added', actor: 'operator', data: { approverId: approver.id, name: approver.name, publicKey, groups, agents: approver.agents, by: actor } });
    });
    return approver;
  }

  async getApprover(idOrName: string): Promise<Approver> {
    const approver = await this.deps.store.getApprover(idOrName);
    if (!approver) throw new AirlockError('not_found', 'No such approver.');
    return approver;
  }

  listApprovers(): Promise<Approver[]> {
    return this.deps.store.listApprovers();
  }

  /**
   * Disabling is how a lost or leaked approver key is revoked: its votes stop counting, cast ones included. Run
   * `exclusive`, as an agent's freeze is: a vote's transaction reads the approver unlocked, so without it a vote that
   * read the approver active just before this committed still granted after this call returned (found by review).
   * With it the disable waits for every vote in flight: a grant either committed before it (recorded before
   * `approver.disabled`) or reads the approver disabled.
   */
  async disableApprover(idOrName: string, actor: string): Promise<Approver> {
    const approver = await this.getApprover(idOrName);
    if (approver.status === 'disabled') return approver;
    const now = this.deps.clock.now();
    return this.deps.store.transaction(async (tx) => {
      // Read again under the lock: a disable that raced this one already recorded it; twice records nothing.
      const current = await tx.getApprover(approver.id);
      if (!current) throw new AirlockError('not_found', 'No such approver.');
      if (current.status === 'disabled') return current;
      const updated = await tx.setApproverStatus(approver.id, 'disabled', now);
      await tx.appendAudit({ at: now, type: 'approver.disabled', actor: 'operator', data: { approverId: approver.id, name: approver.name, by: actor } });
      return updated;
    }, { exclusive: true });
  }

  /**
   * The approval and approver a signed post names, read outside any transaction, once its signature verifies:
   * `not_found` or `vote_signature_invalid` otherwise. Anyone can post without a token, so nothing is written (no
   * expiry pass, no row lock) until the post proves it is the approver's. A name no approver has is answered as a
   * signature that does not verify: told apart (`approver_unknown`), an agent that knows its own approval's id
   * learnt which approver names exist, whom to impersonate or phish (found by review).
   */
  private async verified(approvalId: string, approverName: string, message: (approver: Approver) => Uint8Array, signature: string, invalid: string): Promise<Approver> {
    const approval = await this.deps.store.getApproval(approvalId);
    if (!approval) throw new AirlockError('not_found', 'No such approval.');
    const approver = await this.deps.store.getApprover(approverName);
    if (!approver || !this.deps.ed25519.verify(approver.publicKey, message(approver), signature)) throw new AirlockError('vote_signature_invalid', invalid);
    return approver;
  }

  /** An approver reads an approval they may vote on (signed view, same freshness as a vote). */
  async viewApproval(approvalId: string, input: ViewInput): Promise<ApprovalRecord> {
    const approver = await this.verified(approvalId, input.approver, (a) => approvalViewBytes({ approvalId, approver: a.name, at: input.at }), input.signature, "The signature does not verify under the key of an approver by that name.");
    // Authenticated: the approval as it stands once overdue ones are expired (an overdue one answers as expired).
    await this.operator.expireOverdue();
    const approval = await this.deps.store.getApproval(approvalId);
    if (!approval) throw new AirlockError('not_found', 'No such approval.');
    const refused = this.staleness(input.at) ?? this.standing(approver, approval);
    if (refused) throw refused;
    return approval;
  }

  /** Counts a signed vote; answers the approval as it stands after it (granted and signed when it met the quorum). */
  async castVote(approvalId: string, input: VoteInput): Promise<ApprovalRecord> {
    const voteBytes = (approver: Approver) => approvalVoteBytes({ approvalId, digest: input.digest, decision: input.decision, approver: approver.name, at: input.at, ...(input.comment !== undefined ? { comment: input.comment } : {}) });
    const invalid = "The vote's signature does not verify under the key of an approver by that name; nothing was recorded.";
    // Verified first with reads only: an unauthenticated post writes nothing and locks nothing.
    await this.verified(approvalId, input.approver, voteBytes, input.signature, invalid);
    await this.operator.expireOverdue();
    const now = this.deps.clock.now();
    const outcome = await this.deps.store.transaction(async (tx): Promise<{ refused: AirlockError } | { approval: ApprovalRecord; granted?: GrantedApproval }> => {
      const approval = await tx.getApproval(approvalId, { lock: true });
      if (!approval) throw new AirlockError('not_found', 'No such approval.');
      const approver = await tx.getApprover(input.approver);
      // Checked again on what the transaction holds (a second Ed25519 check, for genuine votes only).
      if (!approver || !this.deps.ed25519.verify(approver.publicKey, voteBytes(approver), input.signature)) throw new AirlockError('vote_signature_invalid', invalid);
      // Authenticated: from here every refusal is on the record.
      const refused = await this.refusal(tx, approver, approval, input);
      if (refused) {
        await tx.appendAudit({ at: now, type: 'approval.vote', actor: 'operator', agentId: approval.agentId, sessionId: approval.sessionId, action: approval.action, decision: 'deny', data: { ...this.voteData(approval, approver, input), accepted: false, code: refused.code } });
        return { refused };
      }
      const entry = await tx.appendAudit({ at: now, type: 'approval.vote', actor: 'operator', agentId: approval.agentId, sessionId: approval.sessionId, action: approval.action, data: { ...this.voteData(approval, approver, input), accepted: true } });
      const vote: ApprovalVote = {
        approvalId, approverId: approver.id, approver: approver.name, groups: approver.groups, decision: input.decision, at: parseVoteTime(input.at)!,
        signature: input.signature, ...(input.comment !== undefined ? { comment: input.comment } : {}), auditSeq: entry.seq, createdAt: now,
      };
      await tx.recordApprovalVote(vote);
      if (input.decision === 'reject') {
        // One eligible reject denies: a quorum grants together, anyone of it can stop.
        const denied = await tx.appendAudit({ at: now, type: 'approval.denied', actor: 'operator', agentId: approval.agentId, sessionId: approval.sessionId, action: approval.action, decision: 'deny', data: { approvalId, requestSeq: approval.auditSeq, by: approver.name, approvers: [approver.name], ...(input.comment !== undefined ? { reason: input.comment } : {}) } });
        return { approval: await tx.decideApproval(approvalId, 'denied', `approvers:${approver.name}`, now, denied.seq) };
      }
      const counted = await this.countedVotes(tx, [...(approval.votes ?? []), vote]);
      const current = (await tx.getApproval(approvalId))!;
      if (!quorumMet(approval.quorum!, counted)) return { approval: current };
      const names = [...new Set(counted.filter((v) => v.decision === 'approve').map((v) => v.name))];
      return { approval: current, granted: await this.operator.grantIn(tx, current, now, { by: `approvers:${names.join(',')}`, approvers: names, votes: counted }) };
    });
    if ('refused' in outcome) throw outcome.refused;
    if (!outcome.granted) return outcome.approval;
    // The policy now holds the request for a larger quorum: this vote was counted toward it, nothing granted yet.
    if (outcome.granted.quorumRaised) return outcome.granted.approval;
    const signed = await this.operator.completeGrant(outcome.granted);
    return (await this.deps.store.getApproval(approvalId)) ?? signed;
  }

  /** Why an authenticated vote is not counted, or undefined. Checked after the signature, in this order. */
  private async refusal(tx: StoreTx, approver: Approver, approval: ApprovalRecord, input: VoteInput): Promise<AirlockError | undefined> {
    if (approver.status !== 'active') return new AirlockError('approver_disabled', 'The approver is disabled; the vote was not counted.');
    const stale = this.staleness(input.at);
    if (stale) return stale;
    if (input.digest !== approval.digest) return new AirlockError('vote_digest_mismatch', 'The vote is for another digest than the one this approval will sign; it was not counted.');
    const standing = this.standing(approver, approval);
    if (standing) return standing;
    const prior = approval.votes?.find((v) => v.approverId === approver.id);
    if (prior) {
      return prior.signature === input.signature
        ? new AirlockError('vote_replayed', 'This signed vote was already counted; a replay counts nothing.')
        : new AirlockError('approver_already_voted', 'The approver already voted on this approval; a vote counts once.');
    }
    // The vote that meets the quorum grants: what would stop the grant stops the vote (it can be cast again).
    if (input.decision === 'approve') {
      const counted = await this.countedVotes(tx, [...(approval.votes ?? []), { approverId: approver.id, approver: approver.name, groups: approver.groups, decision: 'approve' } as ApprovalVote]);
      if (quorumMet(approval.quorum!, counted)) return this.operator.grantBlocker(tx, approval);
    }
    return undefined;
  }

  private staleness(at: string): AirlockError | undefined {
    const ms = parseVoteTime(at);
    if (ms === undefined) return new AirlockError('invalid_request', 'at: expected an ISO 8601 UTC time, e.g. 2025-01-31T12:00:00.000Z.');
    if (Math.abs(ms - this.deps.clock.now()) > VOTE_MAX_SKEW_MS) return new AirlockError('vote_stale', "The vote's time is more than 5 minutes from the server's; sign a fresh one.");
    return undefined;
  }

  /** Whether this approver may act on this approval at all: pending, a quorum naming one of their groups, not their own agent's. */
  private standing(approver: Approver, approval: ApprovalRecord): AirlockError | undefined {
    if (approver.status !== 'active') return new AirlockError('approver_disabled', 'The approver is disabled.');
    if (approval.state !== 'pending') return new AirlockError('approval_not_pending', `The approval is already ${approval.state}.`);
    if (!approval.quorum) return new AirlockError('approver_not_eligible', 'This approval is decided by an operator (its tier has no quorum), not by approver votes.');
    if (approver.agents.includes(approval.agentId)) return new AirlockError('self_approval', 'The approver is linked to the agent that made this request and cannot vote on it.');
    if (!eligibleGroups(approval.quorum, approver.groups)) {
      const groups = [...new Set(approval.quorum.flatMap((q) => q.groups))];
      // Raised to the operator alone (OperatorService.raiseQuorum): it names no group.
      if (groups.length === 0) return new AirlockError('approver_not_eligible', 'This approval is now decided by an operator (what holds it requires the operator), not by approver votes.');
      return new AirlockError('approver_not_eligible', `The approver is in none of the groups this approval's quorum names (${groups.join(', ')}).`);
    }
    return undefined;
  }

  /** The votes that count: those of approvers still active (disabling an approver withdraws their votes). */
  private async countedVotes(tx: StoreTx, votes: readonly ApprovalVote[]): Promise<(CountedVote & { name: string })[]> {
    const out: (CountedVote & { name: string })[] = [];
    for (const v of votes) {
      const approver = await tx.getApprover(v.approverId);
      if (approver?.status === 'active') out.push({ approverId: v.approverId, groups: v.groups, decision: v.decision, name: v.approver });
    }
    return out;
  }

  private voteData(approval: ApprovalRecord, approver: Approver, input: VoteInput): Record<string, unknown> {
    return {
      approvalId: approval.id, requestSeq: approval.auditSeq, approver: approver.name, approverId: approver.id, decision: input.decision,
      at: input.at, digest: input.digest, signature: input.signature, ...(input.comment !== undefined ? { comment: input.comment } : {}),
    };
  }
}

