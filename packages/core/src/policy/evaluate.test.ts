import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AirlockError } from '../errors.ts';
import { ledgerWritesFor, requiredWindows, sessionScopeLayer } from './index.ts';
import { codes, decide, ETH, input, intent, layer, NOW_MS, rules, session, USDC } from './testing/fixtures.ts';

const P = '0x1111111111111111111111111111111111111111';
const Q = '0x2222222222222222222222222222222222222222';
const ROUTER = '0x3333333333333333333333333333333333333333';
const DAI = 'eip155:8453/erc20:0x50c5725949a6f0c72e6c4a641f24049a917db0cb';

const transfer = (amount: bigint, to = P) =>
  intent({ kind: 'erc20.transfer', to, spends: [{ asset: USDC, amount, to, kind: 'transfer' }, { asset: ETH, amount: 1_000n, kind: 'fee' }] });
const allowAll = (extra: unknown[] = []) => ({ version: 1, rules: [{ name: 'any-tx', type: 'allow', match: { actions: ['evm.transaction'] } }, ...extra] });

test('a matching allow rule grants; allowedBy names it; policyVersion joins the labels in layer order', () => {
  const d = decide([layer('agent', allowAll(), 'agent@5:9f8e'), layer('fleet', { version: 1, rules: [] }, 'fleet@3:1a2b')], input(transfer(5n)));
  assert.deepEqual(d, { decision: 'allow', violations: [], allowedBy: ['agent/any-tx'], policyVersion: 'fleet@3:1a2b,agent@5:9f8e' });
});

test('default deny: a layer with allow rules must grant; no allow rules anywhere denies', () => {
  const onlyMessages = { version: 1, rules: [{ name: 'msgs', type: 'allow', match: { actions: ['evm.message'], message: { prefix: 'hi' } } }] };
  let d = decide([layer('agent', onlyMessages)], input(transfer(5n)));
  assert.equal(d.decision, 'deny');
  assert.deepEqual(d.violations.map((v) => [v.rule, v.code]), [['agent/default', 'no_matching_allow_rule']]);
  d = decide([layer('fleet', { version: 1, rules: [{ name: 'cap', type: 'max_amount', asset: USDC, max: '10' }] })], input(transfer(5n)));
  assert.deepEqual(d.violations.map((v) => [v.rule, v.code]), [['agent/default', 'no_matching_allow_rule']]);
  // The fleet may have allow rules too: then both layers must grant.
  d = decide([layer('fleet', { version: 1, rules: [{ name: 'base', type: 'allow', match: { chains: ['eip155:1'] } }] }), layer('agent', allowAll())], input(transfer(5n)));
  assert.deepEqual(rules(d), ['fleet/default']);
  assert.deepEqual(d.allowedBy, ['agent/any-tx']);
});

test('explicit deny in the fleet beats an allow in the agent layer; all violations are listed', () => {
  const fleet = layer('fleet', { version: 1, sets: { blocked: [Q] }, rules: [{ name: 'mixers', type: 'deny', match: { to: '$blocked' } }, { name: 'cap', type: 'max_amount', asset: USDC, max: '10' }] });
  const d = decide([fleet, layer('agent', allowAll())], input(transfer(50n, Q)));
  assert.equal(d.decision, 'deny');
  assert.deepEqual(d.violations.map((v) => [v.rule, v.code]), [['fleet/mixers', 'denied_by_rule'], ['fleet/cap', 'amount_exceeds_max']]);
  assert.deepEqual(d.allowedBy, ['agent/any-tx']);
});

test('a fleet ceiling below the agent limit wins', () => {
  const fleet = layer('fleet', { version: 1, rules: [{ name: 'ceiling', type: 'max_amount', asset: USDC, max: '100' }] });
  const agent = layer('agent', allowAll([{ name: 'cap', type: 'max_amount', asset: USDC, max: '1000' }]));
  const d = decide([fleet, agent], input(transfer(500n)));
  assert.deepEqual(d.violations, [{ rule: 'fleet/ceiling', code: 'amount_exceeds_max', message: d.violations[0]!.message, limit: '100', requested: '500', asset: USDC }]);
  assert.equal(decide([fleet, agent], input(transfer(100n))).decision, 'allow');
});

