// EIP-712's own example (assets/eip-712/Example.js, the "Mail" typed data): our digest must be the spec's signHash.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bytesToHex, hexToBytes } from 'viem';
import { readVector, vectorsSkipReason } from '../../../../testing/vectors.ts';
import { createEvmAdapter } from './adapter.ts';
import { signDigest } from './test-key.ts';

interface MailVector {
  typedData: { domain: unknown; types: unknown; primaryType: string; message: unknown };
  expected: { signHash: string; address: string; privateKey: `0x${string}`; v: number; r: string; s: string };
}

test('EIP-712 Mail example: digest equals the spec signHash and the type is unknown', { skip: vectorsSkipReason }, () => {
  const vector = JSON.parse(readVector('eip712-mail-example.json')) as MailVector;
  const adapter = createEvmAdapter();
  const signer = { address: vector.expected.address };
  const decoded = adapter.decode('evm.typed_data', { typedData: vector.typedData }, signer);
  assert.equal(bytesToHex(decoded.digest), vector.expected.signHash);
  assert.equal(decoded.intent.kind, 'typed_data.unknown');
  assert.equal(decoded.intent.chain, 'eip155:1');
  assert.deepEqual(decoded.intent.typedData, {
    primaryType: 'Mail',
    domain: { name: 'Ether Mail', version: '1', chainId: 1, verifyingContract: '0xcccccccccccccccccccccccccccccccccccccccc' },
  });

  // Signing with the example's key gives the example's v, r, s (RFC 6979, low S), and finalize accepts it.
  const signature = signDigest(decoded.digest, vector.expected.privateKey);
  const result = adapter.finalize('evm.typed_data', decoded, signature, signer);
  const bytes = hexToBytes(result.signature as `0x${string}`);
  assert.equal(bytesToHex(bytes.subarray(0, 32)), vector.expected.r);
  assert.equal(bytesToHex(bytes.subarray(32, 64)), vector.expected.s);
  assert.equal(bytes[64], vector.expected.v);
});
