/**
 * NIP-49: a Nostr private key encrypted under a password, as a bech32 `ncryptsec1…` string.
 *
 * Layout (91 bytes before bech32), following the NIP step by step:
 *   0x02 version | log_n | salt (16) | nonce (24) | key_security_byte | ciphertext+tag (48)
 * where
 *   password  = NFKC(password)                       (so the same typed password always gives the same key)
 *   key       = scrypt(password, salt, N = 2^log_n, r = 8, p = 1, 32 bytes)
 *   ciphertext= XChaCha20-Poly1305(key, nonce, aad = key_security_byte).encrypt(private key)
 */
import { randomBytes } from 'node:crypto';
import { AirlockError } from '@airlock/core';
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { scryptAsync } from '@noble/hashes/scrypt.js';
import { bech32 } from '@scure/base';
import { nostrPublicKey } from './nostr-identity.ts';

const PREFIX = 'ncryptsec';
const VERSION = 0x02;
const SALT_BYTES = 16;
const NONCE_BYTES = 24;
const SECRET_BYTES = 32;
const TAG_BYTES = 16;
const PAYLOAD_BYTES = 1 + 1 + SALT_BYTES + NONCE_BYTES + 1 + SECRET_BYTES + TAG_BYTES; // 91
/** 91 bytes are 146 bech32 words; with prefix, separator and checksum the string is 162 characters. */
const BECH32_LIMIT = 200;

/**
 * NIP-49's key-security byte: what is known about how the key was handled before it was encrypted.
 * It is authenticated (the AAD), so it cannot be changed without the password.
 */
export const KeySecurity = {
  /** The key has been known to be handled insecurely (stored or pasted unencrypted). */
  knownInsecure: 0x00,
  /** The key has not been known to be handled insecurely. */
  notKnownInsecure: 0x01,
  /** The client does not track this. */
  unknown: 0x02,
} as const;
export type KeySecurityByte = (typeof KeySecurity)[keyof typeof KeySecurity];

/**
 * scrypt cost bounds. The NIP's table: log_n 16 = 64 MiB, 18 = 256 MiB, 20 = 1 GiB, 21 = 2 GiB.
 * We never write below 16 (the NIP's example value), and refuse to read above 22 (4 GiB): a crafted
 * ncryptsec must not make decryption allocate more memory than a backup could reasonably have used.
 */
export const MIN_ENCRYPT_LOG_N = 16;
export const MAX_LOG_N = 22;
export const DEFAULT_LOG_N = 18;

export interface EncryptOptions {
  logN?: number;
  keySecurity?: KeySecurityByte;
  /** Test-only: fixed salt and nonce (the NIP's vector). Never pass them in production code. */
  salt?: Uint8Array;
  nonce?: Uint8Array;
}

/** Encrypts a 32-byte Nostr private key under `password`. Checks its own output before returning it. */
export async function encryptNcryptsec(secretKey: Uint8Array, password: string, options: EncryptOptions = {}): Promise<string> {
  nostrPublicKey(secretKey); // refuses a wrong length, 0 and k >= n
  const logN = options.logN ?? DEFAULT_LOG_N;
  if (!Number.isInteger(logN) || logN < MIN_ENCRYPT_LOG_N || logN > MAX_LOG_N) {
    throw new AirlockError('invalid_request', `log_n must be an integer ${MIN_ENCRYPT_LOG_N}..${MAX_LOG_N}`);
  }
  const keySecurity = options.keySecurity ?? KeySecurity.unknown;
  if (!Object.values(KeySecurity).includes(keySecurity)) throw new AirlockError('invalid_request', 'the key-security byte is 0, 1 or 2');
  const salt = options.salt ?? randomBytes(SALT_BYTES);
  const nonce = options.nonce ?? randomBytes(NONCE_BYTES);
  if (salt.length !== SALT_BYTES || nonce.length !== NONCE_BYTES) throw new AirlockError('invalid_request', 'salt is 16 bytes and nonce 24 bytes');

  const key = await passwordKey(password, salt, logN);
  try {
    const ciphertext = xchacha20poly1305(key, nonce, Uint8Array.of(keySecurity)).encrypt(secretKey);
    const payload = new Uint8Array(PAYLOAD_BYTES);
    payload.set([VERSION, logN], 0);
    payload.set(salt, 2);
    payload.set(nonce, 2 + SALT_BYTES);
    payload[2 + SALT_BYTES + NONCE_BYTES] = keySecurity;
    payload.set(ciphertext, 3 + SALT_BYTES + NONCE_BYTES);
    const ncryptsec = bech32.encode(PREFIX, bech32.toWords(payload), BECH32_LIMIT);

    // A backup that does not open back to the key is worse than none: the operator would trust it. Parse
    // the string as a reader would and open it with the same scrypt key (scrypt itself is deterministic).
    const check = openPayload(decodePayload(ncryptsec), key);
    const same = check.length === secretKey.length && check.every((b, i) => b === secretKey[i]);
    check.fill(0);
    if (!same) throw new AirlockError('internal', 'the ncryptsec did not decrypt back to the key; nothing was exported');
    return ncryptsec;
  } finally {
    key.fill(0);
  }
}

