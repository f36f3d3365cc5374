// NIP-01 events: validation of what an agent asks to sign, the canonical serialisation and the event id.
import { AirlockError } from '@airlock/core';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils.js';

export interface UnsignedEvent {
  kind: number;
  tags: string[][];
  content: string;
  created_at: number;
  pubkey: string;
}

export const HEX32 = /^[0-9a-f]{64}$/;
/** Bounds that keep one request small; relays refuse far less than this anyway. */
const MAX_TAGS = 2_000;
const MAX_TAG_ITEMS = 64;
const EVENT_KEYS = new Set(['kind', 'tags', 'content', 'created_at', 'pubkey']);

function invalid(message: string): AirlockError {
  return new AirlockError('invalid_request', message);
}

/**
 * An unsigned event as the agent sent it, checked field by field (fail closed: an unknown field, a float kind,
 * a tag that is not a list of strings is refused, never coerced). `pubkey`, when given, must be the signer's.
 */
export function parseUnsignedEvent(payload: unknown, signerPubkey: string): UnsignedEvent {
  if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) throw invalid('the event must be a JSON object');
  const raw = payload as Record<string, unknown>;
  for (const key of Object.keys(raw)) if (!EVENT_KEYS.has(key)) throw invalid(`unknown event field: ${JSON.stringify(key.slice(0, 40))} (an unsigned event has kind, tags, content, created_at and optionally pubkey)`);
  const { kind, tags, content, created_at: createdAt, pubkey } = raw;
  if (typeof kind !== 'number' || !Number.isInteger(kind) || kind < 0 || kind > 65535) throw invalid('kind: an integer in 0..65535');
  if (typeof createdAt !== 'number' || !Number.isSafeInteger(createdAt) || createdAt < 0) throw invalid('created_at: unix seconds, a non-negative integer');
  if (typeof content !== 'string') throw invalid('content: a string');
  if (!Array.isArray(tags) || tags.length > MAX_TAGS) throw invalid(`tags: a list of at most ${MAX_TAGS} tags`);
  tags.forEach((tag, i) => {
    if (!Array.isArray(tag) || tag.length === 0 || tag.length > MAX_TAG_ITEMS || !tag.every((v) => typeof v === 'string')) {
      throw invalid(`tags[${i}]: a non-empty list of strings`);
    }
  });
  if (pubkey !== undefined && pubkey !== signerPubkey) throw invalid("pubkey: when given it must be this agent's Nostr pubkey (GET /v1/nostr/identity)");
  // Whatever path the event came by (HTTP, NIP-46, MCP): a lone surrogate has no UTF-8 form, so the id would be
  // computed over other text than was sent, and PostgreSQL's jsonb refuses it in a held request.
  if (!content.isWellFormed() || !(tags as string[][]).every((tag) => tag.every((v) => v.isWellFormed()))) throw invalid('content and tags must be well-formed Unicode (no lone surrogates)');
  return { kind, tags: tags as string[][], content, created_at: createdAt, pubkey: signerPubkey };
}

/** NIP-01: sha256 of the UTF-8 JSON array `[0, pubkey, created_at, kind, tags, content]` (JSON.stringify escapes as NIP-01 asks). */
export function serializeEvent(event: UnsignedEvent): string {
  return JSON.stringify([0, event.pubkey, event.created_at, event.kind, event.tags, event.content]);
}

export function eventIdBytes(event: UnsignedEvent): Uint8Array {
  return sha256(utf8ToBytes(serializeEvent(event)));
}

export function eventId(event: UnsignedEvent): string {
  return bytesToHex(eventIdBytes(event));
}
