import type { Agent, ApprovalRecord, AuditEntry, Session } from '@airlock/core';

const iso = (ms: number) => new Date(ms).toISOString();

export function agentJson(a: Agent) {
  return { ...a, createdAt: iso(a.createdAt), updatedAt: iso(a.updatedAt) };
}

/** Never includes the token hash. */
export function sessionJson(s: Session) {
  return {
    id: s.id,
    agentId: s.agentId,
    scope: s.scope,
    ...(s.label ? { label: s.label } : {}),
    createdAt: iso(s.createdAt),
    expiresAt: iso(s.expiresAt),
    ...(s.revokedAt !== undefined ? { revokedAt: iso(s.revokedAt) } : {}),
  };
}

export function approvalJson(a: ApprovalRecord) {
  return {
    id: a.id,
    agentId: a.agentId,
    sessionId: a.sessionId,
    action: a.action,
    state: a.state,
    digest: a.digest,
    summary: a.summary,
    auditSeq: a.auditSeq,
    createdAt: iso(a.createdAt),
    expiresAt: iso(a.expiresAt),
    ...(a.decidedAt !== undefined ? { decidedAt: iso(a.decidedAt) } : {}),
    ...(a.decidedBy ? { decidedBy: a.decidedBy } : {}),
    ...(a.result !== undefined ? { result: a.result } : {}),
  };
}

export function auditJson(e: AuditEntry) {
  return { ...e, at: iso(e.at) };
}
