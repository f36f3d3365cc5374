import { createHash } from 'node:crypto';
import { hexToBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import { canonicalJson } from '../canonical-json.ts';
import type { AuditCheckpoint, AuditEntry, AuditEntryInput } from './types.ts';

export const GENESIS_HASH = '0'.repeat(64);
// Domain separation: an entry hash can never be confused with a checkpoint digest or any other sha256 use.
const ENTRY_TAG = utf8ToBytes('airlock/audit-entry/v1\u0000');
const CHECKPOINT_TAG = utf8ToBytes('airlock/audit-checkpoint/v1\u0000');

/** hash_n = sha256(tag || hash_{n-1} || canonicalJson(entry_n without its hash)). */
export function hashAuditEntry(prevHash: string, seq: number, entry: AuditEntryInput): string {
  const body = canonicalJson({
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
  return createHash('sha256').update(ENTRY_TAG).update(hexToBytes(prevHash)).update(body).digest('hex');
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
 */
export class AuditChainVerifier {
  private expectedSeq = 1;
  private prevHash = GENESIS_HASH;
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
    const hash = hashAuditEntry(this.prevHash, entry.seq, entry);
    if (hash !== entry.hash) return this.fail(entry.seq, 'entry content does not match its hash (edited)');
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
