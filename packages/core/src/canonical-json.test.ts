import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { canonicalJson } from './canonical-json.ts';

/** The reference definition (the original recursive implementation): the fast one must match it byte for byte. */
function reference(value: unknown): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'bigint':
      return JSON.stringify(value.toString());
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError('non-finite');
      return JSON.stringify(value);
    case 'string':
    case 'boolean':
      return JSON.stringify(value);
    case 'object': {
      if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : reference(v))).join(',')}]`;
      if (value instanceof Uint8Array) return JSON.stringify(Buffer.from(value).toString('hex'));
      const entries = Object.entries(value as Record<string, unknown>)
        .filter(([, v]) => v !== undefined)
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${reference(v)}`).join(',')}}`;
    }
    default:
      throw new TypeError('unsupported');
  }
}

const leaf = fc.oneof(fc.string({ unit: 'binary' }), fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.boolean(), fc.constant(null), fc.bigInt(), fc.uint8Array({ maxLength: 8 }), fc.constant(undefined));
const json = fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: 'small' }, leaf, fc.array(tie('value'), { maxLength: 5 }), fc.dictionary(fc.string({ unit: 'binary', maxLength: 6 }), tie('value'), { maxKeys: 6 })),
})).value;

test('canonicalJson equals the reference definition byte for byte (10,000 random values)', () => {
  fc.assert(
    fc.property(json, (v) => {
      if (v === undefined) return;
      assert.equal(canonicalJson(v), reference(v));
    }),
    { numRuns: 10_000 },
  );
});

test('canonicalJson sorts keys at every depth and refuses what it cannot represent', () => {
  assert.equal(canonicalJson({ b: 1, a: { d: [3, undefined, { f: 1n, e: 'x' }], c: undefined } }), '{"a":{"d":[3,null,{"e":"x","f":"1"}]},"b":1}');
  assert.throws(() => canonicalJson({ x: Number.NaN }), /non-finite/);
  assert.throws(() => canonicalJson({ x: () => 1 }), /unsupported/);
});