test('max_amount counts native fees and bounded approvals; an unlimited approval exceeds any cap', () => {
  const agent = layer('agent', allowAll([{ name: 'eth', type: 'max_amount', asset: ETH, max: '1500' }, { name: 'usdc', type: 'max_amount', asset: USDC, max: '100' }, { name: 'unlimited-ok', type: 'approvals', allow_unlimited: true }]));
  const send = intent({ to: P, spends: [{ asset: ETH, amount: 1_000n, to: P, kind: 'value' }, { asset: ETH, amount: 600n, kind: 'fee' }] });
  assert.deepEqual(decide([agent], input(send)).violations.map((v) => [v.rule, v.requested]), [['agent/eth', '1600']]);
  const approve = (amount: bigint, unlimited: boolean, asset = USDC) =>
    intent({ kind: 'erc20.approve', to: ROUTER, approvals: [{ asset, amount, spender: ROUTER, unlimited }] });
  assert.deepEqual(codes(decide([agent], input(approve(200n, false)))), ['amount_exceeds_max']);
  assert.equal(decide([agent], input(approve(100n, false))).decision, 'allow');
  // An unlimited approval exposes the whole balance: no per-request cap of its asset lets it through.
  assert.deepEqual(decide([agent], input(approve((1n << 256n) - 1n, true))).violations.map((v) => [v.rule, v.code]), [['agent/usdc', 'amount_exceeds_max']]);
  // Of an asset no cap names, the approvals rule decides.
  assert.equal(decide([agent], input(approve((1n << 256n) - 1n, true, DAI))).decision, 'allow');
});

test('an unlimited approval is refused unless an approvals rule with allow_unlimited applies (found by review)', () => {
  const MAX = (1n << 256n) - 1n;
  const approve = (unlimited: boolean) => intent({ kind: 'erc20.approve', to: ROUTER, approvals: [{ asset: USDC, amount: unlimited ? MAX : 5n, spender: ROUTER, unlimited }] });
  const allowApprovals = { name: 'approve', type: 'allow', match: { kinds: ['erc20.approve'] } };
  // Allowed kinds, no approvals rule: a bounded approval passes, an unlimited one is refused by default.
  const bare = layer('agent', { version: 1, rules: [allowApprovals] });
  assert.equal(decide([bare], input(approve(false))).decision, 'allow');
  assert.deepEqual(decide([bare], input(approve(true))).violations.map((v) => [v.rule, v.code]), [['agent/default', 'unlimited_approval']]);
  // An approvals rule without allow_unlimited refuses it under its own name (once, not twice).
  const strict = layer('agent', { version: 1, rules: [allowApprovals, { name: 'no-unlimited', type: 'approvals' }] });
  assert.deepEqual(decide([strict], input(approve(true))).violations.map((v) => [v.rule, v.code]), [['agent/no-unlimited', 'unlimited_approval']]);
  // allow_unlimited in any layer lets it through, only where its match applies.
  const fleetAllows = layer('fleet', { version: 1, rules: [{ name: 'routers', type: 'approvals', allow_unlimited: true, match: { to: [ROUTER] } }] });
  assert.equal(decide([fleetAllows, bare], input(approve(true))).decision, 'allow');
  const elsewhere = layer('fleet', { version: 1, rules: [{ name: 'others', type: 'approvals', allow_unlimited: true, match: { to: [P] } }] });
  assert.deepEqual(codes(decide([elsewhere, bare], input(approve(true)))), ['unlimited_approval']);
  // Approval by approval: a rule scoped to USDC does not let an unlimited DAI entry of the same request through.
  const batch = intent({ kind: 'permit2.permit_batch', to: ROUTER, approvals: [{ asset: USDC, amount: 1n, spender: ROUTER, unlimited: false }, { asset: DAI, amount: MAX, spender: ROUTER, unlimited: true }] });
  const usdcOnly = layer('agent', { version: 1, rules: [{ name: 'permits', type: 'allow', match: { kinds: ['permit2.permit_batch'] } }, { name: 'unlimited-usdc', type: 'approvals', allow_unlimited: true, match: { assets: [USDC] } }] });
  assert.deepEqual(decide([usdcOnly], input(batch)).violations.map((v) => [v.rule, v.code]), [['agent/default', 'unlimited_approval']]);
  const both = layer('agent', { version: 1, rules: [{ name: 'permits', type: 'allow', match: { kinds: ['permit2.permit_batch'] } }, { name: 'unlimited-usdc-dai', type: 'approvals', allow_unlimited: true, match: { assets: [USDC, DAI] } }] });
  assert.equal(decide([both], input(batch)).decision, 'allow');
  // An approval tier of the asset holds it for a human, whatever its threshold.
  const tiered = layer('agent', { version: 1, rules: [allowApprovals, { name: 'ok', type: 'approvals', allow_unlimited: true }, { name: 'tier', type: 'approval_tier', asset: USDC, above: '1000000' }] });
  assert.equal(decide([tiered], input(approve(true))).decision, 'require_approval');
  assert.equal(decide([tiered], input(approve(false))).decision, 'allow');
});

