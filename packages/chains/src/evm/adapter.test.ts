import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AirlockError } from '@airlock/core';
import type { EcdsaSignature } from '@airlock/core';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { hexToBytes, keccak256, parseTransaction, recoverTransactionAddress, verifyMessage, verifyTypedData } from 'viem';
import { createEvmAdapter } from './adapter.ts';
import { OTHER_PRIVATE_KEY, TEST_PRIVATE_KEY, signDigest, signer } from './test-key.ts';

const adapter = createEvmAdapter();
const bob = '0xb0b0000000000000000000000000000000000b0b';

function assertCode(fn: () => unknown, code: string) {
  assert.throws(fn, (e: unknown) => e instanceof AirlockError && e.code === code);
}

test('derivation path and address from a compressed public key', () => {
  assert.equal(adapter.derivationPath(7, 0), "m/44'/60'/7'/0/0");
  assertCode(() => adapter.derivationPath(-1, 0), 'invalid_request');
  assertCode(() => adapter.derivationPath(0, 2 ** 31), 'invalid_request');
  const publicKey = secp256k1.getPublicKey(hexToBytes(TEST_PRIVATE_KEY), true);
  assert.equal(adapter.addressFromPublicKey(publicKey), signer.address);
  assertCode(() => adapter.addressFromPublicKey(new Uint8Array(65)), 'invalid_request');
});

test('eip1559 transaction: signed bytes parse with viem and recover to the signer', async () => {
  const payload = { chainId: 8453, transaction: { to: bob, value: '1000', nonce: 4, gas: 21000, maxFeePerGas: '2000000000', maxPriorityFeePerGas: '1000000' } };
  const decoded = adapter.decode('evm.transaction', payload, signer);
  const result = adapter.finalize('evm.transaction', decoded, signDigest(decoded.digest), signer);
  const signed = result.signedTransaction as `0x${string}`;
  const parsed = parseTransaction(signed);
  assert.equal(parsed.type, 'eip1559');
  assert.equal(parsed.chainId, 8453);
  assert.equal(parsed.to, bob);
  assert.equal(parsed.value, 1000n);
  assert.equal(parsed.nonce, 4);
  assert.equal((await recoverTransactionAddress({ serializedTransaction: signed as never })).toLowerCase(), signer.address);
  assert.equal(result.transactionHash, keccak256(signed));
  assert.equal(hexToBytes(result.signature as `0x${string}`).length, 65);
});

test('legacy transaction is signed with the EIP-155 chain id', async () => {
  const payload = { chainId: 137, transaction: { type: 'legacy', to: bob, value: 1, nonce: 0, gas: 21000, gasPrice: '30000000000' } };
  const decoded = adapter.decode('evm.transaction', payload, signer);
  const result = adapter.finalize('evm.transaction', decoded, signDigest(decoded.digest), signer);
  const parsed = parseTransaction(result.signedTransaction as `0x${string}`);
  assert.equal(parsed.type, 'legacy');
  assert.equal(parsed.chainId, 137);
  assert.ok(parsed.v === 137n * 2n + 35n || parsed.v === 137n * 2n + 36n);
  assert.equal((await recoverTransactionAddress({ serializedTransaction: result.signedTransaction as never })).toLowerCase(), signer.address);
});

test('typed data signature verifies with viem verifyTypedData', async () => {
  const typedData = {
    domain: { name: 'USD Coin', version: '2', chainId: 8453, verifyingContract: '0x833589fcd6edb6e08f4c7c32d4f71b54bda02913' },
    types: { TransferWithAuthorization: [
      { name: 'from', type: 'address' }, { name: 'to', type: 'address' }, { name: 'value', type: 'uint256' },
      { name: 'validAfter', type: 'uint256' }, { name: 'validBefore', type: 'uint256' }, { name: 'nonce', type: 'bytes32' },
    ] },
    primaryType: 'TransferWithAuthorization',
    message: { from: signer.address, to: bob, value: '10000', validAfter: '0', validBefore: '1800000000', nonce: `0x${'11'.repeat(32)}` },
  };
  const decoded = adapter.decode('evm.typed_data', { typedData }, signer);
  const { signature } = adapter.finalize('evm.typed_data', decoded, signDigest(decoded.digest), signer);
  const message = { ...typedData.message, value: 10000n, validAfter: 0n, validBefore: 1_800_000_000n };
  assert.equal(await verifyTypedData({ ...typedData, message, address: signer.address as `0x${string}`, signature: signature as `0x${string}` } as never), true);
  const v = hexToBytes(signature as `0x${string}`)[64];
  assert.ok(v === 27 || v === 28);
});

