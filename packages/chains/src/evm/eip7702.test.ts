import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AirlockError } from '@airlock/core';
import { parseTransaction, recoverTransactionAddress, serializeTransaction, hexToBytes } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { recoverAuthorizationAddress } from 'viem/utils';
import { createEvmAdapter } from './adapter.ts';
import { OTHER_PRIVATE_KEY, TEST_PRIVATE_KEY, signDigest, signer } from './test-key.ts';

const adapter = createEvmAdapter();
const delegate = '0xe6cae83bde06e4c305530e199d7217f42808555b';
const bob = '0xb0b0000000000000000000000000000000000b0b';

function assertCode(fn: () => unknown, code: string) {
  assert.throws(fn, (e: unknown) => e instanceof AirlockError && e.code === code);
}

test('an authorization is signed over EIP-7702 (0x05 || rlp) exactly as viem signs it', async () => {
  const local = privateKeyToAccount(TEST_PRIVATE_KEY);
  const expected = await local.signAuthorization({ address: delegate, chainId: 8453, nonce: 4 });
  const decoded = adapter.decode('evm.authorization', { authorization: { address: delegate, chainId: 8453, nonce: 4 } }, signer);
  assert.equal(decoded.intent.kind, 'eip7702.authorization');
  assert.deepEqual(decoded.intent.delegation?.authorizations, [{ delegate, chainId: 8453, nonce: 4n, authority: signer.address }]);
  const { signature } = adapter.finalize('evm.authorization', decoded, signDigest(decoded.digest), signer);
  const sig = hexToBytes(signature as `0x${string}`);
  assert.equal(`0x${Buffer.from(sig.subarray(0, 32)).toString('hex')}`, expected.r);
  assert.equal(sig[64]! - 27, expected.yParity);
  const authority = await recoverAuthorizationAddress({ authorization: { address: delegate, chainId: 8453, nonce: 4 }, signature: signature as `0x${string}` });
  assert.equal(authority.toLowerCase(), signer.address);
});

test('chain id 0 (every chain) decodes as such and needs the request chain; contractAddress is viem\'s alias', () => {
  const decoded = adapter.decode('evm.authorization', { chainId: 8453, authorization: { contractAddress: delegate, chainId: 0, nonce: 0 } }, signer);
  assert.equal(decoded.intent.delegation?.authorizations[0]?.chainId, 0);
  assert.equal(decoded.intent.chain, 'eip155:8453');
  assert.match(decoded.intent.summary, /EVERY chain/);
  assertCode(() => adapter.decode('evm.authorization', { authorization: { address: delegate, chainId: 0, nonce: 0 } }, signer), 'invalid_request');
  assertCode(() => adapter.decode('evm.authorization', { chainId: 1, authorization: { address: delegate, chainId: 8453, nonce: 0 } }, signer), 'chain_mismatch');
  assertCode(() => adapter.decode('evm.authorization', { authorization: { address: delegate, contractAddress: bob, chainId: 1, nonce: 0 } }, signer), 'invalid_request');
  assertCode(() => adapter.decode('evm.authorization', { authorization: { address: delegate, chainId: 1, nonce: (1n << 64n).toString() } }, signer), 'invalid_amount');
});

