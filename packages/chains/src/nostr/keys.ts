// Nostr key paths (NIP-06) and public-key encodings (NIP-19).
import { AirlockError } from '@airlock/core';
import { bech32 } from '@scure/base';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';

const HARDENED_LIMIT = 0x80000000;

function assertAccount(accountIndex: number): void {
  if (!Number.isInteger(accountIndex) || accountIndex < 0 || accountIndex >= HARDENED_LIMIT) throw new AirlockError('invalid_request', 'accountIndex must be an integer in 0..2^31-1');
}

/**
 * NIP-06: m/44'/1237'/<account>'/0/0. One identity per agent (its account index): coin type 1237 is never
 * the funds' 60, so the Nostr key and the EVM keys share nothing but the vault root.
 */
export function nostrIdentityPath(accountIndex: number): string {
  assertAccount(accountIndex);
  return `m/44'/1237'/${accountIndex}'/0/0`;
}

/** The agent's NIP-46 transport key: change 1 of the same account, never the identity. */
export function nostrTransportPath(accountIndex: number): string {
  assertAccount(accountIndex);
  return `m/44'/1237'/${accountIndex}'/1/0`;
}

/** 33-byte compressed key -> x-only lowercase hex (BIP-340: the even-y point with that x). */
export function xOnlyHex(compressed: Uint8Array): string {
  if (!(compressed instanceof Uint8Array) || compressed.length !== 33 || (compressed[0] !== 2 && compressed[0] !== 3)) {
    throw new AirlockError('invalid_request', 'public key must be a 33-byte compressed secp256k1 key');
  }
  return bytesToHex(compressed.subarray(1));
}

/** NIP-19 `npub`: bech32 (not bech32m) of the 32-byte x-only key. */
export function npubEncode(pubkeyHex: string): string {
  return bech32.encode('npub', bech32.toWords(hexToBytes(pubkeyHex)), 5000);
}

export function npubDecode(npub: string): string {
  const { prefix, words } = bech32.decode(npub as `${string}1${string}`, 5000);
  if (prefix !== 'npub') throw new AirlockError('invalid_request', 'expected an npub');
  return bytesToHex(bech32.fromWords(words));
}
