import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import fc from 'fast-check';
import canonicalize from 'canonicalize';
import { canonicalJson, legacyCanonicalJson } from './canonical-json.ts';

const VECTORS = new URL('../test/vectors/rfc8785/', import.meta.url);

/** An own data property, whatever its name (`o[k] = v` would set the prototype for `__proto__`). */
function withMembers(entries: [string, unknown][], nullPrototype = false): Record<string, unknown> {
  const o: Record<string, unknown> = nullPrototype ? Object.create(null) : {};
  for (const [k, v] of entries) Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
  return o;
}

// Keys of every shape that broke the previous form: integer-like ("9" and "10" sort as text), empty,
// prototype names, and any Unicode (surrogate pairs sort by their code units, not their code points).
const key = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 6 }).map((s) => s.toWellFormed()),
  fc.nat({ max: 2 ** 32 }).map(String),
  fc.constantFrom('__proto__', 'constructor', 'prototype', '', '-1', '01', '1.5', '\u{1F600}', '\uFB33', '\u0080'),
);
const scalar = fc.oneof(
  fc.string({ unit: 'binary' }).map((s) => s.toWellFormed()),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.boolean(),
  fc.constant(null),
);
/** Values RFC 8785 is defined on (I-JSON), so the reference implementation can be asked about them. */
const jsonValue = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    scalar,
    fc.array(tie('value'), { maxLength: 5 }),
    fc.tuple(fc.uniqueArray(fc.tuple(key, tie('value')), { maxLength: 6, selector: ([k]) => k }), fc.boolean()).map(([entries, bare]) => withMembers(entries, bare)),
  ),
})).value;

test('RFC 8785 test data (the RFC author\'s input/output files) canonicalise byte for byte', () => {
  const names = readdirSync(new URL('input/', VECTORS)).filter((n) => n.endsWith('.json'));
  assert.ok(names.length >= 6);
  for (const name of names) {
    const input: unknown = JSON.parse(readFileSync(new URL(`input/${name}`, VECTORS), 'utf8'));
    const expected = readFileSync(new URL(`output/${name}`, VECTORS));
    assert.deepEqual(Buffer.from(canonicalJson(input), 'utf8'), expected, name);
  }
});

test('RFC 8785 Appendix B number samples serialise as ECMAScript Number.prototype.toString', () => {
  const samples: [string, string][] = [
    ['0000000000000000', '0'],
    ['8000000000000000', '0'],
    ['0000000000000001', '5e-324'],
    ['8000000000000001', '-5e-324'],
    ['7fefffffffffffff', '1.7976931348623157e+308'],
    ['ffefffffffffffff', '-1.7976931348623157e+308'],
    ['4340000000000000', '9007199254740992'],
    ['c340000000000000', '-9007199254740992'],
    ['4430000000000000', '295147905179352830000'],
    ['44b52d02c7e14af5', '9.999999999999997e+22'],
    ['44b52d02c7e14af6', '1e+23'],
    ['44b52d02c7e14af7', '1.0000000000000001e+23'],
    ['444b1ae4d6e2ef4e', '999999999999999700000'],
    ['444b1ae4d6e2ef4f', '999999999999999900000'],
    ['444b1ae4d6e2ef50', '1e+21'],
    ['3eb0c6f7a0b5ed8c', '9.999999999999997e-7'],
    ['3eb0c6f7a0b5ed8d', '0.000001'],
    ['41b3de4355555553', '333333333.3333332'],
    ['41b3de4355555554', '333333333.33333325'],
    ['41b3de4355555555', '333333333.3333333'],
    ['41b3de4355555556', '333333333.3333334'],
    ['41b3de4355555557', '333333333.33333343'],
    ['becbf647612f3696', '-0.0000033333333333333333'],
    ['43143ff3c1cb0959', '1424953923781206.2'],
  ];
  for (const [bits, expected] of samples) {
    const n = Buffer.from(bits, 'hex').readDoubleBE(0);
    assert.equal(canonicalJson(n), expected, bits);
    assert.equal(canonicalize(n), expected, `${bits} (reference implementation)`);
  }
  // NaN and Infinity have no JSON form (RFC 8785 §3.2.2.3: an error).
  for (const bits of ['7fffffffffffffff', '7ff0000000000000']) assert.throws(() => canonicalJson(Buffer.from(bits, 'hex').readDoubleBE(0)), /non-finite/);
});

