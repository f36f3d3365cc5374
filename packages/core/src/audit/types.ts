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
 * How an entry is hashed (docs/audit-format.md). 1 and 2 are hash chains (`hashAuditEntry`): 1 with the
 * canonical JSON used before RFC 8785, 2 with RFC 8785 (JCS). 3 (every new entry) is a Merkle leaf: the
 * entry's stored canonical bytes (`leaf`), hashed on their own, without the previous entry.
 */
export type AuditHashVersion = 1 | 2 | 3;

export interface AuditEntry extends AuditEntryInput {
  seq: number; // 1, 2, 3…
  /** Position in the Merkle tree (0-based, contiguous). Absent only in exports made before the tree existed. */
  leafIndex?: number;
  /** Versions 1 and 2: the previous entry's hash (hex; 64 zeros for seq 1). Absent in version 3. */
  prevHash?: string;
  /** Versions 1 and 2: the chain hash. Version 3: the RFC 9162 leaf hash SHA-256(0x00 || leaf) (hex). */
  hash: string;
  /** Absent means 1: exports and rows written before the version was recorded. */
  hashVersion?: AuditHashVersion;
  /** Version 3: the exact canonical JSON bytes that were hashed (and stored), see `auditLeaf`. */
  leaf?: string;
}

/** What every signature response carries: where its audit entry sits in the Merkle tree. */
export interface AuditReceipt {
  auditSeq: number;
  leafIndex: number;
  /** RFC 9162 leaf hash of the entry (hex). */
  leafHash: string;
}

/** A signed tree head: the audit key vouches that the log's first `treeSize` leaves have root `rootHash`. */
export interface SignedTreeHead {
  treeSize: number;
  /** MTH of the first treeSize leaves (hex). */
  rootHash: string;
  at: number; // ms since epoch
  /** x-only BIP-340 public key of the audit key (hex). */
  publicKey: string;
  /** BIP-340 Schnorr signature over `treeHeadDigest` (hex). */
  signature: string;
}

/** A signed head of the hash chain, written before signed tree heads replaced them: still verified. */
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
  /** The newest `limit` matching entries, newest first (default: oldest first, which `afterSeq` pages). */
  newestFirst?: boolean;
}
