// Approvals added up per token and spender across the calls of one request (approvalTotals), and the approvals
// rule and the unlimited default judging those totals.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Approval, Intent, IntentKind, UserOperationInfo } from '../intent.ts';
import { approvalTotals, UNLIMITED_ALLOWANCE } from './approval-totals.ts';
import { USDC, decide, input, intent, layer } from './testing/fixtures.ts';

const SENDER = '0x5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a';
const ROUTER = '0x7007e7007e7007e7007e7007e7007e7007e7007e';
const OTHER = '0x6666666666666666666666666666666666666666';
const DAI = 'eip155:8453/erc20:0x50c5725949a6f0c72e6c4a641f24049a917db0cb';
const TOKEN = USDC.split(':').pop()!;

function approvalCall(kind: Extract<IntentKind, 'erc20.approve' | 'erc20.increase_allowance'>, amount: bigint, spender = ROUTER, asset = USDC): Intent {
  const approval: Approval = { asset, amount, spender, unlimited: amount >= UNLIMITED_ALLOWANCE };
  const fn = kind === 'erc20.approve' ? 'approve' : 'increaseAllowance';
  return intent({ action: 'evm.user_operation', kind, from: SENDER, to: spender, approvals: [approval], call: { contract: asset.split(':').pop()!, selector: kind === 'erc20.approve' ? '0x095ea7b3' : '0x39509351', functionName: fn, args: { spender, value: amount } } });
}
const inc = (amount: bigint, spender?: string, asset?: string) => approvalCall('erc20.increase_allowance', amount, spender, asset);
const set = (amount: bigint, spender?: string, asset?: string) => approvalCall('erc20.approve', amount, spender, asset);

function userOperation(calls: Intent[]): Intent {
  const op: UserOperationInfo = {
    entryPoint: '0x4337084d9e255ff0702461cf8895ce9e3b5ff108', entryPointVersion: '0.8', sender: SENDER, nonce: 0n, hash: `0x${'11'.repeat(32)}`,
    signing: 'raw', accountCall: 'executeBatch', calls, totalGas: 300_000n, prefund: 0n,
  };
  return intent({ action: 'evm.user_operation', kind: 'erc4337.user_operation', from: SENDER, spends: calls.flatMap((c) => c.spends), approvals: calls.flatMap((c) => c.approvals), userOperation: op });
}

const view = (i: Intent) => approvalTotals(i).map((t) => ({ asset: t.asset, spender: t.spender, amount: t.amount, unlimited: t.unlimited, lowerBound: t.lowerBound, count: t.approvals.length }));

test('increases add up per token and spender; an approve sets the running value; the peak is judged', () => {
  assert.deepEqual(view(userOperation([inc(1n << 127n), inc(1n << 127n)])), [{ asset: USDC, spender: ROUTER, amount: 1n << 128n, unlimited: true, lowerBound: true, count: 2 }]);
  assert.deepEqual(view(userOperation([set(500n), inc(600n)])), [{ asset: USDC, spender: ROUTER, amount: 1100n, unlimited: false, lowerBound: false, count: 2 }]);
  // Raised to 1200, then reset: the spender could use 1200 in between (a swap call of the same batch).
  assert.deepEqual(view(userOperation([inc(600n), inc(600n), set(0n)])), [{ asset: USDC, spender: ROUTER, amount: 1200n, unlimited: false, lowerBound: true, count: 2 }]);
  assert.deepEqual(view(userOperation([set(0n), set(1000n)])), [{ asset: USDC, spender: ROUTER, amount: 1000n, unlimited: false, lowerBound: false, count: 1 }]);
  // Other spenders and other tokens are totals of their own.
  assert.deepEqual(view(userOperation([inc(600n), inc(600n, OTHER), inc(600n, ROUTER, DAI)])).map((t) => [t.spender, t.asset, t.amount]), [[ROUTER, USDC, 600n], [OTHER, USDC, 600n], [ROUTER, DAI, 600n]]);
  // A request that executes no call is its own total.
  assert.deepEqual(view(inc(5n)), [{ asset: USDC, spender: ROUTER, amount: 5n, unlimited: false, lowerBound: true, count: 1 }]);
});

const router = (extra: unknown[]) => layer('agent', {
  version: 1,
  rules: [{ name: 'router', type: 'allow', match: { kinds: ['erc20.increase_allowance', 'erc20.approve'], to: [ROUTER], assets: [USDC] } }, ...extra],
});
const outcome = (i: Intent, extra: unknown[]) => decide([router(extra)], input(i)).violations.map((v) => `${v.rule}:${v.code}`);

test('max_allowance is judged on the batch total, with a message naming the total and the calls', () => {
  const cap = [{ name: 'cap', type: 'approvals', max_allowance: { asset: USDC, max: '1000' } }];
  assert.deepEqual(outcome(userOperation(Array.from({ length: 10 }, () => inc(1000n))), cap), ['agent/cap:approval_exceeds_cap']);
  const d = decide([router(cap)], input(userOperation(Array.from({ length: 10 }, () => inc(1000n)))));
  assert.equal(d.violations[0]!.requested, '10000');
  assert.match(d.violations[0]!.message, /^10 calls in this request approving 0x7007.* add up to 10000 base units on top of the allowance already on chain, over the cap of 1000$/);
  assert.deepEqual(outcome(userOperation([set(300n), inc(700n)]), cap), []);
  assert.deepEqual(outcome(userOperation([inc(500n), inc(500n)]), cap), []);
  // A single approval keeps its message.
  assert.match(decide([router(cap)], input(inc(2000n))).violations[0]!.message, /^approval of 2000 base units of .* exceeds the cap of 1000$/);
});

test('increases adding up to the unlimited line are refused by allow_unlimited: false and by the default, allowed by allow_unlimited: true', () => {
  const two = userOperation([inc(1n << 127n), inc(1n << 127n)]);
  assert.deepEqual(outcome(two, [{ name: 'no-unlimited', type: 'approvals', allow_unlimited: false }]), ['agent/no-unlimited:unlimited_approval']);
  assert.deepEqual(outcome(two, []), ['agent/default:unlimited_approval']);
  assert.deepEqual(outcome(two, [{ name: 'unlimited', type: 'approvals', allow_unlimited: true }]), []);
  // The allow_unlimited rule must cover every call that made the total: one for another spender does not.
  assert.deepEqual(outcome(two, [{ name: 'unlimited', type: 'approvals', allow_unlimited: true, match: { to: [OTHER] } }]), ['agent/default:unlimited_approval']);
  // Just under the line signs.
  assert.deepEqual(outcome(userOperation([inc((1n << 127n) - 1n), inc(1n << 127n)]), []), []);
});
