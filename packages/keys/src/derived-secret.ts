import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { AirlockError } from '@airlock/core';

const DOMAIN = 'airlock/derived-secret/v1\0';

/**
 * A 32-byte secret bound to the vault: HMAC-SHA256 keyed with the private key at a hardened path, over a
 * domain-separated label. Different labels give independent secrets; nothing about the key is learnt
 * from one (HMAC is a PRF), and the same vault always gives the same secret back (nothing to store).
 */
export function deriveSecretFrom(privateKey: Uint8Array, label: string): Uint8Array {
  if (typeof label !== 'string' || label.length === 0 || label.length > 256) throw new AirlockError('invalid_request', 'a derived secret needs a label of 1 to 256 characters');
  return hmac(sha256, privateKey, new TextEncoder().encode(DOMAIN + label));
}
