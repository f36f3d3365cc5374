// NIP-44 version 2 (https://github.com/nostr-protocol/nips/blob/master/44.md), step by step as the spec writes it.
// The conversation key comes from the key backend (ECDH happens there); this file only pads, encrypts and MACs.
import { AirlockError } from '@airlock/core';
import { chacha20 } from '@noble/ciphers/chacha.js';
import { equalBytes } from '@noble/ciphers/utils.js';
import { expand } from '@noble/hashes/hkdf.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { concatBytes, randomBytes, utf8ToBytes } from '@noble/hashes/utils.js';

const VERSION = 2;
const MIN_PLAINTEXT = 1;
const MAX_PLAINTEXT = 65535;

function fail(message: string): AirlockError {
  return new AirlockError('invalid_request', message);
}

/** "get_message_keys": HKDF-expand(conversation key, info = nonce, 76 bytes) -> chacha key, chacha nonce, hmac key. */
export function messageKeys(conversationKey: Uint8Array, nonce: Uint8Array): { chachaKey: Uint8Array; chachaNonce: Uint8Array; hmacKey: Uint8Array } {
  if (conversationKey.length !== 32) throw fail('conversation key must be 32 bytes');
  if (nonce.length !== 32) throw fail('nonce must be 32 bytes');
  const keys = expand(sha256, conversationKey, nonce, 76);
  return { chachaKey: keys.subarray(0, 32), chachaNonce: keys.subarray(32, 44), hmacKey: keys.subarray(44, 76) };
}

/** "calc_padded_len": 32 bytes minimum, then chunks of 32 up to 256 and of next_power/8 beyond. */
export function paddedLength(unpadded: number): number {
  if (!Number.isSafeInteger(unpadded) || unpadded < 1) throw fail('expected a positive length');
  if (unpadded <= 32) return 32;
  const nextPower = 1 << (Math.floor(Math.log2(unpadded - 1)) + 1);
  const chunk = nextPower <= 256 ? 32 : nextPower / 8;
  return chunk * (Math.floor((unpadded - 1) / chunk) + 1);
}

/** "pad": u16 big-endian length prefix, the plaintext, zeros to the padded length. */
function pad(plaintext: string): Uint8Array {
  const bytes = utf8ToBytes(plaintext);
  if (bytes.length < MIN_PLAINTEXT || bytes.length > MAX_PLAINTEXT) throw fail(`NIP-44 plaintext must be ${MIN_PLAINTEXT}..${MAX_PLAINTEXT} bytes`);
  const out = new Uint8Array(2 + paddedLength(bytes.length));
  new DataView(out.buffer).setUint16(0, bytes.length);
  out.set(bytes, 2);
  return out;
}

function unpad(padded: Uint8Array): string {
  const length = new DataView(padded.buffer, padded.byteOffset).getUint16(0);
  const body = padded.subarray(2, 2 + length);
  if (length < MIN_PLAINTEXT || body.length !== length || padded.length !== 2 + paddedLength(length)) throw fail('invalid NIP-44 padding');
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(body);
  } catch {
    // A peer can MAC bytes that are not UTF-8: the sender's fault, not ours (was an unwrapped TypeError, a 500).
    throw fail('the NIP-44 plaintext is not UTF-8 text');
  }
}

/**
 * What can be judged of a NIP-44 request without the key: the plaintext's length for encrypt, the payload's
 * encoding, size and version for decrypt ("decode_payload"). Run when the request is decoded, so a malformed one
 * is refused before it is authorized (no audit entry, no rate count), not after.
 */
export function checkNip44Input(op: 'encrypt' | 'decrypt', text: string): void {
  if (op === 'encrypt') {
    const length = utf8ToBytes(text).length;
    if (length < MIN_PLAINTEXT || length > MAX_PLAINTEXT) throw fail(`NIP-44 plaintext must be ${MIN_PLAINTEXT}..${MAX_PLAINTEXT} bytes`);
    return;
  }
  decodePayload(text);
}

/** "decode_payload": length bounds first; `#` marks a future non-base64 encoding. */
function decodePayload(payload: string): { nonce: Uint8Array; ciphertext: Uint8Array; tag: Uint8Array } {
  if (typeof payload !== 'string' || payload.length < 132 || payload.length > 87472) throw fail('invalid NIP-44 payload size');
  if (payload[0] === '#') throw fail('unknown NIP-44 encryption version');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(payload)) throw fail('invalid NIP-44 payload: not base64');
  const data = new Uint8Array(Buffer.from(payload, 'base64'));
  if (data.length < 99 || data.length > 65603) throw fail('invalid NIP-44 payload size');
  if (data[0] !== VERSION) throw fail('unknown NIP-44 encryption version');
  return { nonce: data.subarray(1, 33), ciphertext: data.subarray(33, data.length - 32), tag: data.subarray(data.length - 32) };
}

/** "hmac_aad": HMAC-SHA256(hmac key, nonce || ciphertext). */
function mac(hmacKey: Uint8Array, nonce: Uint8Array, ciphertext: Uint8Array): Uint8Array {
  return hmac(sha256, hmacKey, concatBytes(nonce, ciphertext));
}

/** `nonce` is for the spec's vectors only: real use draws 32 fresh random bytes. */
export function nip44Encrypt(plaintext: string, conversationKey: Uint8Array, nonce: Uint8Array = randomBytes(32)): string {
  const { chachaKey, chachaNonce, hmacKey } = messageKeys(conversationKey, nonce);
  const ciphertext = chacha20(chachaKey, chachaNonce, pad(plaintext));
  return Buffer.from(concatBytes(Uint8Array.of(VERSION), nonce, ciphertext, mac(hmacKey, nonce, ciphertext))).toString('base64');
}

export function nip44Decrypt(payload: string, conversationKey: Uint8Array): string {
  const { nonce, ciphertext, tag } = decodePayload(payload);
  const { chachaKey, chachaNonce, hmacKey } = messageKeys(conversationKey, nonce);
  // Authenticate before decrypting (constant-time compare).
  if (!equalBytes(mac(hmacKey, nonce, ciphertext), tag)) throw fail('invalid NIP-44 MAC');
  return unpad(chacha20(chachaKey, chachaNonce, ciphertext));
}