test('budget: used + requested > max denies with limit, used and requested; scopes read their own series', () => {
  const budget = (scope: string) => layer('agent', allowAll([{ name: 'daily', type: 'budget', asset: USDC, max: '500', window: '24h', scope }]));
  const inp = input(transfer(150n));
  const windows = requiredWindows([budget('agent')], inp);
  assert.deepEqual(windows, [{ series: 'agent:ag_1', asset: USDC, sinceMs: NOW_MS - 86_400_000 }]);
  assert.equal(decide([budget('agent')], inp, { [`agent:ag_1|${USDC}`]: { amount: 350n } }).decision, 'allow');
  const d = decide([budget('agent')], inp, { [`agent:ag_1|${USDC}`]: { amount: 351n } });
  assert.deepEqual(d.violations.map(({ code, limit, used, requested, asset }) => ({ code, limit, used, requested, asset })), [
    { code: 'budget_exceeded', limit: '500', used: '351', requested: '150', asset: USDC },
  ]);
  assert.equal(decide([budget('fleet')], inp, { [`fleet|${USDC}`]: { amount: 400n } }).decision, 'deny');
  assert.equal(decide([budget('session')], inp, { [`session:ses_1|${USDC}`]: { amount: 400n } }).decision, 'deny');
  assert.equal(decide([budget('session')], inp, { [`agent:ag_1|${USDC}`]: { amount: 400n } }).decision, 'allow');
});

test('per-destination budgets check each destination separately', () => {
  const two = intent({ kind: 'contract.call', to: P, call: { contract: P, selector: '0x12345678' }, spends: [{ asset: USDC, amount: 60n, to: P, kind: 'transfer' }, { asset: USDC, amount: 60n, to: Q, kind: 'transfer' }] });
  const agentWithCalls = layer('agent', { version: 1, rules: [{ name: 'calls', type: 'allow', match: { contracts: [P] } }, { name: 'per-payee', type: 'budget', asset: USDC, max: '100', window: '1h', per_destination: true }] });
  const d = decide([agentWithCalls], input(two), { [`agent:ag_1|to:${Q}|${USDC}`]: { amount: 50n } });
  assert.deepEqual(d.violations.map((v) => [v.code, v.used, v.requested]), [['budget_exceeded', '50', '60']]);
  assert.match(d.violations[0]!.message, new RegExp(Q));
});

test('rate_limit: used + 1 > max denies', () => {
  const agent = layer('agent', allowAll([{ name: 'burst', type: 'rate_limit', max: 10, window: '1m' }]));
  assert.equal(decide([agent], input(transfer(1n)), { 'agent:ag_1|*': { count: 9 } }).decision, 'allow');
  const d = decide([agent], input(transfer(1n)), { 'agent:ag_1|*': { count: 10 } });
  assert.deepEqual(d.violations.map((v) => [v.rule, v.code, v.limit, v.used]), [['agent/burst', 'rate_limit_exceeded', '10', '10']]);
});

