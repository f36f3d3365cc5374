import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalJson, requestHash } from '@airlock/core';
import { decodeWire, encodeWire } from './wire.ts';

test('bigints and bytes cross the socket as they left: the request hash on the other side is the same', () => {
  const payload = { chainId: 8453, transaction: { value: 10n ** 30n, gas: 21000n, data: '0x', nested: [1n, { b: new Uint8Array([0, 255]) }] } };
  const back = decodeWire(encodeWire(payload)) as typeof payload;
  assert.equal(back.transaction.value, 10n ** 30n);
  assert.deepEqual((back.transaction.nested[1] as { b: Uint8Array }).b, new Uint8Array([0, 255]));
  assert.equal(requestHash('evm.transaction', back, canonicalJson), requestHash('evm.transaction', payload, canonicalJson));
  assert.deepEqual(decodeWire(encodeWire(new Uint8Array(32).fill(9))), new Uint8Array(32).fill(9));
});

test('untrusted shapes are refused (prototype keys), and a tag that is not exactly a tag stays an object', () => {
  assert.throws(() => decodeWire('{"a":{"__proto__":{"x":1}}}'), (e: any) => e.code === 'forbidden_json_key');
  assert.deepEqual(decodeWire('{"$bigint":"12","other":1}'), { $bigint: '12', other: 1 });
  assert.deepEqual(decodeWire('{"$bigint":"12x"}'), { $bigint: '12x' });
});
