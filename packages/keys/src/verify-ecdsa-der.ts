import { secp256k1 } from '@noble/curves/secp256k1.js';
import { sha256 } from '@noble/hashes/sha2.js';

/**
 * Plain ECDSA verification (SEC 1 / X9.62) over secp256k1 with SHA-256 and a strict DER signature.
 * High-S signatures are accepted, as plain ECDSA and Wycheproof's non-Bitcoin suite require;
 * Airlock's own signatures are always low-S (see HdKeyBackend). Returns a result, never throws.
 */
export function verifyEcdsaDer(publicKey: Uint8Array, message: Uint8Array, derSignature: Uint8Array): boolean {
  try {
    return secp256k1.verify(derSignature, sha256(message), publicKey, { prehash: false, lowS: false, format: 'der' });
  } catch {
    return false;
  }
}
