import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AirlockError } from '../errors.ts';
import { buildPayment, paymentPayload, toChecksumAddress } from './builder.ts';
import { evmChainIdOf, V1_EVM_NETWORKS } from './networks.ts';
import { classifyRequirement, readPaymentRequired, type PaymentCandidate } from './requirements.ts';

const USDC = '0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913';
const PAYEE = '0x1111111111111111111111111111111111111111';
const req = (over: Record<string, unknown> = {}) => ({ scheme: 'exact', network: 'eip155:8453', amount: '1000', asset: USDC, payTo: PAYEE, maxTimeoutSeconds: 60, extra: { name: 'USD Coin', version: '2' }, ...over });

test('EIP-55 checksums match the EIP\'s own examples', () => {
  for (const a of ['0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed', '0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359', '0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB']) {
    assert.equal(toChecksumAddress(a.toLowerCase()), a);
  }
});

test('v1 network names map like @x402/evm; v2 takes CAIP-2 eip155 only', () => {
  assert.deepEqual(
    ['base-sepolia', 'base', 'avalanche-fuji', 'avalanche', 'polygon-amoy', 'polygon', 'sei-testnet'].map((n) => evmChainIdOf(n, 1)),
    [84532, 8453, 43113, 43114, 80002, 137, 1328],
  );
  assert.equal(Object.keys(V1_EVM_NETWORKS).length, 23);
  assert.equal(evmChainIdOf('base', 2), undefined, 'v2 names networks by CAIP-2');
  assert.equal(evmChainIdOf('eip155:31337', 2), 31337);
  assert.equal(evmChainIdOf('solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp', 2), undefined);
  assert.equal(evmChainIdOf('toString', 1), undefined, 'no prototype keys');
});

test('requirements: header must be v2, body must be v1, accepts non-empty objects', () => {
  assert.throws(() => readPaymentRequired({ x402Version: 1, accepts: [req()] }, 'header'), (e: AirlockError) => e.code === 'invalid_request');
  assert.throws(() => readPaymentRequired({ x402Version: 2, accepts: [req()] }, 'body'), (e: AirlockError) => e.code === 'invalid_request');
  assert.throws(() => readPaymentRequired({ x402Version: 2, accepts: [] }, 'header'), /non-empty/);
  assert.throws(() => readPaymentRequired({ x402Version: 2, accepts: ['x'] }, 'header'), /object/);
  const ok = readPaymentRequired({ x402Version: 2, accepts: [req()], resource: { url: 'https://a/b' }, extensions: { bazaar: {} } }, 'header');
  assert.deepEqual(ok.resource, { url: 'https://a/b' });
});

test('classification names why a requirement cannot be paid', () => {
  const skip = (r: Record<string, unknown>, v: 1 | 2 = 2) => {
    const c = classifyRequirement(r, 0, v);
    return 'skipped' in c ? c.skipped : 'ok';
  };
  assert.equal(skip(req()), 'ok');
  assert.equal(skip(req({ scheme: 'upto' })), 'x402_unsupported_scheme');
  assert.equal(skip(req({ network: 'solana:mainnet' })), 'x402_unsupported_network');
  assert.equal(skip(req({ extra: { name: 'USD Coin' } })), 'x402_missing_domain');
  assert.equal(skip(req({ amount: '-1' })), 'x402_invalid_requirement');
  assert.equal(skip(req({ payTo: 'alice' })), 'x402_invalid_requirement');
  assert.equal(skip(req({ extra: { assetTransferMethod: 'permit2', spender: PAYEE } })), 'x402_invalid_spender');
  assert.equal(skip(req({ extra: { assetTransferMethod: 'permit2' } })), 'ok');
  assert.equal(skip(req({ extra: { assetTransferMethod: 'permit2', spender: '0x402085c248EeA27D92E8b30b2C58ed07f9E20001' } })), 'ok');
  assert.equal(skip(req({ extra: { assetTransferMethod: 'magic', name: 'a', version: '1' } })), 'x402_unsupported_scheme');
  const v1 = { scheme: 'exact', network: 'base-sepolia', maxAmountRequired: '5', asset: USDC, payTo: PAYEE, maxTimeoutSeconds: 30, resource: 'https://a', extra: { name: 'USDC', version: '2' } };
  const c = classifyRequirement(v1, 3, 1);
  assert.ok('candidate' in c);
  assert.equal(c.candidate.chainId, 84532);
  assert.equal(c.candidate.amount, 5n);
});

test('EIP-3009 build: token domain, exact value, validAfter 0, validBefore clamped, 32-byte nonce', () => {
  const c = classifyRequirement(req({ maxTimeoutSeconds: 600 }), 0, 2) as { candidate: PaymentCandidate };
  const nonce = new Uint8Array(32).fill(7);
  const built = buildPayment(c.candidate, '0x9999999999999999999999999999999999999999', nonce, 1_000, 120);
  assert.deepEqual(built.request.typedData.domain, { name: 'USD Coin', version: '2', chainId: 8453, verifyingContract: USDC });
  assert.deepEqual(built.authorization, { from: '0x9999999999999999999999999999999999999999', to: PAYEE, value: '1000', validAfter: '0', validBefore: '1120', nonce: `0x${'07'.repeat(32)}` });
  assert.equal(buildPayment(c.candidate, PAYEE, nonce, 1_000).validBefore, 1_600, 'without a policy maximum: maxTimeoutSeconds');
  assert.throws(() => buildPayment(c.candidate, PAYEE, new Uint8Array(16), 1_000), /32 bytes/);
  const payload = paymentPayload(c.candidate, { resource: { url: 'https://a/b' } }, 'https://a/b?x', built, '0xsig');
  assert.deepEqual(Object.keys(payload), ['x402Version', 'payload', 'resource', 'accepted']);
  assert.equal(payload.accepted, c.candidate.raw);
});
