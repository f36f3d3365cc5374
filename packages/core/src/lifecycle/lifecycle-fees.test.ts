// The fee bounds a key process applies to a lifecycle transaction (assertLifecycleFee), at their edges: what the
// planner plans at a bound passes, one wei over is refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assertLifecycleFee, LIFECYCLE_MAX_FEE_SHARE_PERCENT } from './lifecycle-fees.ts';

const CHAIN = 'eip155:8453';
const GWEI = 10n ** 9n;
const fees = (gas: bigint, gasPrice: bigint) => ({ nonce: 0, gas, gasPrice });

test('a native transfer may pay at most 10% of its value (gas x gasPrice), whatever the gas price bound', () => {
  assert.equal(LIFECYCLE_MAX_FEE_SHARE_PERCENT, 10n);
  const fee = 21_000n * GWEI;
  assertLifecycleFee(CHAIN, { kind: 'native_transfer', amount: fee * 10n }, fees(21_000n, GWEI), undefined);
  assert.throws(() => assertLifecycleFee(CHAIN, { kind: 'native_transfer', amount: fee * 10n - 1n }, fees(21_000n, GWEI), undefined), (e: any) => e.code === 'lifecycle_fee_too_high');
  assert.throws(() => assertLifecycleFee(CHAIN, { kind: 'native_transfer', amount: 1n }, fees(21_000n, 10n ** 18n / 21_000n), 10n ** 18n), (e: any) => e.code === 'lifecycle_fee_too_high');
});

test('the gas price is at most max_gas_price when the fleet sets one; a token transfer or revocation has no share to weigh', () => {
  assertLifecycleFee(CHAIN, { kind: 'revocation', amount: 0n }, fees(60_000n, GWEI), GWEI);
  assertLifecycleFee(CHAIN, { kind: 'erc20_transfer', amount: 1n }, fees(60_000n, GWEI), GWEI);
  for (const kind of ['revocation', 'erc20_transfer', 'native_transfer'] as const) {
    assert.throws(() => assertLifecycleFee(CHAIN, { kind, amount: 10n ** 18n }, fees(21_000n, GWEI + 1n), GWEI), (e: any) => e.code === 'lifecycle_gas_price_too_high' && e.details.limit === String(GWEI));
  }
  // Without max_gas_price nothing here bounds a revocation's fee (docs/custody.md says so).
  assertLifecycleFee(CHAIN, { kind: 'revocation', amount: 0n }, fees(30_000_000n, 10n ** 18n), undefined);
});
