import { test } from 'node:test';
import assert from 'node:assert/strict';
import { namedSigners } from './named-signers.ts';

const A = '0xAbCdEf0000000000000000000000000000000001';

test('the signer a request names: a transaction from, an EIP-3009 from or authorizer, an EIP-2612 owner, a DAI holder (lowercased)', () => {
  assert.deepEqual(namedSigners('evm.transaction', { chainId: 1, transaction: { from: A, to: A } }), [A.toLowerCase()]);
  for (const primaryType of ['TransferWithAuthorization', 'ReceiveWithAuthorization']) {
    assert.deepEqual(namedSigners('evm.typed_data', { typedData: { primaryType, message: { from: A, to: '0x01' } } }), [A.toLowerCase()], primaryType);
  }
  assert.deepEqual(namedSigners('evm.typed_data', { typedData: { primaryType: 'Permit', message: { owner: A, spender: A } } }), [A.toLowerCase()]);
  // DAI's Permit(holder, spender, nonce, expiry, allowed) names its signer `holder`.
  assert.deepEqual(namedSigners('evm.typed_data', { typedData: { primaryType: 'Permit', message: { holder: A, spender: A, nonce: '0', expiry: '0', allowed: true } } }), [A.toLowerCase()]);
  assert.deepEqual(namedSigners('evm.typed_data', { typedData: { primaryType: 'CancelAuthorization', message: { authorizer: A, nonce: '0x01' } } }), [A.toLowerCase()]);
});

test('nothing named, or nothing readable: left to the decoder', () => {
  assert.deepEqual(namedSigners('evm.transaction', { transaction: { to: A } }), []);
  assert.deepEqual(namedSigners('evm.transaction', { transaction: { from: 'not an address' } }), []);
  assert.deepEqual(namedSigners('evm.transaction', null), []);
  assert.deepEqual(namedSigners('evm.typed_data', { typedData: { primaryType: 'Order', message: { from: A } } }), [], 'an unknown type: its `from` may be anyone');
  assert.deepEqual(namedSigners('evm.typed_data', { typedData: { primaryType: 'toString', message: { from: A } } }), [], 'no inherited keys');
  assert.deepEqual(namedSigners('evm.typed_data', { typedData: { primaryType: 'Permit', message: [] } }), []);
  assert.deepEqual(namedSigners('evm.message', { message: A }), []);
});
