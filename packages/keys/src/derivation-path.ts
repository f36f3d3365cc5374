/**
 * BIP-32 derivation paths in the one spelling Airlock accepts: `m/44'/60'/0'/0/7`.
 * One spelling per key keeps cache keys, audit entries and agent records comparable.
 */
import { AirlockError } from '@airlock/core';
import { HARDENED_OFFSET } from '@scure/bip32';

const MAX_DEPTH = 255; // BIP-32 serialises depth in one byte
const SEGMENT = /^(0|[1-9]\d*)(')?$/; // no leading zeros, `'` marks a hardened index

/** Parses `m/…` into child indexes (hardened ones offset by 2^31). Throws 'invalid_request'. */
export function parseDerivationPath(path: string): number[] {
  if (typeof path !== 'string' || (path !== 'm' && !path.startsWith('m/'))) {
    throw invalidPath('a derivation path starts with "m/"');
  }
  if (path === 'm') return [];
  const segments = path.slice(2).split('/');
  if (segments.length > MAX_DEPTH) throw invalidPath(`a derivation path has at most ${MAX_DEPTH} levels`);
  return segments.map((segment, i) => {
    const match = SEGMENT.exec(segment);
    const index = match ? Number(match[1]) : Number.NaN;
    if (!match || !Number.isSafeInteger(index) || index >= HARDENED_OFFSET) {
      throw invalidPath(`level ${i + 1} of the derivation path is not an index 0..2^31-1 with an optional ' marker`);
    }
    return match[2] ? index + HARDENED_OFFSET : index;
  });
}

/** Inverse of parseDerivationPath, used to name cached parents. */
export function formatDerivationPath(indexes: readonly number[]): string {
  return ['m', ...indexes.map((i) => (i >= HARDENED_OFFSET ? `${i - HARDENED_OFFSET}'` : String(i)))].join('/');
}

/** BIP-44 path of an EVM agent key: `m/44'/60'/account'/0/index`. */
export function evmPath(account: number, index: number): string {
  assertIndex(account, 'account');
  assertIndex(index, 'index');
  return `m/44'/60'/${account}'/0/${index}`;
}

/**
 * Key that signs audit checkpoints. It sits under its own hardened purpose (7447 is used by no BIP
 * and no chain we sign for), so it never equals a key that holds funds, and an agent's leaked
 * child key plus any xpub cannot be used to compute it (hardened derivation needs the parent's
 * private key). Checkpoint signatures therefore stay trustworthy after an agent key is compromised.
 */
export const AUDIT_KEY_PATH = "m/7447'/0'/0'";

/**
 * Key whose HMAC derives the webhook signing secrets (KeyBackend.deriveSecret): under Airlock's own purpose like
 * the audit key, hardened, and used for nothing else, so no public key or agent key reveals anything about it.
 */
export const WEBHOOK_SECRET_KEY_PATH = "m/7447'/1'/0'";

function assertIndex(value: number, name: string): void {
  if (!Number.isSafeInteger(value) || value < 0 || value >= HARDENED_OFFSET) {
    throw new AirlockError('invalid_request', `${name} must be an integer 0..2^31-1`);
  }
}

function invalidPath(message: string): AirlockError {
  return new AirlockError('invalid_request', message, { hints: ["example: m/44'/60'/0'/0/0"] });
}
