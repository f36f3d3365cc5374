import { test } from 'node:test';
import assert from 'node:assert/strict';
import { intentToJson, type Intent } from './intent.ts';

/** What intentToJson replaced: the JSON round trip with bigints as decimal strings. */
const roundTrip = (v: unknown) => JSON.parse(JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x)));

test('intentToJson gives exactly the JSON round trip, bigints as decimal strings', () => {
  const hostile = JSON.parse('{"__proto__": {"polluted": 1}, "constructor": "x", "nested": [{"__proto__": 2}]}');
  const intent = {
    action: 'evm.typed_data',
    chain: 'eip155:8453',
    kind: 'eip3009.transfer_with_authorization',
    from: '0xaa',
    to: undefined,
    spends: [{ asset: 'eip155:8453/erc20:0xbb', amount: 2n ** 200n, to: '0xcc', kind: 'transfer' }],
    approvals: [{ asset: 'a', spender: 's', amount: 0n, unlimited: false }],
    typedData: { domain: { chainId: 8453, name: 'USD Coin' }, message: hostile, primaryType: 'T' },
    validity: { validAfter: 0, validBefore: -0 },
    odd: [undefined, () => 1, Symbol('s'), NaN, Infinity, -0, null, 1.5, true, 'text', [1n, [2n]]],
    fn: () => 1,
    summary: 'pay',
  } as unknown as Intent;
  const json = intentToJson(intent);
  assert.deepEqual(json, roundTrip(intent));
  assert.equal(JSON.stringify(json), JSON.stringify(roundTrip(intent)), 'same keys in the same order');
  const message = (json as { typedData: { message: Record<string, unknown> } }).typedData.message;
  assert.ok(Object.hasOwn(message, '__proto__'), 'a __proto__ key stays an own data property');
  assert.equal(Object.getPrototypeOf(message), Object.prototype, 'and does not become the prototype');
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
});
