// Values of an `AuditLeafRow` (ports/audit-leaf-reader.ts) as the verifier takes them.
import { AirlockError } from '../errors.ts';
import type { AuditLeafRow, IntColumn } from '../ports/audit-leaf-reader.ts';
import type { VerifiableEntry } from './log-verifier.ts';
import type { AuditDecision, AuditEntry, AuditHashVersion } from './types.ts';

export function rowInt(value: IntColumn): number {
  const n = typeof value === 'number' ? value : Number(value);
  if (!Number.isSafeInteger(n)) throw new AirlockError('internal', 'store returned a non-integer where an integer was expected');
  return n;
}

/** The entry a row holds, as `Store.readAuditLeaves` returns it (the verifier's path for chained entries). */
export function entryFromLeafRow(row: AuditLeafRow): VerifiableEntry {
  const [seq, leafIndex, hashVersion, hash, at, type, actor, agentId, sessionId, action, decision, leaf, prevHash, data] = row;
  const version = rowInt(hashVersion) as AuditHashVersion;
  const e: VerifiableEntry = { seq: rowInt(seq), at: rowInt(at), type, actor: actor as AuditEntry['actor'], hash, hashVersion: version };
  if (leafIndex !== null) e.leafIndex = rowInt(leafIndex);
  if (agentId !== null) e.agentId = agentId;
  if (sessionId !== null) e.sessionId = sessionId;
  if (action !== null) e.action = action;
  if (decision !== null) e.decision = decision as AuditDecision;
  if (version === 3) {
    if (leaf !== null) e.leaf = leaf;
  } else {
    e.data = (data === null ? {} : JSON.parse(data)) as Record<string, unknown>;
    if (prevHash !== null) e.prevHash = prevHash;
  }
  return e;
}
