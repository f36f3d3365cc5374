import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { canonicalJson } from './canonical-json.ts';
import { isCanonicalJsonObjectText } from './canonical-json-check.ts';

/** The definition the scanner must agree with: parse, write again, compare, an object at the top. */
function reference(text: string): boolean {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return false;
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  try {
    return canonicalJson(value) === text;
  } catch {
    return false;
  }
}

function agrees(text: string): void {
  assert.equal(isCanonicalJsonObjectText(text), reference(text), `disagreement on ${JSON.stringify(text)}`);
}

// Any UTF-16 code unit: lone surrogates, control characters, quotes and backslashes included.
const anyString = fc.string({ unit: 'binary', maxLength: 8 });
const key = fc.oneof(anyString, fc.nat({ max: 2 ** 32 }).map(String), fc.constantFrom('__proto__', 'toJSON', '', 'a', 'b', '\u{1F600}', '\uFB33'));
const scalar = fc.oneof(
  anyString,
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.constantFrom(1e21, 1e-7, -0, 5e-324, Number.MAX_VALUE, 2 ** 53 + 2),
  fc.boolean(),
  fc.constant(null),
);
const { tree } = fc.letrec((tie) => ({
  tree: fc.oneof({ depthSize: 'small' }, scalar, tie('array'), tie('object')),
  array: fc.array(tie('tree'), { maxLength: 4 }),
  object: fc.array(fc.tuple(key, tie('tree')), { maxLength: 5 }).map((entries) => {
    const o: Record<string, unknown> = {};
    for (const [k, v] of entries) Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
    return o;
  }),
}));
const topObject = fc.array(fc.tuple(key, tree), { maxLength: 6 }).map((entries) => {
  const o: Record<string, unknown> = {};
  for (const [k, v] of entries) Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
  return o;
});

test('accepts whatever canonicalJson writes for an object, and nothing for other top-level values', () => {
  fc.assert(
    fc.property(topObject, (o) => {
      assert.equal(isCanonicalJsonObjectText(canonicalJson(o)), true);
    }),
    { numRuns: 3000 },
  );
  fc.assert(fc.property(tree, (v) => agrees(canonicalJson(v))), { numRuns: 2000 });
});

// Edits that keep a text close to canonical: the characters and pieces whose rules differ between the writer
// and JSON's grammar (escapes, surrogates, number forms, whitespace, order and duplicates of names).
const piece = fc.constantFrom(
  ' ', '\n', '"', '\\', ',', ':', '{', '}', '[', ']', '0', '1', '-', '+', '.', 'e', 'E', '\u0001', '\u007f',
  '\\u0041', '\\u0001', '\\u001F', '\\u001f', '\\u0008', '\\b', '\\/', '\\ud800', '\\udc00', '\\uD800', '\ud800', '\udc00',
  '\ud83d\ude00', '\\ud83d\\ude00', '1e21', '1e+21', '1E+21', '-0', '0.0', '01', '1.50', '.5', 'true', 'null', '"a":1,', ',"a":1',
);
const edit = fc.oneof(
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), piece }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 3 }) }),
  fc.record({ kind: fc.constant('replace' as const), at: fc.nat(), piece }),
);

function applyEdit(text: string, e: { kind: 'insert' | 'delete' | 'replace'; at: number; piece?: string; length?: number }): string {
  const at = e.at % (text.length + 1);
  if (e.kind === 'insert') return text.slice(0, at) + e.piece + text.slice(at);
  if (e.kind === 'delete') return text.slice(0, at) + text.slice(at + e.length!);
  return text.slice(0, at) + e.piece + text.slice(at + e.piece!.length);
}

test('agrees with parse-and-write-again on texts edited near the canonical form', () => {
  fc.assert(
    fc.property(topObject, fc.array(edit, { minLength: 1, maxLength: 3 }), (o, edits) => {
      agrees(edits.reduce(applyEdit, canonicalJson(o)));
    }),
    { numRuns: 20_000 },
  );
});

test('the cases each rule is for', () => {
  const cases: [string, boolean][] = [
    ['{}', true],
    ['{"a":1,"b":[true,false,null,"x",{}]}', true],
    ['{"b":1,"a":2}', false], // order
    ['{"a":1,"a":1}', false], // duplicate
    ['{"10":1,"9":2}', true], // names sort as text
    ['{"9":1,"10":2}', false],
    ['{ "a":1}', false], // whitespace
    ['{"a":1}\n', false],
    ['{"a":1}{"b":2}', false], // a second value
    ['{"a":1},"decision":"allow","z":{"b":2}', false], // the splice the leaf check is for
    ['[]', false], // not an object
    ['"x"', false],
    ['{"a":1.0}', false], // number forms
    ['{"a":-0}', false],
    ['{"a":1e21}', false],
    ['{"a":1e+21}', true],
    ['{"a":1E+21}', false],
    ['{"a":0.0000001}', false],
    ['{"a":1e-7}', true],
    ['{"a":01}', false],
    ['{"a":1e400}', false], // not finite
    ['{"a":"\\u0041"}', false], // escapes JSON.stringify does not write
    ['{"a":"\\/"}', false],
    ['{"a":"\\u0008"}', false],
    ['{"a":"\\b"}', true],
    ['{"a":"\\u001f"}', true],
    ['{"a":"\\u001F"}', false],
    ['{"a":"\u007f\u2028"}', true],
    ['{"a":"\\ud800"}', true], // lone surrogates escaped, pairs raw
    ['{"a":"\ud800"}', false],
    ['{"a":"\\udc00"}', true],
    ['{"a":"\ud83d\ude00"}', true],
    ['{"a":"\\ud83d\\ude00"}', false],
    ['{"a":"\\ud83d\ude00"}', false],
    ['{"a":"\ud83d\\ude00"}', false],
    ['{"a":"\ud83d\ude00\\udc00"}', true],
    ['{"\\u0061":1}', false],
    ['{"\\u0001":1,"a":2}', true], // names compared decoded
    ['{"a":2,"\\u0001":1}', false],
    ['{"a":tru}', false],
    ['{"a":"unterminated}', false],
    ['', false],
  ];
  for (const [text, expected] of cases) {
    assert.equal(reference(text), expected, `reference on ${JSON.stringify(text)}`);
    assert.equal(isCanonicalJsonObjectText(text), expected, `scanner on ${JSON.stringify(text)}`);
  }
});

test('nesting: as deep as the writer goes and no deeper', () => {
  for (const depth of [998, 999, 1000, 1001]) {
    const text = '{"a":'.repeat(depth) + '{}' + '}'.repeat(depth);
    agrees(text);
  }
  assert.equal(isCanonicalJsonObjectText('{"a":'.repeat(999) + '{}' + '}'.repeat(999)), true);
  assert.equal(isCanonicalJsonObjectText('{"a":'.repeat(1000) + '{}' + '}'.repeat(1000)), false);
});
