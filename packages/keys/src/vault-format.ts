/**
 * The vault file, version 1: a JSON header plus hex ciphertext.
 *
 *   {format:"airlock-vault", version:1,
 *    kdf:{alg:"argon2id", memoryKiB, passes, parallelism, salt},
 *    cipher:{alg:"xchacha20poly1305", nonce}, ciphertext}
 *
 * The header's canonical JSON is the AEAD's associated data, so editing any header field
 * (e.g. lowering the KDF cost) makes decryption fail. The parser is strict: unknown or missing
 * fields, non-lowercase hex and impossible lengths are 'vault_corrupt' before any KDF runs.
 */
import { AirlockError, canonicalJson } from '@airlock/core';
import { ENTROPY_LENGTHS } from './seed.ts';

export const VAULT_FORMAT = 'airlock-vault';
export const VAULT_VERSION = 1;
export const SALT_BYTES = 16;
export const NONCE_BYTES = 24; // XChaCha20: random nonces are safe at this size
const TAG_BYTES = 16; // Poly1305
export const MAX_VAULT_FILE_BYTES = 64 * 1024;

export interface KdfParams {
  /** Argon2 memory cost in KiB. */
  memoryKiB: number;
  /** Argon2 time cost (passes over memory). */
  passes: number;
  /** Argon2 lanes. */
  parallelism: number;
}

/** The defaults are also the minimum a vault may use (OWASP's first argon2id option is weaker: 19 MiB, t=2). */
export const DEFAULT_KDF_PARAMS: Readonly<KdfParams> = Object.freeze({ memoryKiB: 65536, passes: 3, parallelism: 4 });
export const MIN_KDF_PARAMS: Readonly<KdfParams> = DEFAULT_KDF_PARAMS;
/** Upper bounds so a crafted header cannot make opening take hours or exhaust memory. */
export const MAX_KDF_PARAMS: Readonly<KdfParams> = Object.freeze({ memoryKiB: 4 * 1024 * 1024, passes: 64, parallelism: 64 });

export interface VaultHeader {
  format: typeof VAULT_FORMAT;
  version: typeof VAULT_VERSION;
  kdf: { alg: 'argon2id'; salt: string } & KdfParams;
  cipher: { alg: 'xchacha20poly1305'; nonce: string };
}

export interface VaultFile extends VaultHeader {
  ciphertext: string;
}

/** AEAD associated data: binds every header field to the ciphertext. */
export function headerAad(header: VaultHeader): Uint8Array {
  const { format, version, kdf, cipher } = header;
  return new TextEncoder().encode(canonicalJson({ format, version, kdf, cipher }));
}

export function serializeVaultFile(file: VaultFile): string {
  const { format, version, kdf, cipher, ciphertext } = file;
  return `${JSON.stringify({ format, version, kdf, cipher, ciphertext }, null, 2)}\n`;
}

export function parseVaultFile(text: string): VaultFile {
  if (text.length > MAX_VAULT_FILE_BYTES) throw corrupt('the file is too large to be a vault');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw corrupt('the file is not JSON (truncated or not a vault)');
  }
  const file = asObject(json, 'the file', ['format', 'version', 'kdf', 'cipher', 'ciphertext']);
  if (file.format !== VAULT_FORMAT) throw corrupt('the file is not an airlock vault');
  if (file.version !== VAULT_VERSION) {
    throw corrupt('unsupported vault version', { hints: [`this build reads version ${VAULT_VERSION}`] });
  }
  const kdf = asObject(file.kdf, 'kdf', ['alg', 'memoryKiB', 'passes', 'parallelism', 'salt']);
  if (kdf.alg !== 'argon2id') throw corrupt('kdf.alg must be argon2id');
  const params = {
    memoryKiB: asCount(kdf.memoryKiB, 'kdf.memoryKiB'),
    passes: asCount(kdf.passes, 'kdf.passes'),
    parallelism: asCount(kdf.parallelism, 'kdf.parallelism'),
  };
  const salt = asHex(kdf.salt, 'kdf.salt');
  if (salt.length / 2 < SALT_BYTES) throw corrupt(`kdf.salt must be at least ${SALT_BYTES} bytes`);
  const cipher = asObject(file.cipher, 'cipher', ['alg', 'nonce']);
  if (cipher.alg !== 'xchacha20poly1305') throw corrupt('cipher.alg must be xchacha20poly1305');
  const nonce = asHex(cipher.nonce, 'cipher.nonce');
  if (nonce.length / 2 !== NONCE_BYTES) throw corrupt(`cipher.nonce must be ${NONCE_BYTES} bytes`);
  const ciphertext = asHex(file.ciphertext, 'ciphertext');
  if (!ENTROPY_LENGTHS.includes(ciphertext.length / 2 - TAG_BYTES)) {
    throw corrupt('the ciphertext has the wrong length (truncated?)');
  }
  return {
    format: VAULT_FORMAT,
    version: VAULT_VERSION,
    kdf: { alg: 'argon2id', ...params, salt },
    cipher: { alg: 'xchacha20poly1305', nonce },
    ciphertext,
  };
}

/**
 * Weak parameters are refused on create and on open: an attacker who can write the file
 * could otherwise swap in a cheap header (the AEAD catches that too, but only after a KDF run).
 */
export function checkKdfParams(params: KdfParams, allowWeakKdf: boolean, onViolation: (message: string) => AirlockError): void {
  for (const name of ['memoryKiB', 'passes', 'parallelism'] as const) {
    if (!Number.isSafeInteger(params[name]) || params[name] < 1) throw onViolation(`kdf ${name} must be a positive integer`);
    if (params[name] > MAX_KDF_PARAMS[name]) throw onViolation(`kdf ${name} is above the maximum ${MAX_KDF_PARAMS[name]}`);
    if (!allowWeakKdf && params[name] < MIN_KDF_PARAMS[name]) {
      throw onViolation(`kdf ${name} is below the minimum ${MIN_KDF_PARAMS[name]}`);
    }
  }
  // argon2 itself requires memory >= 8 KiB per lane.
  if (params.memoryKiB < 8 * params.parallelism) throw onViolation('kdf memoryKiB must be at least 8 x parallelism');
}

export function corrupt(message: string, options: { hints?: string[] } = {}): AirlockError {
  return new AirlockError('vault_corrupt', message, options);
}

function asObject(value: unknown, name: string, keys: readonly string[]): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw corrupt(`${name} must be an object`);
  const record = value as Record<string, unknown>;
  const actual = Object.keys(record).sort();
  const expected = [...keys].sort();
  if (actual.length !== expected.length || actual.some((k, i) => k !== expected[i])) {
    throw corrupt(`${name} must have exactly the fields ${expected.join(', ')}`);
  }
  return record;
}

function asCount(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) throw corrupt(`${name} must be a positive integer`);
  return value;
}

function asHex(value: unknown, name: string): string {
  if (typeof value !== 'string' || !/^(?:[0-9a-f]{2})+$/.test(value)) throw corrupt(`${name} must be lowercase hex`);
  return value;
}
