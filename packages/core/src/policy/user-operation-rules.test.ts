// Smart accounts: ERC-4337 user operations judged call by call and as a sum; EIP-7702 delegations.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Intent, UserOperationInfo } from '../intent.ts';
import { ledgerWritesFor } from './index.ts';
import { ETH, USDC, codes, decide, input, intent, layer, session } from './testing/fixtures.ts';

const SENDER = '0x5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a';
const SHOP = '0x1111111111111111111111111111111111111111';
const THIEF = '0x6666666666666666666666666666666666666666';
const PAYMASTER = '0x9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a';
const DELEGATE = '0xe6cae83bde06e4c305530e199d7217f42808555b';
const TOKEN = USDC.split(':').pop()!;

function transferCall(to: string, amount: bigint): Intent {
  return intent({ action: 'evm.user_operation', kind: 'erc20.transfer', from: SENDER, to, spends: [{ asset: USDC, amount, to, kind: 'transfer' }], call: { contract: TOKEN, selector: '0xa9059cbb', functionName: 'transfer', args: { to, value: amount } } });
}

function userOperation(calls: Intent[], over: Partial<UserOperationInfo> = {}): Intent {
  const op: UserOperationInfo = {
    entryPoint: '0x4337084d9e255ff0702461cf8895ce9e3b5ff108', entryPointVersion: '0.8', sender: SENDER, nonce: 0n, hash: `0x${'11'.repeat(32)}`,
    signing: 'raw', accountCall: calls.length > 1 ? 'executeBatch' : 'execute', calls, totalGas: 300_000n, prefund: 300_000n * 1_000_000_000n, ...over,
  };
  const fee = op.paymaster ? [] : [{ asset: ETH, amount: op.prefund, kind: 'fee' as const }];
  return intent({ action: 'evm.user_operation', kind: 'erc4337.user_operation', spends: [...calls.flatMap((c) => c.spends), ...fee], approvals: calls.flatMap((c) => c.approvals), fees: { maxTotalFee: op.prefund, gasLimit: op.totalGas }, userOperation: op });
}

const shopOnly = (extra: unknown[] = []) => layer('agent', {
  version: 1,
  rules: [
    { name: 'pay-shop', type: 'allow', match: { kinds: ['erc20.transfer'], to: [SHOP], assets: [USDC] } },
    { name: 'usdc-cap', type: 'max_amount', asset: USDC, max: '100' },
    ...extra,
  ],
});