test('personal message (text and raw) signature verifies with viem verifyMessage', async () => {
  const text = { chainId: 1, message: 'Sign in to example.org' };
  const decoded = adapter.decode('evm.message', text, signer);
  assert.equal(decoded.intent.kind, 'message.personal');
  assert.deepEqual(decoded.intent.message, { text: 'Sign in to example.org', hex: '0x5369676e20696e20746f206578616d706c652e6f7267' });
  const { signature } = adapter.finalize('evm.message', decoded, signDigest(decoded.digest), signer);
  assert.equal(await verifyMessage({ address: signer.address as `0x${string}`, message: text.message, signature: signature as `0x${string}` }), true);

  const raw = { chainId: 1, message: { raw: '0xff00' } };
  const rawDecoded = adapter.decode('evm.message', raw, signer);
  assert.deepEqual(rawDecoded.intent.message, { hex: '0xff00' }); // not valid utf8: no text
  const rawSig = adapter.finalize('evm.message', rawDecoded, signDigest(rawDecoded.digest), signer).signature;
  assert.equal(await verifyMessage({ address: signer.address as `0x${string}`, message: { raw: '0xff00' }, signature: rawSig as `0x${string}` }), true);

  assertCode(() => adapter.decode('evm.message', { message: 'hi' }, signer), 'invalid_request');
  assertCode(() => adapter.decode('evm.message', { chainId: 1, message: { raw: '0xf' } }, signer), 'invalid_hex');
});

test('a signature from another key, a high-S signature or a swapped digest fails signature_check_failed', () => {
  const payload = { chainId: 1, message: 'hello' };
  const decoded = adapter.decode('evm.message', payload, signer);
  assertCode(() => adapter.finalize('evm.message', decoded, signDigest(decoded.digest, OTHER_PRIVATE_KEY), signer), 'signature_check_failed');

  const good = signDigest(decoded.digest);
  const sig = secp256k1.Signature.fromBytes(good.compact, 'compact');
  const highS: EcdsaSignature = { compact: new secp256k1.Signature(sig.r, secp256k1.Point.CURVE().n - sig.s).toBytes('compact'), recovery: 1 - good.recovery };
  assertCode(() => adapter.finalize('evm.message', decoded, highS, signer), 'signature_check_failed');

  // A genuine signature of the agent's key, but over another request's digest: it recovers to another key.
  const other = adapter.decode('evm.message', { chainId: 1, message: 'something else' }, signer);
  assertCode(() => adapter.finalize('evm.message', decoded, signDigest(other.digest), signer), 'signature_check_failed');

  const txPayload = { chainId: 1, transaction: { to: bob, nonce: 0, gas: 21000, maxFeePerGas: 1, maxPriorityFeePerGas: 1 } };
  const txDecoded = adapter.decode('evm.transaction', txPayload, signer);
  assertCode(() => adapter.finalize('evm.transaction', txDecoded, signDigest(txDecoded.digest, OTHER_PRIVATE_KEY), signer), 'signature_check_failed');
  const otherTx = adapter.decode('evm.transaction', { ...txPayload, transaction: { ...txPayload.transaction, nonce: 1 } }, signer);
  assertCode(() => adapter.finalize('evm.transaction', txDecoded, signDigest(otherTx.digest), signer), 'signature_check_failed');
  // A decoded transaction without its unsigned bytes (built by hand, not by decode) is never finalised.
  assertCode(() => adapter.finalize('evm.transaction', { intent: txDecoded.intent, digest: txDecoded.digest }, signDigest(txDecoded.digest), signer), 'signature_check_failed');
});

test('unsupported actions are refused', () => {
  assertCode(() => adapter.decode('btc.psbt' as never, {}, signer), 'unsupported_action');
});