test('type-4 transaction: signed bytes parse with viem, recover to the agent, and name each delegate and its authority', async () => {
  const other = privateKeyToAccount(OTHER_PRIVATE_KEY);
  const theirs = await other.signAuthorization({ address: delegate, chainId: 8453, nonce: 0 });
  const transaction = {
    type: 'eip7702', to: bob, value: '0', nonce: 1, gas: 100000, maxFeePerGas: '1000', maxPriorityFeePerGas: '10',
    authorizationList: [{ address: theirs.address, chainId: theirs.chainId, nonce: theirs.nonce, r: theirs.r, s: theirs.s, yParity: theirs.yParity }],
  };
  const decoded = adapter.decode('evm.transaction', { chainId: 8453, transaction }, signer);
  assert.deepEqual(decoded.intent.delegation?.authorizations, [{ delegate, chainId: 8453, nonce: 0n, authority: other.address.toLowerCase() }]);
  const result = adapter.finalize('evm.transaction', decoded, signDigest(decoded.digest), signer);
  const parsed = parseTransaction(result.signedTransaction as `0x${string}`);
  assert.equal(parsed.type, 'eip7702');
  assert.equal(parsed.authorizationList?.[0]?.address.toLowerCase(), delegate);
  assert.equal((await recoverTransactionAddress({ serializedTransaction: result.signedTransaction as never })).toLowerCase(), signer.address);
  // The same transaction sent serialized decodes to the same digest.
  const serialized = serializeTransaction({ chainId: 8453, type: 'eip7702', to: bob, value: 0n, nonce: 1, gas: 100000n, maxFeePerGas: 1000n, maxPriorityFeePerGas: 10n, authorizationList: [theirs] });
  assert.deepEqual(adapter.decode('evm.transaction', { serializedTransaction: serialized }, signer).digest, decoded.digest);
});

test('type-4 refusals: no destination, empty list, unrecoverable signature, authorizationList on another type', () => {
  const base = { type: 'eip7702', to: bob, nonce: 0, gas: 100000, maxFeePerGas: '1000', maxPriorityFeePerGas: '10' };
  const auth = { address: delegate, chainId: 8453, nonce: 0, r: `0x${'00'.repeat(32)}`, s: `0x${'00'.repeat(32)}`, yParity: 0 };
  assertCode(() => adapter.decode('evm.transaction', { chainId: 8453, transaction: { ...base, to: undefined, authorizationList: [auth] } }, signer), 'invalid_request');
  assertCode(() => adapter.decode('evm.transaction', { chainId: 8453, transaction: { ...base, authorizationList: [] } }, signer), 'invalid_request');
  assertCode(() => adapter.decode('evm.transaction', { chainId: 8453, transaction: { ...base, authorizationList: [auth] } }, signer), 'undecodable_payload');
  assertCode(() => adapter.decode('evm.transaction', { chainId: 8453, transaction: { ...base, type: 'eip1559', authorizationList: [auth] } }, signer), 'invalid_request');
});

test('EIP-2930 (type 1) transactions sign, parse with viem and decode like the others', async () => {
  const transaction = { type: 'eip2930', to: bob, value: '5', nonce: 2, gas: 30000, gasPrice: '7', accessList: [{ address: bob, storageKeys: [`0x${'01'.repeat(32)}`] }] };
  const decoded = adapter.decode('evm.transaction', { chainId: 8453, transaction }, signer);
  assert.equal(decoded.intent.kind, 'native.transfer');
  assert.deepEqual(decoded.intent.spends.map((s) => [s.kind, s.amount]), [['value', 5n], ['fee', 210000n]]);
  const result = adapter.finalize('evm.transaction', decoded, signDigest(decoded.digest), signer);
  const parsed = parseTransaction(result.signedTransaction as `0x${string}`);
  assert.equal(parsed.type, 'eip2930');
  assert.equal(parsed.accessList?.length, 1);
  assert.equal((await recoverTransactionAddress({ serializedTransaction: result.signedTransaction as never })).toLowerCase(), signer.address);
  const serialized = serializeTransaction({ chainId: 8453, type: 'eip2930', to: bob, value: 5n, nonce: 2, gas: 30000n, gasPrice: 7n, accessList: [{ address: bob, storageKeys: [`0x${'01'.repeat(32)}`] }] });
  assert.deepEqual(adapter.decode('evm.transaction', { serializedTransaction: serialized }, signer).digest, decoded.digest);
  assertCode(() => adapter.decode('evm.transaction', { chainId: 8453, transaction: { ...transaction, maxFeePerGas: '1' } }, signer), 'invalid_request');
});
