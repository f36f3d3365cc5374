// What a key process accepts as a lifecycle payload: exactly the shapes the lifecycle path builds, and for typed
// data only revocations of the signing key's own grants. Everything near them is refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classifyLifecycleTypedData, lifecycleCallOf, lifecycleTransactionPayload } from './lifecycle-payloads.ts';

const FROM = '0x00000000000000000000000000000000000000f0';
const TOKEN = '0x833589fcd6edb6e08f4c7c32d4f71b54bda02913';
const SPENDER = '0x2222222222222222222222222222222222222222';

test('a transaction payload round-trips to its call; any other shape is not a lifecycle payload', () => {
  const payload = lifecycleTransactionPayload('eip155:8453', { to: TOKEN.toUpperCase().replace('0X', '0x'), value: 0n, data: '0xA9059CBB' }, { nonce: 7, gas: 60_000n, gasPrice: 10n ** 9n });
  assert.deepEqual(payload, { chainId: 8453, transaction: { type: 'legacy', to: TOKEN, value: '0x0', data: '0xa9059cbb', nonce: 7, gas: '0xea60', gasPrice: '0x3b9aca00' } });
  assert.deepEqual(lifecycleCallOf(JSON.parse(JSON.stringify(payload))), { chain: 'eip155:8453', call: { to: TOKEN, value: 0n, data: '0xa9059cbb' }, fees: { nonce: 7, gas: 60_000n, gasPrice: 10n ** 9n } });
  const tx = payload.transaction;
  for (const other of [
    { ...payload, extra: 1 },
    { ...payload, chainId: 0 },
    { ...payload, transaction: { ...tx, type: 'eip1559' } },
    { ...payload, transaction: { ...tx, value: '5' } }, // decimal: not how the path writes it
    { ...payload, transaction: { ...tx, value: '0x05' } }, // leading zero
    { ...payload, transaction: { ...tx, to: TOKEN.toUpperCase() } },
    { ...payload, transaction: { ...tx, data: '0xA9' } },
    { ...payload, transaction: { ...tx, accessList: [] } },
    { ...payload, transaction: { to: TOKEN, value: '0x0', data: '0x', nonce: 1, gas: '0x1', gasPrice: '0x1', type: 'legacy', from: FROM } },
  ]) assert.equal(lifecycleCallOf(other), undefined, JSON.stringify(other));
  assert.throws(() => lifecycleTransactionPayload('eip155:1', { value: 0n, data: '0x00' }, { nonce: 0, gas: 1n, gasPrice: 1n }), (e: any) => e.code === 'lifecycle_kind_refused');
});

const domain = { name: 'USD Coin', version: '2', chainId: 8453, verifyingContract: TOKEN };
const PERMIT_FIELDS = [{ name: 'owner', type: 'address' }, { name: 'spender', type: 'address' }, { name: 'value', type: 'uint256' }, { name: 'nonce', type: 'uint256' }, { name: 'deadline', type: 'uint256' }];
const permit = (message: Record<string, string>, types: unknown = { Permit: PERMIT_FIELDS }) => ({ typedData: { domain, types, primaryType: 'Permit', message } });
const cancel = (message: Record<string, string>) => ({ typedData: { domain, types: { CancelAuthorization: [{ name: 'authorizer', type: 'address' }, { name: 'nonce', type: 'bytes32' }] }, primaryType: 'CancelAuthorization', message } });
const burn = { owner: FROM, spender: SPENDER, value: '0', nonce: '3', deadline: '1900000000' };
const NONCE = `0x${'c3'.repeat(32)}`;
const refused = (payload: unknown) => assert.throws(() => classifyLifecycleTypedData(payload, FROM), (e: any) => e.code === 'lifecycle_kind_refused', JSON.stringify(payload));

test('typed data: a zero-value permit and a cancellation of the signing key\'s own pass', () => {
  assert.match(classifyLifecycleTypedData(permit(burn), FROM), /zero-value permit \(nonce 3\)/);
  assert.match(classifyLifecycleTypedData(permit({ ...burn, owner: FROM.toUpperCase().replace('0X', '0x') }), FROM), /zero-value permit/);
  assert.match(classifyLifecycleTypedData(cancel({ authorizer: FROM, nonce: NONCE }), FROM), /CancelAuthorization/);
});

test('typed data that grants, is another key\'s, or is any other shape is refused', () => {
  refused(permit({ ...burn, value: '1' }));
  refused(permit({ ...burn, value: '00' }));
  refused(permit({ ...burn, owner: SPENDER }));
  refused(permit({ ...burn, extra: '1' }));
  refused(permit(burn, { Permit: [{ name: 'owner', type: 'address' }, { name: 'spender', type: 'address' }, { name: 'value', type: 'uint256' }, { name: 'nonce', type: 'uint256' }] }));
  refused(permit(burn, { Permit: PERMIT_FIELDS, Extra: [{ name: 'x', type: 'uint256' }] }));
  refused(cancel({ authorizer: SPENDER, nonce: NONCE }));
  refused(cancel({ authorizer: FROM, nonce: '0x01' }));
  refused({ typedData: { ...permit(burn).typedData, primaryType: 'TransferWithAuthorization' } });
  refused({ typedData: { ...permit(burn).typedData, domain: { ...domain, salt: '0x00' } } });
  refused({ typedData: permit(burn).typedData, x402: {} });
  refused({ ...permit(burn).typedData });
});
