/**
 * NIP-01 event checks the bunker applies to every kind-24133 envelope it receives (a relay is not trusted to
 * have checked): the shape, the id (sha256 of the canonical serialization) and the BIP-340 signature.
 */
import { schnorr } from '@noble/curves/secp256k1.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, hexToBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import type { SignedNostrEvent } from './port.ts';

const HEX64 = /^[0-9a-f]{64}$/;
const HEX128 = /^[0-9a-f]{128}$/;

/** NIP-01: the id is sha256 of `[0, pubkey, created_at, kind, tags, content]` as compact JSON. */
export function nostrEventId(e: Pick<SignedNostrEvent, 'pubkey' | 'created_at' | 'kind' | 'tags' | 'content'>): string {
  return bytesToHex(sha256(utf8ToBytes(JSON.stringify([0, e.pubkey, e.created_at, e.kind, e.tags, e.content]))));
}

export function isHexPubkey(value: unknown): value is string {
  return typeof value === 'string' && HEX64.test(value);
}

/** True when `e` is a well-formed event whose id matches its content and whose signature is by its pubkey. */
export function isValidSignedEvent(e: unknown): e is SignedNostrEvent {
  if (typeof e !== 'object' || e === null) return false;
  const ev = e as Record<string, unknown>;
  if (!isHexPubkey(ev.id) || !isHexPubkey(ev.pubkey) || typeof ev.sig !== 'string' || !HEX128.test(ev.sig)) return false;
  if (!Number.isInteger(ev.created_at) || !Number.isInteger(ev.kind) || typeof ev.content !== 'string') return false;
  if (!Array.isArray(ev.tags) || !ev.tags.every((t) => Array.isArray(t) && t.every((x) => typeof x === 'string'))) return false;
  const event = ev as unknown as SignedNostrEvent;
  if (nostrEventId(event) !== event.id) return false;
  try {
    return schnorr.verify(hexToBytes(event.sig), hexToBytes(event.id), hexToBytes(event.pubkey));
  } catch {
    return false;
  }
}
