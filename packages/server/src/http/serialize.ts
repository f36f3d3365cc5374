import type { z } from 'zod';
import type { Agent, ApprovalRecord, Approver, AuditEntry, Session, ShadowOutcome } from '@airlock/core';
import type { AgentSchema, ApprovalSchema, ApproverSchema, AuditEntrySchema, SessionSchema, ShadowDifferenceSchema } from './schemas.ts';

// The JSON bodies of the stored records. Each returns its schema's output type, so a field the document
// does not name (or names differently) is a type error here; the live-response test catches the rest.

const iso = (ms: number) => new Date(ms).toISOString();

export function agentJson(a: Agent): z.output<typeof AgentSchema> {
  return { ...a, createdAt: iso(a.createdAt), updatedAt: iso(a.updatedAt) };
}

/** Never includes the token hash. */
export function sessionJson(s: Session): z.output<typeof SessionSchema> {
  return {
    id: s.id,
    agentId: s.agentId,
    scope: s.scope,
    ...(s.label ? { label: s.label } : {}),
    ...(s.parentId !== undefined ? { parentId: s.parentId } : {}),
    createdAt: iso(s.createdAt),
    expiresAt: iso(s.expiresAt),
    ...(s.revokedAt !== undefined ? { revokedAt: iso(s.revokedAt) } : {}),
  };
}

/**
 * The held request as people read it: an L402 payment's macaroon is half of the agent's credential (the preimage,
 * paid for, is the other half) and reaches operators nowhere (lightning-attacks.http.test.ts), so it is left out;
 * the payment hash it names stays.
 */
function requestForHumans(request: unknown): unknown {
  const l402 = (request as { l402?: { macaroon?: unknown } } | null)?.l402;
  if (!l402 || typeof l402 !== 'object' || !('macaroon' in l402)) return request;
  const { macaroon: _left, ...rest } = l402;
  return { ...(request as object), l402: rest };
}

export function approvalJson(a: ApprovalRecord): z.output<typeof ApprovalSchema> {
  return {
    id: a.id,
    agentId: a.agentId,
    sessionId: a.sessionId,
    action: a.action,
    state: a.state,
    digest: a.digest,
    summary: a.summary as Record<string, unknown>,
    // The request itself, not only its summary: a held Nostr event's summary names its kind, id and a few tags,
    // while its content (a kind 0's lud16, a zap's amount) is what a human must read (found by review).
    request: requestForHumans(a.request),
    auditSeq: a.auditSeq,
    createdAt: iso(a.createdAt),
    expiresAt: iso(a.expiresAt),
    ...(a.decidedAt !== undefined ? { decidedAt: iso(a.decidedAt) } : {}),
    ...(a.decidedBy ? { decidedBy: a.decidedBy } : {}),
    ...(a.result !== undefined ? { result: a.result as Record<string, unknown> } : {}),
    ...(a.quorum ? { quorum: a.quorum, votes: (a.votes ?? []).map((v) => ({ approver: v.approver, decision: v.decision, at: iso(v.at), signature: v.signature, ...(v.comment !== undefined ? { comment: v.comment } : {}), auditSeq: v.auditSeq })) } : {}),
    ...(a.quorum ? { voteCounts: { approve: (a.votes ?? []).filter((v) => v.decision === 'approve').length, reject: (a.votes ?? []).filter((v) => v.decision === 'reject').length } } : {}),
    ...(a.quorum && a.decidedBy?.startsWith('approvers:') ? { approvers: a.decidedBy.slice('approvers:'.length).split(',') } : {}),
  };
}

/**
 * An approval as the agent that asked reads it: its state, the quorum, how many votes went each way and the times,
 * never who voted. `votes` and `approvers` are left out (names, comments, signatures), and `decidedBy` of a decision
 * by votes reads `approvers`. approver-service.ts answers an unknown approver name as a bad signature so that an agent
 * cannot learn whom to impersonate or phish, while the agent's own reads of its approval named them (found by
 * review). The admin token, the console and the approvers read `approvalJson`.
 */
export function approvalForAgentJson(json: z.output<typeof ApprovalSchema>): z.output<typeof ApprovalSchema> {
  const { votes: _votes, approvers: _approvers, decidedBy, ...rest } = json;
  return { ...rest, ...(decidedBy !== undefined ? { decidedBy: decidedBy.startsWith('approvers:') ? 'approvers' : decidedBy } : {}) };
}

/** Only the public key: the private key never reached Airlock. */
export function approverJson(a: Approver): z.output<typeof ApproverSchema> {
  return { ...a, createdAt: iso(a.createdAt), updatedAt: iso(a.updatedAt) };
}

export function auditJson(e: AuditEntry): z.output<typeof AuditEntrySchema> {
  return { ...e, at: iso(e.at) };
}

/** A recorded difference of a shadow policy, flattened: the request, then what each side decided. */
export function shadowDifferenceJson(o: ShadowOutcome): z.output<typeof ShadowDifferenceSchema> {
  const d = o.detail;
  return {
    auditSeq: o.auditSeq,
    agentId: o.agentId,
    at: o.at,
    kind: o.kind,
    ...(o.action !== undefined ? { action: o.action } : {}),
    ...(d?.summary !== undefined ? { summary: d.summary } : {}),
    active: d?.active ?? { decision: o.activeDecision, violations: [], allowedBy: [], policyVersion: '' },
    ...(d?.candidate ? { candidate: d.candidate } : {}),
    ...(d?.error !== undefined ? { error: d.error } : {}),
  };
}
