// Checks a version-3 entry's columns against its stored leaf (docs/audit-format.md): the leaf must be
// auditLeafPrefix(columns) || data || auditLeafSuffix(columns) with data a JSON object ({…}). The object
// matters: without it a row whose decision was set to NULL still matched, its leaf's `,"decision":…`
// member taken for the end of the data. That the data is an object, and the canonical JSON of one, is only
// shown by parsing it (`isCanonicalJsonObject`): `{"a":1},"decision":"allow","z":{…}` also starts with `{` and
// ends with `}` (found by review). Verifiers parse it where no signed head protects the leaf yet. `audit verify` runs
// this once per entry, so it matches the prefix forward from the start and the suffix backward from the
// end, piece by piece, without building either string: a column value that JSON writes as itself between
// quotes (no quote, backslash, control character or surrogate) is compared in place, anything else
// through JSON.stringify, exactly as the writer wrote it.
import { isCanonicalJsonObjectText } from '../canonical-json-check.ts';
import type { AuditLeafFields } from './hash.ts';

const QUOTE = 34;

/** Would JSON.stringify write this character as itself? (Not a quote, backslash, control character or surrogate.) */
const plain = (c: number) => c >= 0x20 && c !== QUOTE && c !== 92 && (c < 0xd800 || c > 0xdfff);

/** `text` at `at`: the position after it, or -1. */
function literal(leaf: string, at: number, text: string): number {
  return at >= 0 && leaf.startsWith(text, at) ? at + text.length : -1;
}

/** `text` ending at `end`: the position where it starts, or -1. */
function literalBefore(leaf: string, end: number, text: string): number {
  const at = end - text.length;
  return end >= 0 && at >= 0 && leaf.startsWith(text, at) ? at : -1;
}

/**
 * `value` between quotes at `at`, every character of it plain: the position after it; -1 if the leaf
 * differs; -2 if a character of the value is not plain (then JSON.stringify decides).
 */
function quotedInPlace(leaf: string, at: number, value: string): number {
  if (at < 0 || leaf.charCodeAt(at) !== QUOTE) return -1;
  let i = 0;
  for (; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (!plain(c)) return -2;
    if (leaf.charCodeAt(at + 1 + i) !== c) return -1;
  }
  return leaf.charCodeAt(at + 1 + i) === QUOTE ? at + 2 + i : -1;
}

/** The JSON string of `value` at `at`: the position after it, or -1. */
function jsonString(leaf: string, at: number, value: string): number {
  const end = typeof value === 'string' ? quotedInPlace(leaf, at, value) : -2;
  return end !== -2 ? end : literal(leaf, at, JSON.stringify(value));
}

/** `quotedInPlace` backward: `value` between quotes ending at `end`: the position where it starts, -1 or -2. */
function quotedInPlaceBefore(leaf: string, end: number, value: string): number {
  // Compared from the end: up to the first character that is not plain, JSON.stringify writes the same.
  if (end < 1 || leaf.charCodeAt(end - 1) !== QUOTE) return -1;
  const at = end - 2 - value.length;
  for (let i = value.length - 1; i >= 0; i--) {
    const c = value.charCodeAt(i);
    if (!plain(c)) return -2;
    if (at + 1 + i < 0 || leaf.charCodeAt(at + 1 + i) !== c) return -1;
  }
  return at >= 0 && leaf.charCodeAt(at) === QUOTE ? at : -1;
}

/** The JSON string of `value` ending at `end`: the position where it starts, or -1. */
function jsonStringBefore(leaf: string, end: number, value: string): number {
  const at = typeof value === 'string' ? quotedInPlaceBefore(leaf, end, value) : -2;
  return at !== -2 ? at : literalBefore(leaf, end, JSON.stringify(value));
}

// JSON.stringify of a non-negative integer below 1e15 is its digits with no leading zero; such a number is
// compared digit by digit in place (no string made for it). Any other value goes through JSON.stringify.
const inPlace = (n: unknown): n is number => typeof n === 'number' && Number.isInteger(n) && n >= 0 && n < 1e15;
const MAX_DIGITS = 15;

