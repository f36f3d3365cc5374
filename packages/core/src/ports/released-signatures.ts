import type { ProducedSignature } from './key-backend.ts';

/**
 * Released signatures (issue 15 §1): what the key backend produced for a charged decision, kept when the backend
 * is not deterministic (a PKCS#11 token draws a random nonce). A replay (an idempotent retry, an x402 nonce
 * replay, an approved request asked again) must return the bytes that were charged, not a second valid signature
 * over the same digest: two different signatures for one EIP-3009 authorization or one transaction nonce are two
 * things someone can submit. One row per charged decision, written before the signature leaves, first writer wins.
 */
export interface ReleasedSignatures {
  /** The audit entry of the charged decision (`sign.request`, or the request entry of an approval). */
  auditSeq: number;
  /** Hex of the digest the request decodes to; a replay over another digest is refused. */
  digest: string;
  /** In the order the adapter's `finalize` takes them (a PSBT: one per task). */
  signatures: ProducedSignature[];
  createdAt: number; // ms
}

export interface ReleasedSignatureStore {
  getReleasedSignatures(auditSeq: number): Promise<ReleasedSignatures | undefined>;
  /**
   * Inserts `record` unless a row for its audit entry exists, durably, and returns the row now stored (first writer
   * wins): two instances answering the same retry at once both return the first one's bytes.
   */
  keepReleasedSignatures(record: ReleasedSignatures): Promise<ReleasedSignatures>;
}