test('destinations: allowlist and denylist cover intent.to and every counterparty', () => {
  const allow = layer('agent', { version: 1, sets: { ok: [P] }, rules: [{ name: 'any', type: 'allow', match: {} }, { name: 'known', type: 'destinations', allow: '$ok' }] });
  assert.equal(decide([allow], input(transfer(1n, P))).decision, 'allow');
  assert.deepEqual(codes(decide([allow], input(transfer(1n, Q)))), ['destination_not_allowed']);
  // Recipient hidden in an authorization whose intent.to is someone else.
  const hidden = intent({ action: 'evm.typed_data', kind: 'eip3009.transfer_with_authorization', to: P, spends: [{ asset: USDC, amount: 1n, to: Q, kind: 'authorization' }] });
  assert.deepEqual(codes(decide([allow], input(hidden))), ['destination_not_allowed']);
  const deny = layer('agent', { version: 1, rules: [{ name: 'any', type: 'allow', match: {} }, { name: 'bad', type: 'destinations', deny: [Q] }] });
  assert.deepEqual(codes(decide([deny], input(transfer(1n, Q)))), ['destination_denied']);
});

test('approvals: unlimited, cap and spenders', () => {
  const agent = layer('agent', { version: 1, sets: { routers: [ROUTER] }, rules: [
    { name: 'approve', type: 'allow', match: { kinds: ['erc20.approve'] } },
    { name: 'approvals', type: 'approvals', max_allowance: { asset: USDC, max: '1000' }, spenders: '$routers' },
  ] });
  const approve = (amount: bigint, unlimited: boolean, spender = ROUTER) => input(intent({ kind: 'erc20.approve', to: spender, approvals: [{ asset: USDC, amount, spender, unlimited }] }));
  assert.equal(decide([agent], approve(1000n, false)).decision, 'allow');
  assert.deepEqual(codes(decide([agent], approve(1001n, false))), ['approval_exceeds_cap']);
  assert.deepEqual(codes(decide([agent], approve((1n << 256n) - 1n, true))), ['unlimited_approval', 'approval_exceeds_cap']);
  assert.deepEqual(codes(decide([agent], approve(1n, false, Q))), ['spender_not_allowed']);
});

test('fee_cap, validity_window and chains', () => {
  const agent = layer('agent', { version: 1, rules: [
    { name: 'any', type: 'allow', match: {} },
    { name: 'fees', type: 'fee_cap', max_fee_per_gas: '100', max_gas: '50000', max_total_fee: '4000000' },
    { name: 'short', type: 'validity_window', max_seconds: 3600 },
    { name: 'base', type: 'chains', allow: ['eip155:8453'] },
  ] });
  const tx = intent({ to: P, fees: { gasLimit: 60_000n, maxFeePerGas: 101n, maxTotalFee: 6_060_000n } });
  assert.deepEqual(decide([agent], input(tx)).violations.map((v) => [v.code, v.limit, v.requested]), [
    ['fee_exceeds_cap', '100', '101'], ['fee_exceeds_cap', '50000', '60000'], ['fee_exceeds_cap', '4000000', '6060000'],
  ]);
  const legacy = intent({ to: P, fees: { gasLimit: 21_000n, gasPrice: 200n } });
  assert.deepEqual(codes(decide([agent], input(legacy))), ['fee_exceeds_cap']);
  const now = NOW_MS / 1000;
  const auth = (validBefore: number) => input(intent({ action: 'evm.typed_data', kind: 'eip3009.transfer_with_authorization', to: P, validity: { validAfter: 0, validBefore } }));
  assert.equal(decide([agent], auth(now + 3600)).decision, 'allow');
  assert.deepEqual(codes(decide([agent], auth(now + 3601))), ['validity_too_long']);
  assert.deepEqual(codes(decide([agent], auth(now))), ['validity_expired']);
  assert.deepEqual(codes(decide([agent], input(intent({ chain: 'eip155:1', to: P })))), ['chain_not_allowed']);
});