/** The JSON number of `n` at `at`: the position after it, or -1. */
function jsonInteger(leaf: string, at: number, n: number): number {
  if (!inPlace(n)) return literal(leaf, at, JSON.stringify(n));
  if (at < 0) return -1;
  let value = 0;
  let end = at;
  for (; end < leaf.length && end - at <= MAX_DIGITS; end++) {
    const digit = leaf.charCodeAt(end) - 48;
    if (digit < 0 || digit > 9) break;
    value = value * 10 + digit;
  }
  const digits = end - at;
  return digits > 0 && digits <= MAX_DIGITS && value === n && (digits === 1 || leaf.charCodeAt(at) !== 48) ? end : -1;
}

/** The JSON number of `n` ending at `end`: the position where it starts, or -1. */
function jsonIntegerBefore(leaf: string, end: number, n: number): number {
  if (!inPlace(n)) return literalBefore(leaf, end, JSON.stringify(n));
  if (end < 0) return -1;
  let value = 0;
  let scale = 1;
  let at = end;
  for (; at > 0 && end - at <= MAX_DIGITS; at--, scale *= 10) {
    const digit = leaf.charCodeAt(at - 1) - 48;
    if (digit < 0 || digit > 9) break;
    value += digit * scale;
  }
  const digits = end - at;
  return digits > 0 && digits <= MAX_DIGITS && value === n && (digits === 1 || leaf.charCodeAt(at) !== 48) ? at : -1;
}

/**
 * The same answer as `leaf.startsWith(prefix) && leaf.endsWith(suffix)` with what lies between them
 * (the data) starting with `{` and ending with `}`, for prefix = auditLeafPrefix(e) and suffix =
 * auditLeafSuffix(e).
 */
export function leafMatchesFields(leaf: string, e: AuditLeafFields): boolean {
  return isObjectBetween(leaf, dataStart(leaf, e), dataEnd(leaf, e));
}

/** The data of `leaf` (the text between prefix and suffix) when `leafMatchesFields(leaf, e)`; otherwise undefined. */
export function leafDataIfFieldsMatch(leaf: string, e: AuditLeafFields): string | undefined {
  const start = dataStart(leaf, e);
  const end = dataEnd(leaf, e);
  return isObjectBetween(leaf, start, end) ? leaf.slice(start, end) : undefined;
}

/**
 * Is `text` the RFC 8785 canonical JSON of one object, as the writer makes a leaf's data (`canonicalJson`)? It
 * must parse as a JSON object and serialise back to exactly itself: no members after the object, no duplicate
 * or unsorted keys, no whitespace, every number and string in its one form. Answered in one pass over the text
 * (canonical-json-check.ts), without parsing it and writing it again.
 */
export function isCanonicalJsonObject(text: string): boolean {
  return isCanonicalJsonObjectText(text);
}

/** Where the data starts (its `{`) when the prefix matches: {"action":…,"actor":…,"agentId":…,"at":…,"data": ; or -1. */
function dataStart(leaf: string, e: AuditLeafFields): number {
  let p: number;
  if (e.action !== undefined) p = literal(leaf, jsonString(leaf, literal(leaf, 0, '{"action":'), e.action), ',"actor":');
  else p = literal(leaf, 0, '{"actor":');
  p = jsonString(leaf, p, e.actor);
  if (e.agentId !== undefined) p = jsonString(leaf, literal(leaf, p, ',"agentId":'), e.agentId);
  return literal(leaf, jsonInteger(leaf, literal(leaf, p, ',"at":'), e.at), ',"data":');
}

/**
 * Where the data ends (one past its `}`) when the suffix matches, read from the end back:
 * ,"decision":…,"seq":…,"sessionId":…,"type":…} ; or -1.
 */
function dataEnd(leaf: string, e: AuditLeafFields): number {
  let s = literalBefore(leaf, leaf.length, '}');
  s = literalBefore(leaf, jsonStringBefore(leaf, s, e.type), ',"type":');
  if (e.sessionId !== undefined) s = literalBefore(leaf, jsonStringBefore(leaf, s, e.sessionId), ',"sessionId":');
  s = literalBefore(leaf, jsonIntegerBefore(leaf, s, e.seq), ',"seq":');
  if (e.decision !== undefined) s = literalBefore(leaf, jsonStringBefore(leaf, s, e.decision), ',"decision":');
  return s;
}

/** Both ends found, and what lies between them starts and ends as an object does. */
function isObjectBetween(leaf: string, start: number, end: number): boolean {
  return start >= 0 && end - start >= 2 && leaf.charCodeAt(start) === 123 && leaf.charCodeAt(end - 1) === 125;
}
