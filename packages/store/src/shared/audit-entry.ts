import { AUDIT_HASH_VERSION, canonicalJson, hashAuditEntry, type AuditEntry, type AuditEntryInput } from '@airlock/core';

/**
 * Builds the entry that will be stored at `seq` after `prevHash`. `data` goes through canonical JSON
 * first, so bigints become strings and the returned entry equals what a later read returns
 * (and therefore re-hashes to the same value). New entries are always hashed with the current
 * version, which is stored beside them (`hash_version`).
 */
export function buildAuditEntry(prev: { seq: number; hash: string }, input: AuditEntryInput): { entry: AuditEntry; dataJson: string } {
  const dataJson = canonicalJson(input.data ?? {});
  const normalized: AuditEntryInput = {
    at: input.at,
    type: input.type,
    actor: input.actor,
    data: JSON.parse(dataJson) as Record<string, unknown>,
  };
  if (input.agentId !== undefined) normalized.agentId = input.agentId;
  if (input.sessionId !== undefined) normalized.sessionId = input.sessionId;
  if (input.action !== undefined) normalized.action = input.action;
  if (input.decision !== undefined) normalized.decision = input.decision;
  const seq = prev.seq + 1;
  const hash = hashAuditEntry(prev.hash, seq, normalized, AUDIT_HASH_VERSION);
  return { entry: { ...normalized, seq, prevHash: prev.hash, hash, hashVersion: AUDIT_HASH_VERSION }, dataJson };
}
