import type { AuditEntry } from '@airlock/core';

/**
 * The body of a delivery: the event id and type, then the audit entry as GET /v1/audit shows it (its type as
 * `auditType`, its time as ISO 8601, its leaf hash for a receipt from GET /v1/audit/receipts/{seq}). The same
 * entry always gives the same bytes, so a retry sends exactly what the first attempt sent.
 */
export function webhookBody(eventId: string, eventType: string, entry: AuditEntry): string {
  return JSON.stringify({
    id: eventId,
    type: eventType,
    auditType: entry.type,
    seq: entry.seq,
    leafIndex: entry.leafIndex,
    at: new Date(entry.at).toISOString(),
    actor: entry.actor,
    ...(entry.agentId !== undefined ? { agentId: entry.agentId } : {}),
    ...(entry.sessionId !== undefined ? { sessionId: entry.sessionId } : {}),
    ...(entry.action !== undefined ? { action: entry.action } : {}),
    ...(entry.decision !== undefined ? { decision: entry.decision } : {}),
    data: entry.data,
    hash: entry.hash,
  });
}
