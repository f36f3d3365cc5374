import { AirlockError, parseUntrustedJson } from '@airlock/core';

/**
 * What travels over the key process's socket: JSON, with the two values JSON has no type for tagged so they
 * arrive as they left (a payload's bigints feed its request hash; keys and signatures are bytes). A payload
 * that happens to hold such a tag arrives changed: its request hash no longer matches and the key process
 * refuses it (fail closed, never a different signature).
 */
export function encodeWire(value: unknown): string {
  return JSON.stringify(value, function (this: unknown, key: string, v: unknown) {
    // JSON.stringify hands a Uint8Array's elements one by one unless it is replaced before: read it off the holder.
    const raw = key === '' ? v : (this as Record<string, unknown>)[key];
    if (typeof raw === 'bigint') return { $bigint: raw.toString() };
    if (raw instanceof Uint8Array) return { $bytes: Buffer.from(raw).toString('hex') };
    return v;
  });
}

/** The inverse of encodeWire, with the untrusted-JSON checks (no prototype keys, bounded depth). */
export function decodeWire(text: string): unknown {
  return revive(parseUntrustedJson(text, { subject: 'The key process message' }));
}

function revive(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(revive);
  if (value === null || typeof value !== 'object') return value;
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record);
  if (keys.length === 1 && typeof record.$bigint === 'string' && /^-?\d{1,80}$/.test(record.$bigint)) return BigInt(record.$bigint);
  if (keys.length === 1 && typeof record.$bytes === 'string' && /^([0-9a-f]{2}){0,4096}$/.test(record.$bytes)) return new Uint8Array(Buffer.from(record.$bytes, 'hex'));
  const out: Record<string, unknown> = {};
  for (const key of keys) out[key] = revive(record[key]);
  return out;
}

/** The key process's methods: what KeyBackend offers, with the two bound forms and a greeting. */
export const KEY_PROCESS_METHODS = [
  'hello', 'getPublicKey', 'getExtendedPublicKey', 'signBound', 'signTreeHead',
  'signDigest', 'signTaprootKeyPath', 'signSchnorr', 'nip44ConversationKey', 'nip04SharedSecret', 'deriveSecret',
] as const;
export type KeyProcessMethod = (typeof KEY_PROCESS_METHODS)[number];

export function isKeyProcessMethod(name: string): name is KeyProcessMethod {
  return (KEY_PROCESS_METHODS as readonly string[]).includes(name);
}

/** The error body both sides agree on: a stable code, a message without secrets, details (the refusal's reason). */
export interface WireError {
  code: string;
  message: string;
  details?: Record<string, unknown>;
}

export function wireError(e: unknown): WireError {
  if (e instanceof AirlockError) return { code: e.code, message: e.message, ...(e.details ? { details: e.details } : {}) };
  return { code: 'internal', message: 'The key process failed; nothing was signed.' };
}
