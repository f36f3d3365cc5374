/**
 * Every released signature is charged exactly once, or is a byte-identical replay of a charged one. A replay (an
 * idempotent retry, an x402 nonce replay, an approved request asked again) signs the charged digest again, which
 * gives the same bytes only when the key backend is deterministic (RFC 6979). A PKCS#11 token draws a random
 * nonce: a second signing is a second valid signature over the same EIP-3009 authorization or transaction nonce,
 * and whoever holds both can use either. So with such a backend the signatures released for a charged decision are
 * stored (first writer wins) before they leave, and every later release returns the stored bytes. With a
 * deterministic backend nothing is read or written: the hot path pays nothing. A threshold cluster (FROST) draws
 * fresh nonces in every signing round: its signatures are kept the same way (`deterministic` false).
 */
import { bytesToHex } from '@noble/hashes/utils.js';
import { AirlockError, isAirlockError } from '../errors.ts';
import type { ProducedSignature } from '../ports/key-backend.ts';
import type { ServiceDeps } from './deps.ts';

export interface ChargedRelease {
  /** The audit entry of the charged decision (the original's, for a replay). */
  auditSeq: number;
  /** What the request decodes to. */
  digest: Uint8Array;
  /** A replay may find signatures stored already; a first release cannot (its entry was just committed). */
  replayed: boolean;
}

/**
 * The signatures to release for `release`: produced by `sign`, or the ones released before for the same decision.
 * `deterministic`: whether whoever `sign` asks gives the same bytes every time (default: the key backend's answer).
 */
export async function releasedSignatures(deps: Pick<ServiceDeps, 'keys' | 'store' | 'clock'>, release: ChargedRelease, sign: () => Promise<ProducedSignature[]>, deterministic = deps.keys.deterministic): Promise<ProducedSignature[]> {
  if (deterministic) return sign();
  const digest = bytesToHex(release.digest);
  if (release.replayed) {
    const stored = await deps.store.getReleasedSignatures(release.auditSeq);
    if (stored) return sameDigest(stored.digest, digest, stored.signatures);
  }
  const produced = await sign();
  let kept;
  try {
    kept = await deps.store.keepReleasedSignatures({ auditSeq: release.auditSeq, digest, signatures: produced, createdAt: deps.clock.now() });
  } catch (e) {
    // Released without a row, a later replay would sign again and hand out a second, different signature.
    throw new AirlockError('signature_not_recorded', 'The signature could not be stored for byte-identical replays, so it was not released; the spend stays reserved.', {
      cause: e,
      hints: ['Retry with the same Idempotency-Key once the store is reachable: the retry is a replay of this charged request, not a new charge.'],
      details: { auditSeq: release.auditSeq, storeError: isAirlockError(e) ? e.code : 'internal' },
    });
  }
  // Another instance (or a concurrent retry here) stored first: its bytes are the ones released, ours are dropped.
  return sameDigest(kept.digest, digest, kept.signatures);
}

/** Stored signatures are only ever for the digest their decision charged; anything else is refused, not released. */
function sameDigest(stored: string, digest: string, signatures: ProducedSignature[]): ProducedSignature[] {
  if (stored !== digest) throw new AirlockError('signature_check_failed', 'The signatures stored for this decision are over another digest; nothing was returned.');
  return signatures;
}
