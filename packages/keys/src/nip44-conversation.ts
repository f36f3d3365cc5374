/**
 * NIP-44 v2 conversation key (NIP-44 "Functions: get_conversation_key"): the unhashed 32-byte x coordinate of
 * the ECDH shared point, then HKDF-extract with salt `nip44-v2`. Runs inside the key backends only, so the
 * private key it needs never leaves packages/keys.
 */
import { AirlockError } from '@airlock/core';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { extract } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';

const SALT = new TextEncoder().encode('nip44-v2');

export function nip44ConversationKeyFrom(privateKey: Uint8Array, peerXOnly: Uint8Array): Uint8Array {
  const shared = nip04SharedSecretFrom(privateKey, peerXOnly);
  try {
    return extract(sha256, shared, SALT);
  } finally {
    shared.fill(0);
  }
}

/**
 * The unhashed 32-byte x coordinate of the ECDH shared point: NIP-04's AES-256-CBC key as is, and the input
 * of NIP-44's HKDF. Secret: the caller zeroes it.
 */
export function nip04SharedSecretFrom(privateKey: Uint8Array, peerXOnly: Uint8Array): Uint8Array {
  if (!(peerXOnly instanceof Uint8Array) || peerXOnly.length !== 32) throw new AirlockError('invalid_request', 'a peer public key must be 32 bytes (x-only)');
  let shared: Uint8Array;
  try {
    // BIP-340 keys are x-only with an even y: the 02 prefix lifts x to that point (throws when x is not on the curve).
    shared = secp256k1.getSharedSecret(privateKey, Uint8Array.of(0x02, ...peerXOnly), true);
  } catch {
    throw new AirlockError('invalid_request', 'the peer public key is not a point on secp256k1');
  }
  try {
    return shared.slice(1, 33);
  } finally {
    shared.fill(0);
  }
}
