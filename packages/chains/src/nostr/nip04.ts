// NIP-04 (deprecated) encrypted direct messages: AES-256-CBC with PKCS#7 padding, keyed by the unhashed ECDH
// shared x, content `base64(ciphertext)?iv=base64(iv)`. Offered only where a policy rule names `nostr.nip04`
// (it leaks metadata and has no authentication); NIP-44 is the default.
import { AirlockError } from '@airlock/core';
import { cbc } from '@noble/ciphers/aes.js';
import { randomBytes } from '@noble/hashes/utils.js';

const PAYLOAD = /^([A-Za-z0-9+/]+={0,2})\?iv=([A-Za-z0-9+/]{22}==)$/;

export function nip04Encrypt(plaintext: string, sharedX: Uint8Array, iv: Uint8Array = randomBytes(16)): string {
  const ciphertext = cbc(sharedX, iv).encrypt(new TextEncoder().encode(plaintext));
  return `${Buffer.from(ciphertext).toString('base64')}?iv=${Buffer.from(iv).toString('base64')}`;
}

export function nip04Decrypt(payload: string, sharedX: Uint8Array): string {
  const m = typeof payload === 'string' ? PAYLOAD.exec(payload) : null;
  if (!m) throw new AirlockError('invalid_request', 'a NIP-04 payload is base64(ciphertext)?iv=base64(16-byte iv)');
  const ciphertext = Buffer.from(m[1]!, 'base64');
  if (ciphertext.length === 0 || ciphertext.length % 16 !== 0) throw new AirlockError('invalid_request', 'a NIP-04 ciphertext is a whole number of AES blocks');
  let plain: Uint8Array;
  try {
    plain = cbc(sharedX, Buffer.from(m[2]!, 'base64')).decrypt(ciphertext);
  } catch {
    // Wrong key or tampered bytes show up as bad padding: no detail that would help a padding oracle.
    throw new AirlockError('invalid_request', 'the NIP-04 payload does not decrypt with this key');
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(plain);
  } catch {
    throw new AirlockError('invalid_request', 'the NIP-04 payload does not decrypt with this key');
  }
}
