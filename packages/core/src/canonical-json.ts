/**
 * Canonical JSON per RFC 8785 (JSON Canonicalization Scheme, JCS): object members sorted by the UTF-16
 * code units of their names (RFC 8785 §3.2.3), no whitespace, numbers as ECMAScript's
 * Number.prototype.toString (§3.2.2.3), strings escaped as JSON.stringify does (§3.2.2.2). Equal values
 * always serialise to the same bytes and different values to different bytes, which is what hashing
 * (audit chain, policy versions, idempotency) needs.
 *
 * Our extensions for values JSON has no type for: bigint -> decimal string, Uint8Array -> hex string,
 * undefined members dropped (undefined array items become null), toJSON honoured (a Date is its ISO
 * string). A lone surrogate, which RFC 8785 refuses (it is not I-JSON), is written as JSON.stringify
 * escapes it (`"\ud800"`) rather than failing: the output stays injective and hashing never throws on
 * a string the edge let in.
 *
 * Members are written in sorted order while serialising. Building a sorted copy and handing it to
 * JSON.stringify is what made the previous form non-canonical: the engine lists integer-like keys
 * first in numeric order (`{"9":1,"10":2}` stayed unsorted), and assigning a `__proto__` member to a
 * plain object sets its prototype instead, so the member vanished (two payloads, one hash).
 */
export function canonicalJson(value: unknown): string {
  const out = write(value, 0);
  if (out === undefined) throw new TypeError('canonicalJson: value is not serialisable');
  return out;
}

/**
 * Far deeper than anything the edge admits (parseUntrustedJson stops at 64): reaching it means an
 * internal value is cyclic or runaway, and a named error beats a stack overflow.
 */
const MAX_DEPTH = 1000;

function write(value: unknown, depth: number): string | undefined {
  switch (typeof value) {
    case 'string':
      return writeString(value);
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError('canonicalJson: non-finite number');
      // RFC 8785 §3.2.2.3 is ECMAScript's Number::toString, which JSON.stringify applies (and -0 -> 0).
      return JSON.stringify(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'bigint':
      // Digits and an optional minus sign: nothing to escape.
      return '"' + value.toString() + '"';
    case 'undefined':
      return undefined;
    case 'object':
      if (value === null) return 'null';
      if (depth >= MAX_DEPTH) throw new TypeError('canonicalJson: value nested too deeply (or cyclic)');
      if (Array.isArray(value)) return writeArray(value, depth + 1);
      if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return write((value as { toJSON(key: string): unknown }).toJSON(''), depth + 1);
      if (value instanceof Uint8Array) return '"' + Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('hex') + '"';
      return writeObject(value as Record<string, unknown>, depth + 1);
    default:
      throw new TypeError(`canonicalJson: unsupported type ${typeof value}`);
  }
}

function writeArray(items: unknown[], depth: number): string {
  let out = '[';
  for (let i = 0; i < items.length; i++) {
    if (i > 0) out += ',';
    out += write(items[i], depth) ?? 'null';
  }
  return out + ']';
}

function writeObject(obj: Record<string, unknown>, depth: number): string {
  // Array.prototype.sort's default order compares UTF-16 code units: exactly RFC 8785 §3.2.3.
  const keys = Object.keys(obj).sort();
  let out = '{';
  let first = true;
  for (const key of keys) {
    // An own `__proto__` data property (JSON.parse makes them) shadows the accessor, so this reads it.
    const member = write(obj[key], depth);
    if (member === undefined) continue;
    if (!first) out += ',';
    out += writeString(key) + ':' + member;
    first = false;
  }
  return out + '}';
}

/** What JSON.stringify may escape: '"', '\\', control characters, surrogates (it escapes lone ones only). */
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

/**
 * RFC 8785 §3.2.2.2 escapes exactly what JSON.stringify escapes. Most strings (ids, hex, addresses)
 * need nothing, and quoting them directly keeps the writer faster than the JSON.stringify form it replaced.
 */
function writeString(s: string): string {
  return NEEDS_ESCAPE.test(s) ? JSON.stringify(s) : '"' + s + '"';
}

/**
 * The form audit entries were hashed with before RFC 8785 (audit hash version 1). For verifying those
 * entries only: it is not canonical (integer-like keys come first in numeric order) and drops
 * `__proto__` members. Never use it to hash anything new.
 */
export function legacyCanonicalJson(value: unknown): string {
  const out = JSON.stringify(value, legacyReplacer);
  if (out === undefined) throw new TypeError('canonicalJson: value is not serialisable');
  return out;
}

function legacyReplacer(this: unknown, _key: string, value: unknown): unknown {
  switch (typeof value) {
    case 'bigint':
      return value.toString();
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError('canonicalJson: non-finite number');
      return value;
    case 'function':
    case 'symbol':
      throw new TypeError(`canonicalJson: unsupported type ${typeof value}`);
    case 'object': {
      if (value === null || Array.isArray(value)) return value;
      if (value instanceof Uint8Array) return Buffer.from(value).toString('hex');
      const keys = Object.keys(value).sort();
      const sorted: Record<string, unknown> = {};
      for (const k of keys) sorted[k] = (value as Record<string, unknown>)[k];
      return sorted;
    }
    default:
      return value;
  }
}

/** JSON.stringify replacer that writes bigints as decimal strings. */
export function bigintReplacer(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? value.toString() : value;
}
