/**
 * A parser for JavaScript regular expressions in unicode mode (flag `u`), reduced to what a backtracking-cost
 * analysis needs (regex-safety.ts): which characters each atom can read, how atoms are sequenced, alternated and
 * repeated, and the constructs no analysis can bound (backreferences). It assumes the source already compiled with
 * `new RegExp(source, 'u')`: syntax errors are that constructor's job.
 *
 * Character sets are over-approximated where exactness would need Unicode tables (`\p{…}`, case-insensitive
 * groups): a larger set can only make the analysis see more overlap, never less, so it stays on the safe side.
 */

/** Sorted, disjoint, inclusive code point ranges. */
export type CharSet = readonly (readonly [number, number])[];

export type RegexNode =
  | { kind: 'char'; set: CharSet }
  | { kind: 'sequence'; items: RegexNode[] }
  | { kind: 'alternation'; options: RegexNode[] }
  | { kind: 'repeat'; body: RegexNode; min: number; max: number }
  /** `^`, `$`, `\b`, `\B`: match no character. */
  | { kind: 'assertion' }
  | { kind: 'lookaround'; body: RegexNode }
  | { kind: 'backreference' };

const MAX_CODE_POINT = 0x10ffff;
export const ANY: CharSet = [[0, MAX_CODE_POINT]];
const DIGIT: CharSet = [[0x30, 0x39]];
const WORD: CharSet = [[0x30, 0x39], [0x41, 0x5a], [0x5f, 0x5f], [0x61, 0x7a]];
// ECMAScript WhiteSpace and LineTerminator (\s).
const SPACE: CharSet = normalize([[0x09, 0x0d], [0x20, 0x20], [0xa0, 0xa0], [0x1680, 0x1680], [0x2000, 0x200a], [0x2028, 0x2029], [0x202f, 0x202f], [0x205f, 0x205f], [0x3000, 0x3000], [0xfeff, 0xfeff]]);

export function normalize(ranges: readonly (readonly [number, number])[]): CharSet {
  const sorted = [...ranges].sort((a, b) => a[0] - b[0]);
  const out: [number, number][] = [];
  for (const [lo, hi] of sorted) {
    const last = out.at(-1);
    if (last && lo <= last[1] + 1) last[1] = Math.max(last[1], hi);
    else out.push([lo, hi]);
  }
  return out;
}

export function complement(set: CharSet): CharSet {
  const out: [number, number][] = [];
  let next = 0;
  for (const [lo, hi] of set) {
    if (lo > next) out.push([next, lo - 1]);
    next = hi + 1;
  }
  if (next <= MAX_CODE_POINT) out.push([next, MAX_CODE_POINT]);
  return out;
}

export function intersects(a: CharSet, b: CharSet): boolean {
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    if (a[i]![1] < b[j]![0]) i++;
    else if (b[j]![1] < a[i]![0]) j++;
    else return true;
  }
  return false;
}

/**
 * Every character a case-insensitive match of `set` may read: ASCII letters in both cases, the two non-ASCII
 * characters that fold to ASCII letters (U+017F long s, U+212A Kelvin sign), and all of non-ASCII when the set
 * holds any of it (exact Unicode case folding is not worth its tables here).
 */
function caseClosure(set: CharSet): CharSet {
  const extra: [number, number][] = [];
  for (const [lo, hi] of set) {
    for (const [from, to, shift] of [[0x41, 0x5a, 0x20], [0x61, 0x7a, -0x20]] as const) {
      const a = Math.max(lo, from);
      const b = Math.min(hi, to);
      if (a <= b) extra.push([a + shift, b + shift]);
    }
    if (hi >= 0x80) extra.push([0x80, MAX_CODE_POINT]);
  }
  if (intersects(set, [[0x4b, 0x4b], [0x53, 0x53], [0x6b, 0x6b], [0x73, 0x73]])) extra.push([0x017f, 0x017f], [0x212a, 0x212a]);
  return normalize([...set, ...extra]);
}

const SYNTAX_ERROR = 'not a valid regular expression';

