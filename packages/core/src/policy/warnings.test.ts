// Policy warnings for smart accounts: the new actions (evm.user_operation, evm.authorization), the kinds of Safe
// calls and of the wholes no allow rule grants, and the user_operations / delegations rules. Every "can never
// grant" warning is checked against the evaluator: the rule grants none of the requests below, and the rule
// written the way the warning says grants one of them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Intent } from '../intent.ts';
import { validatePolicy } from './validate.ts';
import { USDC, decide, input, intent, layer } from './testing/fixtures.ts';

const SAFE = '0x5afe00000000000000000000000000000000cafe';
const PARTNER = '0x1111111111111111111111111111111111111111';
const TOKEN = USDC.split(':').pop()!;
const DELEGATE = '0xe6cae83bde06e4c305530e199d7217f42808555b';
const SAFE_DOMAIN = { chain_id: 8453, verifying_contract: SAFE };

const transfer = { kind: 'erc20.transfer' as const, to: PARTNER, spends: [{ asset: USDC, amount: 5n, to: PARTNER, kind: 'transfer' as const }], call: { contract: TOKEN, selector: '0xa9059cbb', functionName: 'transfer', args: { to: PARTNER, value: 5n } } };
const safeTyped = { primaryType: 'SafeTx', domain: { chainId: 8453, verifyingContract: SAFE } };

/** One request of each shape an allow rule is asked to grant, as the eip155 adapter decodes it. */
const REQUESTS: Record<string, Intent> = {
  transaction: intent({ ...transfer }),
  'safe transaction': intent({
    action: 'evm.typed_data', kind: 'safe.transaction', to: TOKEN, spends: transfer.spends, typedData: safeTyped,
    safe: { address: SAFE, nonce: 0n, operation: 'call', calls: [intent({ ...transfer, action: 'evm.typed_data', from: SAFE, typedData: safeTyped })] },
  }),
  'safe delegatecall': intent({
    action: 'evm.typed_data', kind: 'safe.transaction', to: PARTNER, typedData: safeTyped,
    safe: { address: SAFE, nonce: 0n, operation: 'delegatecall', calls: [intent({ action: 'evm.typed_data', kind: 'contract.delegatecall', from: SAFE, to: PARTNER, typedData: safeTyped, call: { contract: PARTNER, selector: '0x12345678' } })] },
  }),
  'user operation': intent({
    action: 'evm.user_operation', kind: 'erc4337.user_operation', spends: transfer.spends,
    userOperation: { entryPoint: '0x4337084d9e255ff0702461cf8895ce9e3b5ff108', entryPointVersion: '0.8', sender: SAFE, nonce: 0n, hash: `0x${'11'.repeat(32)}`, signing: 'raw', accountCall: 'execute', calls: [intent({ ...transfer, action: 'evm.user_operation', from: SAFE })], totalGas: 0n, prefund: 0n },
  }),
  authorization: intent({ action: 'evm.authorization', kind: 'eip7702.authorization', delegation: { authorizations: [{ delegate: DELEGATE, chainId: 8453, nonce: 0n, authority: '0x9999999999999999999999999999999999999999' }] } }),
};

const CEILINGS = [
  { name: 'cap', type: 'max_amount', asset: USDC, max: '100' },
  { name: 'daily', type: 'budget', asset: USDC, max: '1000', window: '24h' },
  { name: 'gas', type: 'user_operations', max_prefund: '1000000000000000' },
  { name: 'delegates', type: 'delegations', allow: [DELEGATE] },
];
const docWith = (match: Record<string, unknown>, ceilings: unknown[] = CEILINGS) => ({ version: 1, rules: [{ name: 'grant', type: 'allow', match }, ...ceilings] });
const warningsOf = (doc: unknown) => validatePolicy(doc).warnings.map((w) => w.code);
/** Which of REQUESTS the document's `grant` rule grants (itself or one of the calls it executes). */
const granted = (doc: unknown) => Object.entries(REQUESTS).filter(([, i]) => decide([layer('agent', doc)], input(i)).allowedBy.includes('agent/grant')).map(([name]) => name);