export interface DecryptedNcryptsec {
  /** Secret: the caller must zero it. */
  secretKey: Uint8Array;
  logN: number;
  keySecurity: KeySecurityByte;
}

/** Decrypts an `ncryptsec1…`. A wrong password and a tampered string both fail the Poly1305 check. */
export async function decryptNcryptsec(ncryptsec: string, password: string): Promise<DecryptedNcryptsec> {
  const payload = decodePayload(ncryptsec);
  const logN = payload[1]!;
  if (logN > MAX_LOG_N) throw new AirlockError('invalid_request', `the ncryptsec asks for log_n ${logN}; at most ${MAX_LOG_N} is accepted`);
  // scrypt needs N = 2^log_n of at least 2: a crafted log_n of 0 made the library throw a plain Error (found by review).
  if (logN < 1) throw new AirlockError('invalid_request', 'the ncryptsec asks for log_n 0; scrypt needs at least 1');
  const keySecurity = payload[2 + SALT_BYTES + NONCE_BYTES]!;
  if (keySecurity > KeySecurity.unknown) throw new AirlockError('invalid_request', 'the ncryptsec has an unknown key-security byte');
  const key = await passwordKey(password, payload.subarray(2, 2 + SALT_BYTES), logN);
  try {
    return { secretKey: openPayload(payload, key), logN, keySecurity: keySecurity as KeySecurityByte };
  } finally {
    key.fill(0);
  }
}

/** XChaCha20-Poly1305 open of a decoded payload, the key-security byte as associated data. */
function openPayload(payload: Uint8Array, key: Uint8Array): Uint8Array {
  const nonce = payload.subarray(2 + SALT_BYTES, 2 + SALT_BYTES + NONCE_BYTES);
  const keySecurity = payload.subarray(2 + SALT_BYTES + NONCE_BYTES, 3 + SALT_BYTES + NONCE_BYTES);
  try {
    return xchacha20poly1305(key, nonce, keySecurity).decrypt(payload.subarray(3 + SALT_BYTES + NONCE_BYTES));
  } catch {
    throw new AirlockError('invalid_request', 'the password does not decrypt this ncryptsec (or the string was altered)');
  }
}

function decodePayload(ncryptsec: string): Uint8Array {
  if (typeof ncryptsec !== 'string' || !ncryptsec.toLowerCase().startsWith(`${PREFIX}1`)) {
    throw new AirlockError('invalid_request', 'expected an ncryptsec1… string');
  }
  let words: number[];
  try {
    ({ words } = bech32.decode(ncryptsec as `${string}1${string}`, BECH32_LIMIT));
  } catch {
    // @scure/base errors quote the input; say what is wrong without it.
    throw new AirlockError('invalid_request', 'the ncryptsec is not valid bech32 (a character is mistyped or missing)');
  }
  const payload = bech32.fromWordsUnsafe(words);
  if (!payload || payload.length !== PAYLOAD_BYTES) throw new AirlockError('invalid_request', `an ncryptsec holds ${PAYLOAD_BYTES} bytes`);
  if (payload[0] !== VERSION) throw new AirlockError('invalid_request', `unsupported ncryptsec version ${payload[0]} (only 2 is defined)`);
  return payload;
}

/** scrypt(NFKC(password), salt, N = 2^logN, r = 8, p = 1) -> 32 bytes. */
function passwordKey(password: string, salt: Uint8Array, logN: number): Promise<Uint8Array> {
  if (typeof password !== 'string' || password === '') throw new AirlockError('invalid_request', 'the password is empty');
  const N = 2 ** logN;
  // noble refuses by default above 1 GiB (128 * r * N bytes); raise its cap to exactly what this N needs.
  return scryptAsync(new TextEncoder().encode(password.normalize('NFKC')), salt, { N, r: 8, p: 1, dkLen: 32, maxmem: 128 * 8 * N + 1024 * 1024 });
}