/** Parses `source` (unicode mode); throws an Error with a short message on what it cannot read. */
export function parseRegex(source: string): RegexNode {
  const chars = Array.from(source);
  let pos = 0;
  const peek = (offset = 0) => chars[pos + offset];
  const fail = (): never => {
    throw new Error(SYNTAX_ERROR);
  };

  function alternation(ignoreCase: boolean): RegexNode {
    const options = [sequence(ignoreCase)];
    while (peek() === '|') {
      pos++;
      options.push(sequence(ignoreCase));
    }
    return options.length === 1 ? options[0]! : { kind: 'alternation', options };
  }

  function sequence(ignoreCase: boolean): RegexNode {
    const items: RegexNode[] = [];
    while (pos < chars.length && peek() !== '|' && peek() !== ')') {
      const atom = term(ignoreCase);
      items.push(quantified(atom));
    }
    return items.length === 1 ? items[0]! : { kind: 'sequence', items };
  }

  function quantified(atom: RegexNode): RegexNode {
    const c = peek();
    let min: number;
    let max: number;
    if (c === '*') [min, max] = [0, Infinity];
    else if (c === '+') [min, max] = [1, Infinity];
    else if (c === '?') [min, max] = [0, 1];
    else if (c === '{') {
      const rest = chars.slice(pos).join('');
      const m = /^\{(\d+)(,(\d*))?\}/u.exec(rest);
      if (!m) return fail();
      min = Number(m[1]);
      max = m[2] === undefined ? min : m[3] === '' ? Infinity : Number(m[3]);
      pos += Array.from(m[0]).length - 1;
    } else return atom;
    pos++;
    if (peek() === '?') pos++; // lazy: the same paths, explored in another order
    return { kind: 'repeat', body: atom, min, max };
  }

  function term(ignoreCase: boolean): RegexNode {
    const c = peek();
    if (c === undefined) return fail();
    pos++;
    if (c === '^' || c === '$') return { kind: 'assertion' };
    if (c === '.') return { kind: 'char', set: ANY };
    if (c === '[') return { kind: 'char', set: withCase(charClass(), ignoreCase) };
    if (c === '(') return group(ignoreCase);
    if (c === '\\') return atomEscape(ignoreCase);
    return { kind: 'char', set: withCase([[c.codePointAt(0)!, c.codePointAt(0)!]], ignoreCase) };
  }

  function group(ignoreCase: boolean): RegexNode {
    let node: RegexNode;
    if (peek() === '?') {
      const next = peek(1);
      if (next === ':') {
        pos += 2;
        node = alternation(ignoreCase);
      } else if (next === '=' || next === '!') {
        pos += 2;
        node = { kind: 'lookaround', body: alternation(ignoreCase) };
      } else if (next === '<' && (peek(2) === '=' || peek(2) === '!')) {
        pos += 3;
        node = { kind: 'lookaround', body: alternation(ignoreCase) };
      } else if (next === '<') {
        pos += 2;
        while (peek() !== '>') if (pos++ >= chars.length) fail();
        pos++;
        node = alternation(ignoreCase);
      } else {
        // Modifiers, `(?i:…)` / `(?-i:…)` / `(?i-s:…)`: only `i` changes what a character matches.
        pos++;
        let adding = true;
        let caseInsensitive = ignoreCase;
        while (peek() !== ':') {
          const f = peek();
          if (f === undefined) fail();
          if (f === '-') adding = false;
          else if (f === 'i') caseInsensitive = adding;
          pos++;
        }
        pos++;
        node = alternation(caseInsensitive);
      }
    } else node = alternation(ignoreCase);
    if (peek() !== ')') fail();
    pos++;
    return node;
  }

  function atomEscape(ignoreCase: boolean): RegexNode {
    const c = peek();
    if (c === 'b' || c === 'B') {
      pos++;
      return { kind: 'assertion' };
    }
    if (c !== undefined && c >= '1' && c <= '9') {
      while (peek() !== undefined && peek()! >= '0' && peek()! <= '9') pos++;
      return { kind: 'backreference' };
    }
    if (c === 'k') {
      pos++;
      while (peek() !== '>') if (pos++ >= chars.length) fail();
      pos++;
      return { kind: 'backreference' };
    }
    return { kind: 'char', set: withCase(classEscape(), ignoreCase) };
  }

  /** An escape that stands for characters (outside or inside a class); `\b` inside a class is handled there. */
  function classEscape(): CharSet {
    const c = peek();
    if (c === undefined) return fail();
    pos++;
    switch (c) {
      case 'd': return DIGIT;
      case 'D': return complement(DIGIT);
      case 'w': return WORD;
      case 'W': return complement(WORD);
      case 's': return SPACE;
      case 'S': return complement(SPACE);
      case 'p':
      case 'P':
        // A Unicode property: over-approximated as any character (exact sets would need Unicode tables).
        if (peek() !== '{') fail();
        while (peek() !== '}') if (pos++ >= chars.length) fail();
        pos++;
        return ANY;
      case 't': return single(0x09);
      case 'n': return single(0x0a);
      case 'v': return single(0x0b);
      case 'f': return single(0x0c);
      case 'r': return single(0x0d);
      case '0': return single(0);
      case 'c': {
        const letter = peek();
        if (letter === undefined) return fail();
        pos++;
        return single(letter.codePointAt(0)! % 32);
      }
      case 'x': return single(hex(2));
      case 'u': {
        if (peek() === '{') {
          pos++;
          let digits = '';
          while (peek() !== '}') {
            if (peek() === undefined) fail();
            digits += chars[pos++];
          }
          pos++;
          return single(parseInt(digits, 16));
        }
        const unit = hex(4);
        // A surrogate pair written as two escapes is one code point in unicode mode.
        if (unit >= 0xd800 && unit <= 0xdbff && peek() === '\\' && peek(1) === 'u' && peek(2) !== '{') {
          const save = pos;
          pos += 2;
          const low = hex(4);
          if (low >= 0xdc00 && low <= 0xdfff) return single((unit - 0xd800) * 0x400 + (low - 0xdc00) + 0x10000);
          pos = save;
        }
        return single(unit);
      }
      default: return single(c.codePointAt(0)!); // identity escape of a syntax character
    }
  }

  function hex(digits: number): number {
    const text = chars.slice(pos, pos + digits).join('');
    if (!/^[0-9a-fA-F]+$/u.test(text) || text.length !== digits) fail();
    pos += digits;
    return parseInt(text, 16);
  }

  function charClass(): CharSet {
    const negated = peek() === '^';
    if (negated) pos++;
    const ranges: (readonly [number, number])[] = [];
    // Inexact: some member was over-approximated, so the complement would under-approximate.
    let approximate = false;
    const classAtom = (): CharSet => {
      const c = peek();
      if (c === undefined) return fail();
      if (c === '\\') {
        pos++;
        if (peek() === 'b') {
          pos++;
          return single(0x08);
        }
        if (peek() === '-') {
          pos++;
          return single(0x2d);
        }
        if (peek() === 'p' || peek() === 'P') approximate = true;
        return classEscape();
      }
      pos++;
      return single(c.codePointAt(0)!);
    };
    while (peek() !== ']') {
      if (peek() === undefined) fail();
      const from = classAtom();
      if (peek() === '-' && peek(1) !== ']' && peek(1) !== undefined) {
        pos++;
        const to = classAtom();
        if (from.length === 1 && to.length === 1 && from[0]![0] === from[0]![1] && to[0]![0] === to[0]![1]) ranges.push([from[0]![0], to[0]![0]]);
        else return fail();
      } else ranges.push(...from);
    }
    pos++;
    const set = normalize(ranges);
    if (!negated) return set;
    // Under `i`, the complement is taken before the case closure (withCase): a superset of what V8 matches.
    return approximate ? ANY : complement(set);
  }

  const node = alternation(false);
  if (pos !== chars.length) fail();
  return node;
}

function single(cp: number): CharSet {
  return [[cp, cp]];
}

function withCase(set: CharSet, ignoreCase: boolean): CharSet {
  return ignoreCase ? caseClosure(set) : set;
}
