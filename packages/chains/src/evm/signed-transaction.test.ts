// The signed transaction is built by reopening the unsigned bytes (signed-transaction.ts), not by viem. Its bytes
// must be exactly what viem's serializeTransaction gives for the same transaction and signature: checked here over
// generated transactions (both types, short and long RLP lists, deploys, access lists, chain ids of every size)
// and signature values with leading zero bytes, and end to end through the adapter with real signatures.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AirlockError } from '@airlock/core';
import type { EcdsaSignature } from '@airlock/core';
import { bytesToHex, keccak256, recoverTransactionAddress, serializeTransaction, type Hex } from 'viem';
import { createEvmAdapter } from './adapter.ts';
import type { PreparedTransaction } from './signed-transaction.ts';
import { signedTransactionBytes } from './signed-transaction.ts';
import { signDigest, signer } from './test-key.ts';
import { readTransactionRequest, toSerializable } from './transaction.ts';

const adapter = createEvmAdapter();

/** A small deterministic generator (xorshift32): the same cases on every run. */
function generator(seed: number) {
  let x = seed;
  const next = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
  const int = (max: number) => Math.floor(next() * max);
  const hex = (bytes: number) => `0x${Array.from({ length: bytes }, () => int(256).toString(16).padStart(2, '0')).join('')}`;
  return { int, hex, pick: <T>(items: readonly T[]) => items[int(items.length)]! };
}

/** A transaction payload of either type, with sizes that cross the one-byte/long RLP header boundaries. */
function randomPayload(g: ReturnType<typeof generator>) {
  const legacy = g.int(2) === 0;
  const chainId = g.pick([1, 10, 137, 8453, 11155111, 2 ** 31 - 1, Number.MAX_SAFE_INTEGER]);
  const transaction: Record<string, unknown> = {
    nonce: g.pick([0, 1, 127, 128, 255, 256, 2 ** 32]),
    gas: String(g.pick([21000n, 0n, 2n ** 64n - 1n])),
    value: String(g.pick([0n, 1n, 10n ** 18n, 2n ** 256n - 1n])),
    data: g.hex(g.pick([0, 4, 36, 55, 56, 300])),
  };
  if (g.int(5) !== 0) transaction.to = g.hex(20);
  if (legacy) {
    transaction.type = 'legacy';
    transaction.gasPrice = String(g.pick([0n, 1n, 30_000_000_000n]));
  } else {
    transaction.type = 'eip1559';
    transaction.maxFeePerGas = String(g.pick([1n, 2_000_000_000n, 2n ** 128n]));
    transaction.maxPriorityFeePerGas = '1';
    if (g.int(3) === 0) transaction.accessList = [{ address: g.hex(20), storageKeys: Array.from({ length: g.int(3) }, () => g.hex(32)) }];
  }
  return { chainId, transaction };
}

/** r and s with leading zero bytes now and then (RLP drops them: a classic place for two encoders to differ). */
function randomSignature(g: ReturnType<typeof generator>): EcdsaSignature {
  const part = () => {
    const bytes = Uint8Array.from(Buffer.from(g.hex(32).slice(2), 'hex'));
    bytes.fill(0, 0, g.pick([0, 0, 1, 2, 31]));
    return bytes;
  };
  const compact = new Uint8Array(64);
  compact.set(part(), 0);
  compact.set(part(), 32);
  return { compact, recovery: g.int(2) };
}

function viemSigned(payload: unknown, signature: EcdsaSignature): Hex {
  const tx = readTransactionRequest(payload);
  const r = bytesToHex(signature.compact.subarray(0, 32));
  const s = bytesToHex(signature.compact.subarray(32, 64));
  return tx.type === 'legacy'
    ? serializeTransaction(toSerializable(tx), { r, s, v: BigInt(tx.chainId) * 2n + 35n + BigInt(signature.recovery) })
    : serializeTransaction(toSerializable(tx), { r, s, yParity: signature.recovery });
}

test('the signed bytes equal viem serializeTransaction over 400 generated transactions and signatures', () => {
  const g = generator(0x5eed1234);
  for (let i = 0; i < 400; i++) {
    const payload = randomPayload(g);
    const decoded = adapter.decode('evm.transaction', payload, signer);
    const signature = randomSignature(g);
    const ours = bytesToHex(signedTransactionBytes(decoded.prepared as PreparedTransaction, signature));
    assert.equal(ours, viemSigned(payload, signature), JSON.stringify(payload));
  }
});

test('through the adapter: a real signature gives viem\'s bytes, its hash, and recovers to the agent', async () => {
  const g = generator(0xa11ce);
  for (let i = 0; i < 12; i++) {
    const payload = randomPayload(g);
    const decoded = adapter.decode('evm.transaction', payload, signer);
    const signature = signDigest(decoded.digest);
    const result = adapter.finalize('evm.transaction', decoded, signature, signer);
    const expected = viemSigned(payload, signature);
    assert.equal(result.signedTransaction, expected);
    assert.equal(result.transactionHash, keccak256(expected));
    assert.equal((await recoverTransactionAddress({ serializedTransaction: expected as never })).toLowerCase(), signer.address);
  }
});

test('unsigned bytes that are not the expected unsigned form are refused, never signed around', () => {
  const decoded = adapter.decode('evm.transaction', { chainId: 137, transaction: { type: 'legacy', to: `0x${'ab'.repeat(20)}`, nonce: 0, gas: 21000, gasPrice: 1 } }, signer);
  const prepared = decoded.prepared as PreparedTransaction;
  const signature = signDigest(decoded.digest);
  const refuse = (p: PreparedTransaction) => assert.throws(() => signedTransactionBytes(p, signature), (e: unknown) => e instanceof AirlockError && e.code === 'signature_check_failed');
  refuse({ ...prepared, chainId: 1 }); // the EIP-155 placeholder names another chain
  refuse({ ...prepared, unsigned: prepared.unsigned.subarray(0, prepared.unsigned.length - 1) }); // truncated list
  refuse({ ...prepared, type: 'eip1559' }); // no 0x02 envelope
});