test('approval_tier asks for a human only when nothing denies', () => {
  const agent = layer('agent', allowAll([{ name: 'big', type: 'approval_tier', asset: USDC, above: '1000' }, { name: 'cap', type: 'max_amount', asset: USDC, max: '5000' }]));
  assert.equal(decide([agent], input(transfer(1000n))).decision, 'allow');
  const held = decide([agent], input(transfer(1001n)));
  assert.equal(held.decision, 'require_approval');
  assert.deepEqual(held.violations.map((v) => [v.rule, v.code, v.limit, v.requested]), [['agent/big', 'approval_required', '1000', '1001']]);
  const denied = decide([agent], input(transfer(6000n)));
  assert.deepEqual(codes(denied), ['amount_exceeds_max']);
});

test('unknown typed data, messages, contract calls and deploys are granted only by a rule that names them', () => {
  const generic = layer('agent', { version: 1, rules: [{ name: 'everything', type: 'allow', match: { actions: ['evm.transaction', 'evm.typed_data', 'evm.message'] } }] });
  const mail = intent({ action: 'evm.typed_data', kind: 'typed_data.unknown', typedData: { primaryType: 'Mail', domain: { name: 'Ether Mail', chainId: 1, verifyingContract: '0xcccccccccccccccccccccccccccccccccccccccc' } } });
  const msg = intent({ action: 'evm.message', kind: 'message.personal', message: { text: 'Sign in to example.com\nNonce: 0123456789abcdef', hex: '0x' } });
  const call = intent({ kind: 'contract.call', to: ROUTER, call: { contract: ROUTER, selector: '0x12345678', args: { amount: 5n, recipient: P } } });
  const deploy = intent({ kind: 'contract.deploy' });
  assert.deepEqual(codes(decide([generic], input(mail))), ['unknown_typed_data']);
  assert.deepEqual(codes(decide([generic], input(msg))), ['message_not_allowed']);
  assert.deepEqual(codes(decide([generic], input(call))), ['contract_call_not_allowed']);
  assert.deepEqual(codes(decide([generic], input(deploy))), ['contract_deploy_not_allowed']);

  const named = layer('agent', { version: 1, sets: { payees: [P] }, rules: [
    { name: 'mail', type: 'allow', match: { primary_types: ['Mail'], domains: [{ chain_id: 1, name: 'Ether Mail' }] } },
    { name: 'mail-types-only', type: 'allow', match: { primary_types: ['Mail'] } },
    { name: 'login', type: 'allow', match: { message: { prefix: 'Sign in to example.com', pattern: 'Nonce: [0-9a-f]{16}$' } } },
    { name: 'router', type: 'allow', match: { contracts: [ROUTER], selectors: ['0x12345678'], args: { amount: { lte: '10' }, recipient: { in: '$payees' } } } },
    { name: 'deploys', type: 'allow', match: { kinds: ['contract.deploy'] } },
  ] });
  assert.deepEqual(decide([named], input(mail)).allowedBy, ['agent/mail']);
  assert.deepEqual(decide([named], input(msg)).allowedBy, ['agent/login']);
  assert.deepEqual(decide([named], input(call)).allowedBy, ['agent/router']);
  assert.deepEqual(decide([named], input(deploy)).allowedBy, ['agent/deploys']);
  // Argument constraints and message patterns are enforced.
  const bigCall = intent({ ...call, call: { contract: ROUTER, selector: '0x12345678', args: { amount: 11n, recipient: P } } });
  // An allow rule that fails only on an argument names it.
  assert.deepEqual(codes(decide([named], input(bigCall))), ['argument_constraint_failed']);
  const otherMsg = intent({ ...msg, message: { text: 'Sign in to example.com\nNonce: xyz', hex: '0x' } });
  assert.deepEqual(codes(decide([named], input(otherMsg))), ['message_not_allowed']);
  const otherDomain = intent({ ...mail, typedData: { primaryType: 'Mail', domain: { name: 'Evil Mail', chainId: 1 } } });
  assert.deepEqual(codes(decide([named], input(otherDomain))), ['unknown_typed_data']);
});

