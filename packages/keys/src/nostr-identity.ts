/**
 * An agent's Nostr identity (NIP-06, NIP-19).
 *
 * NIP-06: the key of account `a` is the BIP-32 node at m/44'/1237'/a'/0/0 of the BIP-39 seed (1237 is
 * Nostr's SLIP-44 coin type); its public key is the BIP-340 x-only key. Airlock gives agent `n` the account
 * of its `accountIndex`, so the same recovery phrase restores every agent's Nostr key in any NIP-06 wallet.
 *
 * NIP-19: `npub` / `nsec` are bech32 (not bech32m) of the raw 32 bytes under those prefixes. They are for
 * display and backup only; the protocol itself uses hex.
 */
import { AirlockError, nostrIdentityPath } from '@airlock/core';
import { schnorr } from '@noble/curves/secp256k1.js';
import { bech32 } from '@scure/base';
import type { HDKey } from '@scure/bip32';
import { deriveRootFromEntropy, entropyFromMnemonic } from './seed.ts';

export { NOSTR_COIN_TYPE } from '@airlock/core';
/** NIP-06 path of an account: `m/44'/1237'/account'/0/0` (core's nostrIdentityPath, shared with the adapter). */
export const nostrPath = nostrIdentityPath;

/**
 * The private key of `account` below a BIP-32 root. Secret: the caller must zero the returned bytes.
 * The derived child node is wiped before returning; the root is left as it was.
 */
export function nostrSecretKeyFromRoot(root: HDKey, account: number): Uint8Array {
  const node = root.derive(nostrPath(account));
  try {
    if (!node.privateKey) throw new AirlockError('internal', 'the root has no private key');
    return Uint8Array.from(node.privateKey);
  } finally {
    node.wipePrivateData();
  }
}

/**
 * NIP-06 from a recovery phrase (English BIP-39, checksum checked; errors never quote a word).
 * `bip39Passphrase` is the optional BIP-39 "25th word"; Airlock's vault uses none.
 */
export function nostrSecretKeyFromMnemonic(mnemonic: string, account = 0, bip39Passphrase = ''): Uint8Array {
  const entropy = entropyFromMnemonic(mnemonic);
  const { seed, root } = deriveRootFromEntropy(entropy, bip39Passphrase);
  try {
    return nostrSecretKeyFromRoot(root, account);
  } finally {
    root.wipePrivateData();
    seed.fill(0);
    entropy.fill(0);
  }
}

/** BIP-340 x-only public key (32 bytes) of a Nostr private key. */
export function nostrPublicKey(secretKey: Uint8Array): Uint8Array {
  assertKeyLength(secretKey, 'private key');
  try {
    return schnorr.getPublicKey(secretKey);
  } catch {
    // noble's message can quote the scalar: say what is wrong and drop the cause.
    throw new AirlockError('invalid_request', 'the private key is not a valid secp256k1 scalar (0 < k < n)');
  }
}

export function encodeNpub(publicKey: Uint8Array): string {
  assertKeyLength(publicKey, 'public key');
  return bech32.encode('npub', bech32.toWords(publicKey));
}

export function encodeNsec(secretKey: Uint8Array): string {
  assertKeyLength(secretKey, 'private key');
  return bech32.encode('nsec', bech32.toWords(secretKey));
}

/** The 32-byte x-only public key of an `npub1…`; anything else is refused. */
export function decodeNpub(npub: string): Uint8Array {
  const publicKey = decodeKey(npub, 'npub');
  // A valid npub must name a point on the curve, or nothing could ever verify under it.
  try {
    schnorr.utils.lift_x(bytesToBigInt(publicKey));
  } catch {
    throw new AirlockError('invalid_request', 'the npub does not name a point on secp256k1');
  }
  return publicKey;
}

/** The 32-byte private key of an `nsec1…`. Secret: the caller must zero it. Errors never quote the input. */
export function decodeNsec(nsec: string): Uint8Array {
  const secretKey = decodeKey(nsec, 'nsec');
  nostrPublicKey(secretKey); // refuses 0 and k >= n
  return secretKey;
}

function decodeKey(text: string, prefix: 'npub' | 'nsec'): Uint8Array {
  if (typeof text !== 'string' || !text.toLowerCase().startsWith(`${prefix}1`)) {
    throw new AirlockError('invalid_request', `expected an ${prefix}1… string`);
  }
  let decoded: { prefix: string; words: number[] };
  try {
    decoded = bech32.decode(text as `${string}1${string}`);
  } catch {
    // @scure/base errors quote the string; for an nsec that is the key itself.
    throw new AirlockError('invalid_request', `the ${prefix} is not valid bech32 (a character is mistyped or missing)`);
  }
  if (decoded.prefix !== prefix) throw new AirlockError('invalid_request', `expected an ${prefix}1… string`);
  const bytes = bech32.fromWordsUnsafe(decoded.words);
  if (!bytes || bytes.length !== 32) throw new AirlockError('invalid_request', `an ${prefix} holds exactly 32 bytes`);
  return bytes;
}

function assertKeyLength(key: Uint8Array, what: string): void {
  if (!(key instanceof Uint8Array) || key.length !== 32) throw new AirlockError('invalid_request', `a Nostr ${what} is 32 bytes`);
}

function bytesToBigInt(bytes: Uint8Array): bigint {
  return BigInt(`0x${Buffer.from(bytes).toString('hex')}`);
}
