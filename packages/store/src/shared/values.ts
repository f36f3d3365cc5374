import { AirlockError } from '@airlock/core';

/**
 * Conversions for values read back from either dialect. `pg` returns INT8 and NUMERIC as strings and
 * `node:sqlite` returns INTEGER as number: both are normalised here, and amounts never pass through a
 * JS number (a float silently corrupts anything above 2^53).
 */
export function toInt(value: unknown): number {
  const n = typeof value === 'number' ? value : typeof value === 'bigint' ? Number(value) : Number(String(value));
  if (!Number.isSafeInteger(n)) throw new AirlockError('internal', 'store returned a non-integer where an integer was expected');
  return n;
}

export function toOptionalInt(value: unknown): number | undefined {
  return value === null || value === undefined ? undefined : toInt(value);
}

export function toAmount(value: unknown): bigint {
  if (typeof value === 'bigint') return value;
  const text = typeof value === 'number' ? String(value) : String(value ?? '0');
  // NUMERIC(78,0) can print as "123" only; anything else means the column was written by something else.
  if (!/^-?\d+$/.test(text)) throw new AirlockError('internal', 'store returned a malformed amount');
  return BigInt(text);
}

/** JSON columns are written as canonical JSON text and always read back as text (see each dialect). */
export function fromJson(value: unknown): unknown {
  if (value === null || value === undefined) return undefined;
  return JSON.parse(String(value));
}

export function toOptionalString(value: unknown): string | undefined {
  return value === null || value === undefined ? undefined : String(value);
}

export const DEFAULT_LIST_LIMIT = 100;
export const MAX_LIST_LIMIT = 1000;
/** readAudit pages (verify/export stream the whole log). */
export const MAX_READ_PAGE = 10_000;

export function clampLimit(limit: number | undefined, fallback = DEFAULT_LIST_LIMIT, max = MAX_LIST_LIMIT): number {
  if (limit === undefined) return fallback;
  if (!Number.isInteger(limit) || limit < 1) throw new AirlockError('invalid_request', 'limit must be a positive integer');
  return Math.min(limit, max);
}