test('session layer: actions, chains and sub-budgets restrict but never grant', () => {
  const agent = layer('agent', { version: 1, rules: [{ name: 'any', type: 'allow', match: {} }] });
  const msg = intent({ action: 'evm.message', kind: 'message.personal', message: { text: 'x', hex: '0x78' } });
  assert.deepEqual(rules(decide([agent, session({ actions: ['evm.transaction'] })], input(msg))), ['agent/default', 'session/actions']);
  assert.deepEqual(codes(decide([agent, session({ chains: ['eip155:1'] })], input(transfer(1n)))), ['chain_not_allowed']);
  const budgeted = session({ budgets: [{ asset: USDC, max: '100', window: '1h' }] });
  const d = decide([agent, budgeted], input(transfer(60n)), { [`session:ses_1|${USDC}`]: { amount: 50n } });
  assert.deepEqual(d.violations.map((v) => [v.rule, v.code, v.used]), [['session/budget-0', 'budget_exceeded', '50']]);
  assert.equal(budgeted.label, 'session:ses_1');
  // A session alone grants nothing.
  assert.deepEqual(rules(decide([session({})], input(transfer(1n)))), ['agent/default']);
  assert.throws(() => sessionScopeLayer({ actions: [], chains: [], budgets: [{ asset: USDC, max: '1', window: '1y' }] }, 's'), (e: AirlockError) => /^budgets\[0\]\.window:/.test(e.message));
});

test('requiredWindows lists every window once', () => {
  const fleet = layer('fleet', { version: 1, rules: [
    { name: 'a', type: 'budget', asset: USDC, max: '1', window: '24h' },
    { name: 'b', type: 'budget', asset: USDC, max: '2', window: '24h', match: { chains: ['eip155:8453'] } },
    { name: 'c', type: 'rate_limit', max: 5, window: '24h' },
    { name: 'd', type: 'rate_limit', max: 5, window: '24h', scope: 'fleet', per_destination: true },
    { name: 'e', type: 'budget', asset: USDC, max: '1', window: '1h', match: { chains: ['eip155:1'] } },
  ] });
  const agent = layer('agent', allowAll([{ name: 'a', type: 'budget', asset: USDC, max: '5', window: '24h' }]));
  const since = NOW_MS - 86_400_000;
  assert.deepEqual(requiredWindows([agent, fleet], input(transfer(1n))), [
    { series: 'agent:ag_1', asset: USDC, sinceMs: since },
    { series: 'agent:ag_1', asset: '*', sinceMs: since },
    { series: `fleet|to:${P}`, asset: '*', sinceMs: since },
  ]);
});

test('ledgerWritesFor charges fleet, agent, session and per-destination series, merged', () => {
  const i = intent({ kind: 'contract.call', to: ROUTER, spends: [
    { asset: USDC, amount: 10n, to: P, kind: 'transfer' },
    { asset: USDC, amount: 5n, to: P, kind: 'transfer' },
    { asset: ETH, amount: 7n, kind: 'fee' },
  ], approvals: [
    { asset: USDC, amount: 3n, spender: ROUTER, unlimited: false },
    { asset: ETH, amount: (1n << 256n) - 1n, spender: Q, unlimited: true },
  ] });
  const writes = ledgerWritesFor(input(i)).map((w) => `${w.series} ${w.asset} ${w.amount} ${w.count}`);
  const base = (s: string) => [`${s} ${USDC} 18 1`, `${s} ${ETH} 7 1`, `${s} * 0 1`];
  const dest = (s: string, to: string, usdc?: bigint) => [...(usdc !== undefined ? [`${s}|to:${to} ${USDC} ${usdc} 1`] : []), `${s}|to:${to} * 0 1`];
  assert.deepEqual(writes, [
    ...base('fleet'), ...base('agent:ag_1'), ...base('session:ses_1'),
    ...dest('fleet', P, 15n), ...dest('agent:ag_1', P, 15n),
    ...dest('fleet', ROUTER, 3n), ...dest('agent:ag_1', ROUTER, 3n),
    ...dest('fleet', Q), ...dest('agent:ag_1', Q),
  ]);
});
