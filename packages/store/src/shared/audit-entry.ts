import { AUDIT_HASH_VERSION, auditLeaf, canonicalJson, leafHash, type AuditEntry, type AuditEntryInput } from '@airlock/core';

/**
 * Builds the entry that will be stored at `seq`, leaf `leafIndex` (undefined until its batch commits, on
 * PostgreSQL: the leaf does not contain it): a version-3 Merkle leaf. `data` goes
 * through canonical JSON once; the leaf is those bytes framed by the other fields (`auditLeaf`), stored
 * as is, and its RFC 9162 leaf hash is the entry's hash. The returned entry equals what a later read
 * returns (data parsed back from the leaf). No previous entry is involved.
 */
export function buildAuditEntry(seq: number, leafIndex: number | undefined, input: AuditEntryInput): AuditEntry {
  const dataJson = canonicalJson(input.data ?? {});
  const entry: AuditEntry = { seq, ...(leafIndex !== undefined ? { leafIndex } : {}), at: input.at, type: input.type, actor: input.actor, data: JSON.parse(dataJson) as Record<string, unknown>, hash: '', hashVersion: AUDIT_HASH_VERSION };
  if (input.agentId !== undefined) entry.agentId = input.agentId;
  if (input.sessionId !== undefined) entry.sessionId = input.sessionId;
  if (input.action !== undefined) entry.action = input.action;
  if (input.decision !== undefined) entry.decision = input.decision;
  entry.leaf = auditLeaf(entry, dataJson);
  entry.hash = Buffer.from(leafHash(entry.leaf)).toString('hex');
  return entry;
}
