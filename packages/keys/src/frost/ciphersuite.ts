/**
 * The FROST ciphersuites Airlock knows, from @noble/curves (abstract/frost.ts: RFC 9591 round one, round two,
 * share verification, aggregation, and the Pedersen DKG with proofs of knowledge of the FROST paper):
 *
 * - `bip340`: FROST-secp256k1-SHA256-TR-v1, the suite of ZcashFoundation's frost-secp256k1-tr. RFC 9591's
 *   secp256k1 suite with BIP-340's challenge (tagged hash over x-only R and key), the group key and each
 *   group commitment R brought to even y, 64-byte signatures. Its output is an ordinary BIP-340 signature:
 *   what Nostr events and Taproot key-path spends need. The threshold cluster signs with this one.
 * - `rfc9591`: FROST(secp256k1, SHA-256) exactly as RFC 9591 section 6.5 (65-byte signatures, SEC1 R). Kept
 *   for the RFC's own test vector, which pins the shared arithmetic (hash-to-field H1/H3, H4, H5, binding
 *   factors, Lagrange coefficients) that the bip340 suite reuses.
 *
 * Why noble's code rather than our own: it is the curve library Airlock already trusts for every signature,
 * it implements both suites and the DKG, and it passes the RFC and ZcashFoundation vectors step by step
 * (frost.conformance.test.ts). What Airlock adds lives beside this file: authenticated and encrypted DKG
 * messages, the sealed share, and the signer node that evaluates policy before it contributes a share.
 */
import { schnorr_FROST, secp256k1, secp256k1_FROST } from '@noble/curves/secp256k1.js';

export type Frost = typeof schnorr_FROST;

export interface FrostSuite {
  /** The suite's context string (RFC 9591 section 6.5 / frost-secp256k1-tr). */
  contextString: string;
  frost: Frost;
  /** A share's verifying share: share*G, SEC1 compressed (33 bytes). */
  publicPointOf(signingShare: Uint8Array): Uint8Array;
}

const publicPointOf = (signingShare: Uint8Array): Uint8Array => secp256k1.Point.BASE.multiply(secp256k1.Point.Fn.fromBytes(signingShare)).toBytes(true);

export const FROST_SUITES = {
  bip340: { contextString: 'FROST-secp256k1-SHA256-TR-v1', frost: schnorr_FROST, publicPointOf },
  rfc9591: { contextString: 'FROST-secp256k1-SHA256-v1', frost: secp256k1_FROST, publicPointOf },
} as const satisfies Record<string, FrostSuite>;

/** The cluster's suite: BIP-340 signatures (Nostr, Taproot). */
export const CLUSTER_SUITE: FrostSuite = FROST_SUITES.bip340;