const NEVER: { name: string; match: Record<string, unknown>; fixed: Record<string, unknown>; grants: string }[] = [
  {
    name: 'a Safe transaction as a whole',
    match: { kinds: ['safe.transaction'], assets: [USDC] },
    fixed: { primary_types: ['SafeTx'], domains: [SAFE_DOMAIN], kinds: ['erc20.transfer'], assets: [USDC] },
    grants: 'safe transaction',
  },
  {
    name: 'a user operation as a whole',
    match: { actions: ['evm.user_operation'], kinds: ['erc4337.user_operation'], assets: [USDC] },
    fixed: { actions: ['evm.user_operation'], kinds: ['erc20.transfer'], assets: [USDC] },
    grants: 'user operation',
  },
  {
    name: 'Safe calls named without domains',
    match: { primary_types: ['SafeTx'], kinds: ['erc20.transfer'], assets: [USDC] },
    fixed: { primary_types: ['SafeTx'], domains: [SAFE_DOMAIN], kinds: ['erc20.transfer'], assets: [USDC] },
    grants: 'safe transaction',
  },
  {
    name: 'user operations named by their typed data',
    match: { primary_types: ['PackedUserOperation'], domains: [{ chain_id: 8453 }], assets: [USDC] },
    fixed: { actions: ['evm.user_operation'], assets: [USDC] },
    grants: 'user operation',
  },
  {
    name: 'a DELEGATECALL without the Safe',
    match: { kinds: ['contract.delegatecall'], contracts: [PARTNER] },
    fixed: { kinds: ['contract.delegatecall'], contracts: [PARTNER], primary_types: ['SafeTx'], domains: [SAFE_DOMAIN] },
    grants: 'safe delegatecall',
  },
  {
    name: 'a DELEGATECALL without its contract',
    match: { kinds: ['contract.delegatecall'], primary_types: ['SafeTx'], domains: [SAFE_DOMAIN] },
    fixed: { kinds: ['contract.delegatecall'], contracts: [PARTNER], primary_types: ['SafeTx'], domains: [SAFE_DOMAIN] },
    grants: 'safe delegatecall',
  },
  {
    name: 'token transfers under the authorization action',
    match: { actions: ['evm.authorization'], kinds: ['erc20.transfer'], assets: [USDC] },
    fixed: { actions: ['evm.authorization'], kinds: ['eip7702.authorization'] },
    grants: 'authorization',
  },
  {
    name: 'typed-data fields under the user-operation action',
    match: { actions: ['evm.user_operation'], primary_types: ['SafeTx'], domains: [SAFE_DOMAIN], assets: [USDC] },
    fixed: { actions: ['evm.typed_data'], primary_types: ['SafeTx'], domains: [SAFE_DOMAIN], assets: [USDC] },
    grants: 'safe transaction',
  },
  {
    name: 'call fields in typed data without the Safe',
    match: { actions: ['evm.typed_data'], contracts: [TOKEN], assets: [USDC] },
    fixed: { actions: ['evm.typed_data'], contracts: [TOKEN], primary_types: ['SafeTx'], domains: [SAFE_DOMAIN], assets: [USDC] },
    grants: 'safe transaction',
  },
];

for (const c of NEVER) {
  test(`allow_never_grants: ${c.name}; the evaluator agrees, and the rule written as the warning says grants`, () => {
    const doc = docWith(c.match);
    const [warning, ...more] = validatePolicy(doc).warnings;
    assert.deepEqual(more, []);
    assert.deepEqual({ code: warning?.code, rule: warning?.rule, path: warning?.path }, { code: 'allow_never_grants', rule: 'grant', path: 'rules[0].match' });
    assert.deepEqual(granted(doc), [], 'the evaluator grants nothing under it');

    const fixed = docWith(c.fixed);
    assert.deepEqual(warningsOf(fixed), []);
    assert.ok(granted(fixed).includes(c.grants), `${JSON.stringify(c.fixed)} grants the ${c.grants}: ${granted(fixed).join(', ')}`);
  });
}

