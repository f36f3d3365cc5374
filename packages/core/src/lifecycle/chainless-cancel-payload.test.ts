// The one typed data the lifecycle path signs under a domain without chainId: an EIP-3009 CancelAuthorization of
// the signing key's, which cancels a chainless authorization (the token checks it under the domain the
// authorization used). Its payload is { chainId, typedData }, chainId saying where its call is sent. Every other
// typed data still names its chain: a chainless permit would be valid on every chain. The same function judges the
// payload in the daemon and in a separate key process (bound-signing.ts). Through HTTP:
// packages/server/src/chainless-authorization-dependencies.http.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classifyLifecycleTypedData, lifecycleTypedDataPayload } from './lifecycle-payloads.ts';

const FROM = '0x00000000000000000000000000000000000000f0';
const TOKEN = '0x833589fcd6edb6e08f4c7c32d4f71b54bda02913';
const SPENDER = '0x2222222222222222222222222222222222222222';
const NONCE = `0x${'c3'.repeat(32)}`;
const chainlessDomain = { name: 'USD Coin', version: '2', verifyingContract: TOKEN };
const cancel = (domain: Record<string, unknown>) => ({ domain, types: { CancelAuthorization: [{ name: 'authorizer', type: 'address' }, { name: 'nonce', type: 'bytes32' }] }, primaryType: 'CancelAuthorization', message: { authorizer: FROM, nonce: NONCE } });
const PERMIT_FIELDS = [{ name: 'owner', type: 'address' }, { name: 'spender', type: 'address' }, { name: 'value', type: 'uint256' }, { name: 'nonce', type: 'uint256' }, { name: 'deadline', type: 'uint256' }];
const permitBurn = (domain: Record<string, unknown>) => ({ domain, types: { Permit: PERMIT_FIELDS }, primaryType: 'Permit', message: { owner: FROM, spender: SPENDER, value: '0', nonce: '3', deadline: '1900000000' } });
const DAI_FIELDS = [{ name: 'holder', type: 'address' }, { name: 'spender', type: 'address' }, { name: 'nonce', type: 'uint256' }, { name: 'expiry', type: 'uint256' }, { name: 'allowed', type: 'bool' }];
const daiBurn = (domain: Record<string, unknown>) => ({ domain, types: { Permit: DAI_FIELDS }, primaryType: 'Permit', message: { holder: FROM, spender: SPENDER, nonce: '0', expiry: '0', allowed: false } });
const refused = (payload: unknown) => assert.throws(() => classifyLifecycleTypedData(payload, FROM), (e: any) => e.code === 'lifecycle_kind_refused', JSON.stringify(payload));

test('a CancelAuthorization under a domain without chainId passes, with the chain it is sent on beside it', () => {
  const payload = lifecycleTypedDataPayload(cancel(chainlessDomain) as never, 'eip155:8453');
  assert.deepEqual(payload, { chainId: 8453, typedData: cancel(chainlessDomain) });
  assert.match(classifyLifecycleTypedData(JSON.parse(JSON.stringify(payload)), FROM), /CancelAuthorization .* \(domain without chainId\)$/);
  // A domain that names its chain keeps today's payload, and only its own chain.
  assert.deepEqual(lifecycleTypedDataPayload(cancel({ ...chainlessDomain, chainId: 8453 }) as never, 'eip155:8453'), { typedData: cancel({ ...chainlessDomain, chainId: 8453 }) });
  assert.throws(() => lifecycleTypedDataPayload(cancel({ ...chainlessDomain, chainId: 8453 }) as never, 'eip155:1'), (e: any) => e.code === 'chain_mismatch');
  assert.throws(() => lifecycleTypedDataPayload(cancel(chainlessDomain) as never, 'solana:mainnet'), (e: any) => e.code === 'unsupported_chain');
});

test('any other typed data without chainId is refused: a permit burn, a DAI burn, a cancellation with no chain to send it on', () => {
  refused({ chainId: 8453, typedData: permitBurn(chainlessDomain) });
  refused({ typedData: permitBurn(chainlessDomain) });
  refused({ chainId: 8453, typedData: daiBurn(chainlessDomain) });
  refused({ typedData: cancel(chainlessDomain) });
  refused({ chainId: 0, typedData: cancel(chainlessDomain) });
  refused({ chainId: '8453', typedData: cancel(chainlessDomain) });
  // chainId in both places: the payload's is only for a domain that names none.
  refused({ chainId: 8453, typedData: cancel({ ...chainlessDomain, chainId: 8453 }) });
  // Still the signing key's own, and still the standard type.
  refused({ chainId: 8453, typedData: { ...cancel(chainlessDomain), message: { authorizer: SPENDER, nonce: NONCE } } });
  refused({ chainId: 8453, typedData: { ...cancel(chainlessDomain), primaryType: 'TransferWithAuthorization' } });
});
