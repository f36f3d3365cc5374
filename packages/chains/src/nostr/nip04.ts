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

/** What can be judged of a NIP-04 payload without the key (run when the request is decoded, before it is authorized). */
function decodePayload(payload: string): { ciphertext: Uint8Array; iv: Uint8Array } {
  const m = typeof payload === 'string' ? PAYLOAD.exec(payload) : null;
  if (!m) throw new AirlockError('invalid_request', 'a NIP-04 payload is base64(ciphertext)?iv=base64(16-byte iv)');
  const ciphertext = Buffer.from(m[1]!, 'base64');
  if (ciphertext.length === 0 || ciphertext.length % 16 !== 0) throw new AirlockError('invalid_request', 'a NIP-04 ciphertext is a whole number of AES blocks');
  return { ciphertext, iv: Buffer.from(m[2]!, 'base64') };
}

/** As checkNip44Input: a decrypt's payload shape; any plaintext encrypts (PKCS#7 pads even an empty one). */
export function checkNip04Input(op: 'encrypt' | 'decrypt', text: string): void {
  if (op === 'decrypt') decodePayload(text);
}

export function nip04Decrypt(payload: string, sharedX: Uint8Array): string {
  const { ciphertext, iv } = decodePayload(payload);
  let plain: Uint8Array;
  try {
    plain = cbc(sharedX, iv).decrypt(ciphertext);
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