test('value warnings see the calls of user operations and Safe transactions (rules that name their action or the Safe)', () => {
  assert.deepEqual(warningsOf(docWith({ actions: ['evm.user_operation'], kinds: ['erc20.transfer'] })), ['allow_without_assets']);
  assert.deepEqual(warningsOf(docWith({ primary_types: ['SafeTx'], domains: [SAFE_DOMAIN], contracts: [TOKEN] })), ['allow_without_assets']);
  assert.deepEqual(warningsOf(docWith({ actions: ['evm.user_operation'], assets: [USDC] }, CEILINGS.filter((r) => r.type !== 'budget'))), ['value_without_budget']);
  assert.ok(granted(docWith({ primary_types: ['SafeTx'], domains: [SAFE_DOMAIN], contracts: [TOKEN] })).includes('safe transaction'), 'such a rule does grant value');
});

test('an EIP-7702 authorization moves no asset: no asset warning, but one when no delegations rule lists a delegate', () => {
  assert.deepEqual(warningsOf(docWith({ kinds: ['eip7702.authorization'] })), []);
  const withoutAllowlist = validatePolicy(docWith({ actions: ['evm.authorization'] }, CEILINGS.filter((r) => r.type !== 'delegations'))).warnings;
  assert.deepEqual(withoutAllowlist.map((w) => [w.code, w.path]), [['delegation_without_allowlist', 'rules[0].match']]);
  // The evaluator refuses it for the reason the warning gives.
  const refused = decide([layer('agent', docWith({ actions: ['evm.authorization'] }, []))], input(REQUESTS.authorization!));
  assert.deepEqual(refused.violations.map((v) => v.code), ['delegate_not_allowed']);
});

test('unlimited_approvals_any_spender: an approvals rule allowing unlimited approvals without a spenders list', () => {
  const approve = { kinds: ['erc20.approve'], assets: [USDC] };
  const unlimited = (extra: Record<string, unknown>) => [...CEILINGS, { name: 'unlimited', type: 'approvals', allow_unlimited: true, ...extra }];
  assert.deepEqual(validatePolicy(docWith(approve, unlimited({}))).warnings.map((w) => [w.code, w.rule, w.path]), [['unlimited_approvals_any_spender', 'unlimited', 'rules[5].allow_unlimited']]);
  assert.deepEqual(warningsOf(docWith(approve, unlimited({ spenders: [PARTNER] }))), []);
  assert.deepEqual(warningsOf(docWith(approve, [...CEILINGS, { name: 'strict', type: 'approvals' }])), []);
});

test('prefund_unbounded: a rule naming evm.user_operation with no max_prefund and no max_total_fee in the document', () => {
  const payShop = { actions: ['evm.user_operation'], kinds: ['erc20.transfer'], assets: [USDC] };
  const withoutGasCap = CEILINGS.filter((r) => r.type !== 'user_operations');
  assert.deepEqual(validatePolicy(docWith(payShop, withoutGasCap)).warnings.map((w) => [w.code, w.path]), [['prefund_unbounded', 'rules[0].match.actions']]);
  assert.deepEqual(warningsOf(docWith(payShop, [...withoutGasCap, { name: 'fees', type: 'fee_cap', max_total_fee: '1000' }])), []);
  assert.deepEqual(warningsOf(docWith(payShop, [...withoutGasCap, { name: 'paymasters', type: 'user_operations', paymasters: [PARTNER] }])), ['prefund_unbounded']);
  assert.deepEqual(warningsOf(docWith(payShop)), []);
});