test('canonicalJson equals the RFC 8785 reference implementation (canonicalize) on 20,000 random JSON values', () => {
  fc.assert(
    fc.property(jsonValue, (v) => {
      assert.equal(canonicalJson(v), canonicalize(v));
    }),
    { numRuns: 20_000 },
  );
});

test('regression: integer-like keys sort as text ({"9":1,"10":2}; fast-check seed 375760407)', () => {
  assert.equal(canonicalJson({ 9: 1, 10: 2 }), '{"10":2,"9":1}');
  assert.equal(canonicalJson(JSON.parse('{"9":1,"10":2}')), canonicalize({ 9: 1, 10: 2 }));
  // The counterexample the old property test found with that seed: "" sorts before "0".
  assert.equal(canonicalJson({ '': { 0: null, '': new Uint8Array() } }), '{"":{"":"","0":null}}');
  // The seed's whole run, against the reference implementation.
  fc.assert(
    fc.property(jsonValue, (v) => {
      assert.equal(canonicalJson(v), canonicalize(v));
    }),
    { numRuns: 10_000, seed: 375760407 },
  );
});

test('canonicalJson is injective where the old form was not: __proto__ members are kept', () => {
  const withProto = JSON.parse('{"amount":"1","__proto__":{"to":"0xattacker"}}') as unknown;
  const without = JSON.parse('{"amount":"1"}') as unknown;
  assert.equal(canonicalJson(withProto), '{"__proto__":{"to":"0xattacker"},"amount":"1"}');
  assert.notEqual(canonicalJson(withProto), canonicalJson(without));
  // What the attacker exploited: the old form hashes both the same.
  assert.equal(legacyCanonicalJson(withProto), legacyCanonicalJson(without));
});

test('our extensions: bigint, Uint8Array, undefined, toJSON; refusals for what JSON cannot hold', () => {
  assert.equal(canonicalJson({ b: 1, a: { d: [3, undefined, { f: 1n, e: 'x' }], c: undefined } }), '{"a":{"d":[3,null,{"e":"x","f":"1"}]},"b":1}');
  assert.equal(canonicalJson({ k: new Uint8Array([0, 255, 16]), n: -12345678901234567890n }), '{"k":"00ff10","n":"-12345678901234567890"}');
  assert.equal(canonicalJson(new Uint8Array(new Uint8Array([1, 2, 3]).buffer, 1, 2)), '"0203"');
  assert.equal(canonicalJson({ at: new Date(0) }), '{"at":"1970-01-01T00:00:00.000Z"}');
  assert.equal(canonicalJson(-0), '0');
  // A lone surrogate is outside I-JSON: written escaped (still injective) instead of failing a hash.
  assert.equal(canonicalJson('\ud800'), '"\\ud800"');
  assert.throws(() => canonicalJson({ x: Number.NaN }), /non-finite/);
  assert.throws(() => canonicalJson({ x: () => 1 }), /unsupported/);
  assert.throws(() => canonicalJson(undefined), /not serialisable/);
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  assert.throws(() => canonicalJson(cyclic), /too deeply/);
});

test('legacyCanonicalJson is the old form: equal to canonicalJson except for integer-like keys and __proto__', () => {
  const plain = { b: [1, 'x', null], a: { c: true } };
  assert.equal(legacyCanonicalJson(plain), canonicalJson(plain));
  assert.equal(legacyCanonicalJson({ 9: 1, 10: 2, a: 3 }), '{"9":1,"10":2,"a":3}');
});
