// Is a text the canonical JSON of one object, as `canonicalJson` writes it? The answer is exactly
// `canonicalJson(JSON.parse(text)) === text` with an object at the top (canonical-json-check.test.ts compares the
// two on generated and mutated texts), found in one pass over the characters without building the value: audit
// verify asks it of every leaf no signed tree head covers, and the key process of every leaf at start, where
// parsing and writing the data again cost about 4 µs a leaf.
//
// What canonical means here, character by character (canonical-json.ts): no whitespace; object members in
// strictly increasing order of their names' UTF-16 code units (a duplicate name is not increasing: JSON.parse
// keeps the last and the writer writes it once); strings escaped as JSON.stringify escapes them; numbers as
// Number.prototype.toString writes them; containers nested less than 1,000 deep (the writer's limit).

/** The writer's depth limit (canonical-json.ts MAX_DEPTH): a container at this depth or deeper makes it throw. */
const MAX_DEPTH = 1000;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;

/** Fails the scan: every parse function returns the position after what it read, or this. */
const BAD = -1;

export function isCanonicalJsonObjectText(text: string): boolean {
  return text.charCodeAt(0) === OPEN_OBJECT && value(text, 0, 0) === text.length;
}

function value(t: string, at: number, depth: number): number {
  const c = t.charCodeAt(at);
  if (c === OPEN_OBJECT) return depth >= MAX_DEPTH ? BAD : object(t, at, depth);
  if (c === OPEN_ARRAY) return depth >= MAX_DEPTH ? BAD : array(t, at, depth);
  if (c === QUOTE) return string(t, at);
  if (c === 0x2d || (c >= 0x30 && c <= 0x39)) return number(t, at);
  if (t.startsWith('true', at)) return at + 4;
  if (t.startsWith('false', at)) return at + 5;
  if (t.startsWith('null', at)) return at + 4;
  return BAD;
}

function object(t: string, at: number, depth: number): number {
  let p = at + 1;
  if (t.charCodeAt(p) === CLOSE_OBJECT) return p + 1;
  let previous: string | undefined;
  for (;;) {
    const nameEnd = string(t, p);
    if (nameEnd === BAD || t.charCodeAt(nameEnd) !== COLON) return BAD;
    const name = nameOf(t, p, nameEnd);
    if (previous !== undefined && !(previous < name)) return BAD;
    previous = name;
    p = value(t, nameEnd + 1, depth + 1);
    if (p === BAD) return BAD;
    const c = t.charCodeAt(p);
    if (c === CLOSE_OBJECT) return p + 1;
    if (c !== COMMA) return BAD;
    p++;
  }
}

function array(t: string, at: number, depth: number): number {
  let p = at + 1;
  if (t.charCodeAt(p) === CLOSE_ARRAY) return p + 1;
  for (;;) {
    p = value(t, p, depth + 1);
    if (p === BAD) return BAD;
    const c = t.charCodeAt(p);
    if (c === CLOSE_ARRAY) return p + 1;
    if (c !== COMMA) return BAD;
    p++;
  }
}

/** A member name as JSON.parse reads it (names are compared decoded): the text itself unless it holds an escape. */
function nameOf(t: string, start: number, end: number): string {
  const inner = t.slice(start + 1, end - 1);
  return inner.includes('\\') ? (JSON.parse(t.slice(start, end)) as string) : inner;
}

const isHigh = (c: number) => c >= 0xd800 && c <= 0xdbff;
const isLow = (c: number) => c >= 0xdc00 && c <= 0xdfff;
const isLowerHex = (c: number) => (c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66);

/**
 * A string as JSON.stringify writes it: raw characters except `"`, `\`, control characters and lone surrogates; a
 * surrogate pair raw; `\" \\ \b \f \n \r \t`; any other control character as `\u00xx` and a lone surrogate as
 * `\udxxx`, in lowercase hex. Never `\/`, never an escape of a character it writes raw.
 */
function string(t: string, at: number): number {
  if (t.charCodeAt(at) !== QUOTE) return BAD;
  const n = t.length;
  let p = at + 1;
  while (p < n) {
    // Skip the run of characters written as themselves (the bulk of a leaf) in one native step.
    PLAIN_RUN.lastIndex = p;
    PLAIN_RUN.test(t);
    p = PLAIN_RUN.lastIndex;
    const c = t.charCodeAt(p);
    if (c === QUOTE) return p + 1;
    if (c < 0x20) return BAD;
    if (c !== BACKSLASH) {
      if (isHigh(c)) {
        // Raw only as a pair with a raw low surrogate: escaped, the pair would be written raw.
        if (!isLow(t.charCodeAt(p + 1))) return BAD;
        p += 2;
      } else if (isLow(c)) {
        return BAD; // lone: the writer escapes it
      } else {
        p++;
      }
      continue;
    }
    const e = t.charCodeAt(p + 1);
    if (e === QUOTE || e === BACKSLASH || e === 0x62 || e === 0x66 || e === 0x6e || e === 0x72 || e === 0x74) {
      p += 2;
      continue;
    }
    if (e !== 0x75) return BAD; // \u
    const unit = escapedUnit(t, p + 2);
    if (unit === BAD) return BAD;
    if (unit < 0x20) {
      // \b \t \n \f \r have their short forms.
      if (unit === 0x08 || unit === 0x09 || unit === 0x0a || unit === 0x0c || unit === 0x0d) return BAD;
    } else if (isHigh(unit)) {
      // Escaped only when lone: not followed by a low surrogate, raw or escaped.
      const next = t.charCodeAt(p + 6);
      if (isLow(next)) return BAD;
      if (next === BACKSLASH && t.charCodeAt(p + 7) === 0x75 && isLow(escapedUnit(t, p + 8))) return BAD;
    } else if (!isLow(unit)) {
      return BAD; // the writer never escapes this character
    }
    // A low surrogate escaped after a high one was refused at the high one (raw highs need a raw low).
    p += 6;
  }
  return BAD;
}

/** Characters a string holds as themselves with no further rule: not `"`, `\`, a control character or a surrogate. */
const PLAIN_RUN = /[^"\\\u0000-\u001f\ud800-\udfff]*/y;

/** The code unit of four lowercase hex digits at `at`, or BAD. */
function escapedUnit(t: string, at: number): number {
  let unit = 0;
  for (let i = at; i < at + 4; i++) {
    const c = t.charCodeAt(i);
    if (!isLowerHex(c)) return BAD;
    unit = unit * 16 + (c <= 0x39 ? c - 0x30 : c - 0x57);
  }
  return unit;
}

/** A number as Number.prototype.toString writes it (and JSON.stringify: -0 as 0), finite. */
function number(t: string, at: number): number {
  let p = at;
  const n = t.length;
  for (; p < n; p++) {
    const c = t.charCodeAt(p);
    // Digits, '+', '-', '.', 'e' (toString never writes 'E').
    if (!((c >= 0x30 && c <= 0x39) || c === 0x2b || c === 0x2d || c === 0x2e || c === 0x65)) break;
  }
  const token = t.slice(at, p);
  const v = Number(token);
  return Number.isFinite(v) && JSON.stringify(v) === token ? p : BAD;
}