test('rules for other protocols are not judged by the EVM tables', () => {
  assert.deepEqual(warningsOf(docWith({ kinds: ['nostr.event'], nostr_kinds: [1] })), []);
  assert.deepEqual(warningsOf(docWith({ actions: ['lightning.pay'], kinds: ['lightning.payment'] })), []);
  assert.deepEqual(warningsOf(docWith({ actions: ['evm.message'], message: { prefix: 'Sign in' } })), []);
});

test('allow_without_assets with allow_chainless_domains says the chain is the agent\'s label (budgets keyed on one chain are passed by labelling another)', () => {
  const chainless = { version: 1, rules: [{ name: 'grant', type: 'allow', allow_chainless_domains: true, match: { kinds: ['eip3009.transfer_with_authorization'], to: [PARTNER] } }, ...CEILINGS] };
  const [warning] = validatePolicy(chainless).warnings;
  assert.equal(warning?.code, 'allow_without_assets');
  assert.match(warning!.message, /chainId is a label the agent picks/);
  const plain = validatePolicy({ ...chainless, rules: [{ ...chainless.rules[0], allow_chainless_domains: false }, ...CEILINGS] }).warnings[0];
  assert.doesNotMatch(plain!.message, /label/);
});

test('an allow rule granting nostr.event without nostr_kinds warns: every kind is signed (found by review)', () => {
  const anyKind = validatePolicy(docWith({ actions: ['nostr.event'] }, [])).warnings;
  assert.deepEqual(anyKind.map((w) => [w.code, w.path]), [['nostr_any_kind', 'rules[0].match.actions']]);
  assert.deepEqual(validatePolicy(docWith({ actions: ['nostr.event'], nostr_kinds: [1, 7] }, [])).warnings.map((w) => w.code), []);
});

test('an EVM native coin named by its own SLIP-44 coin type is refused, in any rule: the evaluator never charges it (once the asset_never_charged warning)', () => {
  const POL = 'eip155:137/slip44:966';
  const polCeilings = [{ name: 'pol-cap', type: 'max_amount', asset: POL, max: '1' }, { name: 'pol-daily', type: 'budget', asset: POL, max: '1', window: '24h' }];
  const doc = docWith({ chains: ['eip155:137'], kinds: ['native.transfer'], assets: [POL] }, polCeilings);
  assert.throws(() => validatePolicy(doc), (e: any) => {
    assert.equal(e.code, 'invalid_policy');
    assert.deepEqual(e.details.issues.map((i: any) => i.path), ['rules[0].match.assets[0]', 'rules[1].asset', 'rules[2].asset']);
    assert.match(e.details.issues[1].message, /eip155:<chain id>\/slip44:60, whatever the coin/);
    return true;
  });
  // Written as the message says, the cap binds 100 POL (charged as slip44:60); Bitcoin's slip44:0 and ETH's slip44:60 are accepted.
  const pol = intent({ chain: 'eip155:137', kind: 'native.transfer', to: PARTNER, spends: [{ asset: 'eip155:137/slip44:60', amount: 100n * 10n ** 18n, to: PARTNER, kind: 'value' }] });
  const fixed = { version: 1, rules: [{ name: 'grant', type: 'allow', match: { chains: ['eip155:137'], kinds: ['native.transfer'] } }, { name: 'pol-cap', type: 'max_amount', asset: 'eip155:137/slip44:60', max: '1' }] };
  assert.deepEqual(decide([layer('agent', fixed)], input(pol)).violations.map((v) => v.code), ['amount_exceeds_max']);
  assert.deepEqual(warningsOf(docWith({ kinds: ['native.transfer'], assets: ['eip155:8453/slip44:60'] }, [{ name: 'btc', type: 'max_amount', asset: 'bip122:000000000019d6689c085ae165831e93/slip44:0', max: '1' }])).filter((c) => c === 'asset_never_charged'), []);
});
