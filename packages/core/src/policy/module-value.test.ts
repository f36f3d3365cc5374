// A module call (an `abis` declaration with `executes`) is judged by the call it makes its account execute; what the
// module call moves itself (its native value, spends its declaration adds beyond the executed call's) must be
// granted as a call of the module contract moving it, by an allow rule, at the top level and inside a user operation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Intent, UserOperationInfo } from '../intent.ts';
import { ETH, USDC, codes, decide, input, intent, layer } from './testing/fixtures.ts';

const SENDER = '0x5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a';
const SHOP = '0x1111111111111111111111111111111111111111';
const MODULE = '0x3333333333333333333333333333333333333333';
const TOKEN = USDC.split(':').pop()!;
const FIVE_ETH = 5n * 10n ** 18n;

type Action = 'evm.user_operation' | 'evm.transaction';
const transfer = (to: string, amount: bigint, action: Action): Intent =>
  intent({ action, kind: 'erc20.transfer', from: SENDER, to, spends: [{ asset: USDC, amount, to, kind: 'transfer' }], call: { contract: TOKEN, selector: '0xa9059cbb', functionName: 'transfer', args: { to, value: amount } } });

function userOp(calls: Intent[]): Intent {
  const op: UserOperationInfo = { entryPoint: '0x4337084d9e255ff0702461cf8895ce9e3b5ff108', entryPointVersion: '0.8', sender: SENDER, nonce: 0n, hash: `0x${'11'.repeat(32)}`, signing: 'raw', accountCall: 'execute', calls, totalGas: 1n, prefund: 1n };
  return intent({ action: 'evm.user_operation', kind: 'erc4337.user_operation', spends: [...calls.flatMap((c) => c.spends), { asset: ETH, amount: 1n, kind: 'fee' }], approvals: calls.flatMap((c) => c.approvals), userOperation: op });
}

/** A call of MODULE carrying `value` (and `declared` spends of its own) that makes its account execute `inner`, as enrichCall builds it. */
function moduleCall(inner: Intent[], value: bigint, action: Action, declared: Intent['spends'] = []): Intent {
  const own = value > 0n ? [{ asset: ETH, amount: value, to: MODULE, kind: 'value' as const }] : [];
  return intent({
    action, kind: 'contract.call', from: SENDER, to: MODULE, spends: [...own, ...declared, ...inner.flatMap((c) => c.spends)], approvals: inner.flatMap((c) => c.approvals),
    call: { contract: MODULE, selector: '0x12345678', functionName: 'exec' }, module: { contract: MODULE, functionName: 'exec', abi: 'roles', calls: inner },
  });
}

const allowShop = (action: Action) => ({ name: 'pay-shop', type: 'allow', match: { actions: [action], kinds: ['erc20.transfer'], to: [SHOP], assets: [USDC] } });
const allowModuleValue = (action: Action) => ({ name: 'module-fee', type: 'allow', match: { actions: [action], kinds: ['contract.call'], contracts: [MODULE], assets: [ETH] } });
const shopOnly = (action: Action) => [layer('agent', { version: 1, rules: [allowShop(action)] })];

for (const action of ['evm.user_operation', 'evm.transaction'] as const) {
  const wrap = (call: Intent) => (action === 'evm.user_operation' ? userOp([call]) : call);

  test(`${action}: native value to the module is refused unless an allow rule grants it, even with an allowed executed call`, () => {
    const d = decide(shopOnly(action), input(wrap(moduleCall([transfer(SHOP, 1n, action)], FIVE_ETH, action))));
    assert.equal(d.decision, 'deny');
    assert.deepEqual(codes(d), ['contract_call_not_allowed']);
    assert.match(d.violations[0]!.message, /the module call itself/);
  });

  test(`${action}: a zero-value module call executing an allowed transfer is allowed (the executed call is what is granted)`, () => {
    const d = decide(shopOnly(action), input(wrap(moduleCall([transfer(SHOP, 1n, action)], 0n, action))));
    assert.equal(d.decision, 'allow', JSON.stringify(d.violations));
    assert.deepEqual(d.allowedBy, ['agent/pay-shop']);
  });

  test(`${action}: spends the module's declaration adds beyond the executed call's need an allow rule too`, () => {
    const declared = [{ asset: USDC, amount: 7n, to: MODULE, kind: 'transfer' as const }];
    const d = decide(shopOnly(action), input(wrap(moduleCall([transfer(SHOP, 1n, action)], 0n, action, declared))));
    assert.equal(d.decision, 'deny');
    assert.deepEqual(codes(d), ['contract_call_not_allowed']);
  });

  test(`${action}: an allow rule covering the module contract and the native asset grants its value; the executed call is still judged`, () => {
    const layers = [layer('agent', { version: 1, rules: [allowShop(action), allowModuleValue(action)] })];
    const ok = decide(layers, input(wrap(moduleCall([transfer(SHOP, 1n, action)], FIVE_ETH, action))));
    assert.equal(ok.decision, 'allow', JSON.stringify(ok.violations));
    assert.deepEqual([...ok.allowedBy].sort(), ['agent/module-fee', 'agent/pay-shop']);
    const other = '0x2222222222222222222222222222222222222222';
    const denied = decide(layers, input(wrap(moduleCall([transfer(other, 1n, action)], FIVE_ETH, action))));
    assert.equal(denied.decision, 'deny');
    assert.deepEqual(codes(denied), ['no_matching_allow_rule']);
  });

  test(`${action}: a per-request cap on the native asset still judges the module's value`, () => {
    const layers = [layer('agent', { version: 1, rules: [allowShop(action), allowModuleValue(action), { name: 'eth-cap', type: 'max_amount', asset: ETH, max: '1000' }] })];
    const d = decide(layers, input(wrap(moduleCall([transfer(SHOP, 1n, action)], FIVE_ETH, action))));
    assert.equal(d.decision, 'deny');
    assert.ok(codes(d).includes('amount_exceeds_max'), JSON.stringify(d.violations));
  });
}

test('a plain native transfer to the module inside a user operation is refused (as before)', () => {
  const plain = intent({ action: 'evm.user_operation', kind: 'native.transfer', from: SENDER, to: MODULE, spends: [{ asset: ETH, amount: FIVE_ETH, to: MODULE, kind: 'value' }] });
  const d = decide(shopOnly('evm.user_operation'), input(userOp([plain])));
  assert.deepEqual([d.decision, codes(d)], ['deny', ['no_matching_allow_rule']]);
});
