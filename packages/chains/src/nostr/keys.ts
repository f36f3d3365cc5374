// Nostr key paths (NIP-06, defined in core so the vault's export ceremony derives the same) and x-only keys.
// npub/nsec encodings live in @airlock/keys (nostr-identity.ts), which never echoes a key in its errors.
import { AirlockError } from '@airlock/core';
import { bytesToHex } from '@noble/hashes/utils.js';

export { nostrIdentityPath, nostrTransportPath } from '@airlock/core';

/** 33-byte compressed key -> x-only lowercase hex (BIP-340: the even-y point with that x). */
export function xOnlyHex(compressed: Uint8Array): string {
  if (!(compressed instanceof Uint8Array) || compressed.length !== 33 || (compressed[0] !== 2 && compressed[0] !== 3)) {
    throw new AirlockError('invalid_request', 'public key must be a 33-byte compressed secp256k1 key');
  }
  return bytesToHex(compressed.subarray(1));
}