test('a batch is allowed only if every call is: a drain hidden in the third call is refused with the rule that missed it', () => {
  const ok = decide([shopOnly()], input(userOperation([transferCall(SHOP, 10n), transferCall(SHOP, 20n)])));
  assert.equal(ok.decision, 'allow');
  assert.deepEqual(ok.allowedBy, ['agent/pay-shop']);
  const drain = decide([shopOnly()], input(userOperation([transferCall(SHOP, 10n), transferCall(SHOP, 20n), transferCall(THIEF, 30n)])));
  assert.equal(drain.decision, 'deny');
  assert.deepEqual(drain.violations.map((v) => `${v.rule}:${v.code}`), ['agent/default:no_matching_allow_rule']);
  assert.match(drain.violations[0]!.message, /^call 3 of 3 \(erc20\.transfer 0x6666/);
});

test("a batch's spends add up: calls each under the per-request cap are refused together, and charged once as the sum", () => {
  const d = decide([shopOnly()], input(userOperation([transferCall(SHOP, 60n), transferCall(SHOP, 60n)])));
  assert.deepEqual(d.violations.map((v) => [v.code, v.requested]), [['amount_exceeds_max', '120']]);
  const i = input(userOperation([transferCall(SHOP, 40n), transferCall(SHOP, 50n)]));
  const charged = ledgerWritesFor(i).find((w) => w.series === 'agent:ag_1' && w.asset === USDC);
  assert.equal(charged?.amount, 90n);
});

test('undecoded account calls are refused by default; so is an operation whose session scope lacks evm.user_operation', () => {
  assert.deepEqual(codes(decide([shopOnly()], input(userOperation([], { accountCall: 'unknown' })))), ['user_operation_calls_unknown']);
  const scoped = decide([shopOnly(), session({ actions: ['evm.transaction'] })], input(userOperation([transferCall(SHOP, 1n)])));
  assert.ok(codes(scoped).includes('action_not_allowed'));
});

test('prefund cap: absurd maxFeePerGas x gas limits is refused with the limit and the request', () => {
  const capped = shopOnly([{ name: 'gas', type: 'user_operations', max_prefund: '1000000000000000' }]);
  assert.equal(decide([capped], input(userOperation([transferCall(SHOP, 1n)]))).decision, 'allow');
  const greedy = userOperation([transferCall(SHOP, 1n)], { totalGas: 30_000_000n, prefund: 30_000_000n * 10n ** 12n });
  const d = decide([capped], input(greedy));
  assert.deepEqual(d.violations.map((v) => `${v.rule}:${v.code}:${v.limit}:${v.requested}`), [`agent/gas:prefund_exceeds_cap:1000000000000000:${30_000_000n * 10n ** 12n}`]);
  // fee_cap's max_total_fee reads the same prefund.
  const feeCapped = shopOnly([{ name: 'fees', type: 'fee_cap', max_total_fee: '1000' }]);
  assert.deepEqual(codes(decide([feeCapped], input(greedy))), ['fee_exceeds_cap']);
});

test('a paymaster must be listed: by default, and by name when a rule lists others', () => {
  const withPaymaster = userOperation([transferCall(SHOP, 1n)], { paymaster: PAYMASTER });
  assert.deepEqual(decide([shopOnly()], input(withPaymaster)).violations.map((v) => `${v.rule}:${v.code}`), ['agent/default:paymaster_not_allowed']);
  assert.equal(decide([shopOnly([{ name: 'pm', type: 'user_operations', paymasters: [PAYMASTER] }])], input(withPaymaster)).decision, 'allow');
  const other = decide([shopOnly([{ name: 'pm', type: 'user_operations', paymasters: [SHOP] }])], input(withPaymaster));
  assert.deepEqual(other.violations.map((v) => `${v.rule}:${v.code}`), ['agent/pm:paymaster_not_allowed']);
});

function authorization(delegate: string, chainId = 8453): Intent {
  return intent({ action: 'evm.authorization', kind: 'eip7702.authorization', delegation: { authorizations: [{ delegate, chainId, nonce: 0n, authority: '0x9999999999999999999999999999999999999999' }] } });
}

const delegating = (extra: Record<string, unknown> = {}) => layer('agent', {
  version: 1,
  rules: [
    { name: 'auth', type: 'allow', match: { kinds: ['eip7702.authorization'] } },
    { name: 'delegates', type: 'delegations', allow: [DELEGATE], ...extra },
  ],
});

test('EIP-7702: only listed delegates; none without a delegations rule; chain id 0 only with allow_any_chain', () => {
  assert.equal(decide([delegating()], input(authorization(DELEGATE))).decision, 'allow');
  assert.deepEqual(decide([delegating()], input(authorization(THIEF))).violations.map((v) => `${v.rule}:${v.code}`), ['agent/delegates:delegate_not_allowed']);
  const noRule = layer('agent', { version: 1, rules: [{ name: 'auth', type: 'allow', match: { kinds: ['eip7702.authorization'] } }] });
  assert.deepEqual(decide([noRule], input(authorization(DELEGATE))).violations.map((v) => `${v.rule}:${v.code}`), ['agent/default:delegate_not_allowed']);
  assert.deepEqual(codes(decide([delegating()], input(authorization(DELEGATE, 0)))), ['delegation_any_chain']);
  assert.equal(decide([delegating({ allow_any_chain: true })], input(authorization(DELEGATE, 0))).decision, 'allow');
  // A type-4 transaction carrying a delegation is held to the same rule, whoever its authority is.
  const type4 = intent({ kind: 'native.transfer', to: SHOP, delegation: { authorizations: [{ delegate: THIEF, chainId: 8453, nonce: 3n, authority: SHOP }] } });
  const allowAll = layer('agent', { version: 1, rules: [{ name: 'any', type: 'allow', match: {} }, { name: 'delegates', type: 'delegations', allow: [DELEGATE] }] });
  assert.deepEqual(codes(decide([allowAll], input(type4))), ['delegate_not_allowed']);
});
