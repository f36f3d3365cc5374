import { createHash } from 'node:crypto';
import { hexToBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import { canonicalJson, legacyCanonicalJson } from '../canonical-json.ts';
import { findJsonShapeProblem } from '../parse-untrusted-json.ts';
import type { AuditCheckpoint, AuditEntry, AuditEntryInput, AuditHashVersion } from './types.ts';

export const GENESIS_HASH = '0'.repeat(64);
/** The version every new entry is hashed with. */
export const AUDIT_HASH_VERSION: AuditHashVersion = 2;
// Domain separation: an entry hash can never be confused with a checkpoint digest or any other sha256
// use, nor one hash version with another (a version-2 entry relabelled 1 cannot match its hash).
const ENTRY_TAGS: Record<AuditHashVersion, Uint8Array> = {
  1: utf8ToBytes('airlock/audit-entry/v1\u0000'),
  2: utf8ToBytes('airlock/audit-entry/v2\u0000'),
};
const CHECKPOINT_TAG = utf8ToBytes('airlock/audit-checkpoint/v1\u0000');

/**
 * hash_n = sha256(tag_v || hash_{n-1} || canon_v(entry_n without its hash)), where version 2 (every new
 * entry) is tag "airlock/audit-entry/v2\0" with RFC 8785 canonical JSON, and version 1 (entries written
 * before) is tag "airlock/audit-entry/v1\0" with `legacyCanonicalJson`.
 */
export function hashAuditEntry(prevHash: string, seq: number, entry: AuditEntryInput, version: AuditHashVersion = AUDIT_HASH_VERSION): string {
  const canonical = version === 1 ? legacyCanonicalJson : canonicalJson;
  const body = canonical({
    seq,
    at: entry.at,
    type: entry.type,
    actor: entry.actor,
    agentId: entry.agentId,
    sessionId: entry.sessionId,
    action: entry.action,
    decision: entry.decision,
    data: entry.data,
  });
  // node:crypto's SHA-256 (native, ~3x noble's here): it runs once per signing request and once per
  // entry when a million-entry log is verified. Same function, so chains hash identically either way.
  return createHash('sha256').update(ENTRY_TAGS[version]).update(hexToBytes(prevHash)).update(body).digest('hex');
}

export function checkpointDigest(cp: Pick<AuditCheckpoint, 'seq' | 'headHash' | 'at'>): Uint8Array {
  return new Uint8Array(createHash('sha256').update(CHECKPOINT_TAG).update(canonicalJson({ seq: cp.seq, headHash: cp.headHash, at: cp.at })).digest());
}

export interface AuditVerifyResult {
  ok: boolean;
  entries: number;
  checkpoints: number;
  headHash: string;
  /** First problem found, with the entry seq it concerns. */
  firstBad?: { seq: number; reason: string };
  /** Entries after the last checkpoint (not yet anchored by a signature). */
  unanchored: number;
}

/**
 * Incremental verifier: feed entries in order, then checkpoints, then `finish()`.
 * Detects edits (hash mismatch), deletions and reordering (seq gaps, prevHash mismatch), and
 * truncation (a signed checkpoint covers more entries than remain, or its head does not match).
 * Each entry is hashed with the version it records (absent: 1); versions never go down along the chain.
 */
export class AuditChainVerifier {
  private expectedSeq = 1;
  private prevHash = GENESIS_HASH;
  private version: AuditHashVersion = 1;
  private readonly headAt = new Map<number, string>();
  private bad?: { seq: number; reason: string };
  private readonly checkpointSeqs: Set<number>;

  /** `start`: continue from a trusted point (a verified checkpoint) instead of the genesis entry. */
  constructor(checkpoints: AuditCheckpoint[] = [], start?: { seq: number; hash: string }) {
    this.checkpointSeqs = new Set(checkpoints.map((c) => c.seq));
    if (start) {
      this.expectedSeq = start.seq + 1;
      this.prevHash = start.hash;
    }
  }

  push(entry: AuditEntry): boolean {
    if (this.bad) return false;
    if (entry.seq !== this.expectedSeq) {
      return this.fail(this.expectedSeq, entry.seq > this.expectedSeq ? `entry ${this.expectedSeq} is missing (next is ${entry.seq})` : `entry ${entry.seq} is out of order`);
    }
    if (entry.prevHash !== this.prevHash) return this.fail(entry.seq, 'prevHash does not match the previous entry');
    const version = entry.hashVersion ?? 1;
    if (version !== 1 && version !== 2) return this.fail(entry.seq, 'entry has an unknown hash version (edited)');
    // Once the chain is on a version, an older one after it can only be an edit: no writer goes back.
    if (version < this.version) return this.fail(entry.seq, `entry hash version ${version} follows version ${this.version} (edited)`);
    // Version 1 dropped __proto__ members, so they never reached a stored entry; one there now is an
    // edit the old form cannot see.
    if (version === 1 && findJsonShapeProblem(entry.data, Infinity, ['__proto__'])) return this.fail(entry.seq, 'entry content does not match its hash (edited)');
    let hash: string;
    try {
      hash = hashAuditEntry(this.prevHash, entry.seq, entry, version);
    } catch {
      return this.fail(entry.seq, 'entry content cannot be hashed (edited)');
    }
    if (hash !== entry.hash) return this.fail(entry.seq, 'entry content does not match its hash (edited)');
    this.version = version;
    this.prevHash = hash;
    if (this.checkpointSeqs.has(entry.seq)) this.headAt.set(entry.seq, hash);
    this.expectedSeq++;
    return true;
  }

  finish(checkpoints: AuditCheckpoint[], verifySignature: (cp: AuditCheckpoint) => boolean, expectedPublicKey?: string): AuditVerifyResult {
    const count = this.expectedSeq - 1;
    let lastAnchored = 0;
    for (const cp of [...checkpoints].sort((a, b) => a.seq - b.seq)) {
      if (this.bad) break;
      if (expectedPublicKey && cp.publicKey !== expectedPublicKey) {
        this.fail(cp.seq, `checkpoint at ${cp.seq} is signed by an unknown key`);
        break;
      }
      if (!verifySignature(cp)) {
        this.fail(cp.seq, `checkpoint at ${cp.seq} has an invalid signature`);
        break;
      }
      if (cp.seq > count) {
        this.fail(count + 1, `log truncated: checkpoint covers ${cp.seq} entries, only ${count} present`);
        break;
      }
      if (this.headAt.get(cp.seq) !== cp.headHash) {
        this.fail(cp.seq, `entry ${cp.seq} does not match the signed checkpoint head`);
        break;
      }
      lastAnchored = cp.seq;
    }
    const result: AuditVerifyResult = {
      ok: !this.bad,
      entries: count,
      checkpoints: checkpoints.length,
      headHash: this.prevHash,
      unanchored: count - lastAnchored,
    };
    if (this.bad) result.firstBad = this.bad;
    return result;
  }

  private fail(seq: number, reason: string): false {
    this.bad ??= { seq, reason };
    return false;
  }
}
