export type AuditDecision = 'allow' | 'deny' | 'require_approval' | 'error';

export interface AuditEntryInput {
  at: number; // ms since epoch
  /** What happened, e.g. `sign.request`, `approval.granted`, `policy.set`, `agent.frozen`. */
  type: string;
  actor: 'agent' | 'operator' | 'system';
  agentId?: string;
  sessionId?: string;
  action?: string;
  decision?: AuditDecision;
  /** Everything else: intent, violations, policy version, digest, error code. Never secrets. */
  data: Record<string, unknown>;
}

/**
 * How an entry's hash was computed (see `hashAuditEntry`). 1: the canonical JSON used before RFC 8785
 * (entries written before audit hash version 2 existed); 2: RFC 8785 (JCS). Every new entry is 2.
 */
export type AuditHashVersion = 1 | 2;

export interface AuditEntry extends AuditEntryInput {
  seq: number; // 1, 2, 3…
  prevHash: string; // hex; 64 zeros for seq 1
  hash: string; // hex
  /** Absent means 1: exports and rows written before the version was recorded. */
  hashVersion?: AuditHashVersion;
}

export interface AuditCheckpoint {
  /** Number of entries covered: entries 1..seq. */
  seq: number;
  headHash: string;
  at: number;
  /** x-only BIP-340 public key of the audit key (hex). */
  publicKey: string;
  /** BIP-340 Schnorr signature over `checkpointDigest` (hex). */
  signature: string;
}

export interface AuditQuery {
  agentId?: string;
  decision?: AuditDecision;
  type?: string;
  fromMs?: number;
  toMs?: number;
  afterSeq?: number;
  limit?: number;
}
