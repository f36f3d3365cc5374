// Deny rules read `match` as "touches": any moved asset, any party, any named chain is enough, so a
// deny cannot be escaped by adding to the request. Typed data that moves tokens over a chainless domain
// is refused unless an allow rule opts in.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { Approval, ContractCall, Intent, IntentKind, PaymentInfo, Spend } from '../intent.ts';
import { codes, decide, ETH, input, intent, layer, NOW_MS, rules, session, USDC } from './testing/fixtures.ts';

const USDT = 'eip155:8453/erc20:0xfde4c96c8593536e31f229ea8f37b2ada2699bb2';
const DAI = 'eip155:8453/erc20:0x50c5725949a6f0c72e6c4a641f24049a917db0cb';
const PERMIT2 = '0x000000000022d473030f116ddee9f6b43ac78ba3';
const ROUTER = '0x3333333333333333333333333333333333333333';
const P = '0x1111111111111111111111111111111111111111';
const Q = '0x2222222222222222222222222222222222222222';
const TOKEN_CONTRACT = USDC.split(':').pop()!;

const allowAll = { version: 1, rules: [{ name: 'any', type: 'allow', match: {} }] };
const fleetDeny = (match: unknown, extra: unknown[] = []) => layer('fleet', { version: 1, rules: [{ name: 'no', type: 'deny', match }, ...extra] });

function permit2Batch(assets: string[], chainless = false): Intent {
  return intent({
    action: 'evm.typed_data',
    kind: 'permit2.permit_batch',
    to: ROUTER,
    approvals: assets.map((asset) => ({ asset, amount: 1_000_000n, spender: ROUTER, unlimited: false, expiresAt: NOW_MS / 1000 + 600 })),
    typedData: { primaryType: 'PermitBatch', domain: { name: 'Permit2', ...(!chainless && { chainId: 8453 }), verifyingContract: PERMIT2 } },
    validity: { validBefore: NOW_MS / 1000 + 600 },
  });
}

function eip3009(chainId: number | undefined, over: Partial<Intent> = {}): Intent {
  return intent({
    action: 'evm.typed_data',
    kind: 'eip3009.transfer_with_authorization',
    to: P,
    spends: [{ asset: USDC, amount: 1000n, to: P, kind: 'authorization' }],
    typedData: { primaryType: 'TransferWithAuthorization', domain: { name: 'USD Coin', version: '2', ...(chainId !== undefined && { chainId }), verifyingContract: TOKEN_CONTRACT } },
    validity: { validAfter: 0, validBefore: NOW_MS / 1000 + 60 },
    ...over,
  });
}

test('deny assets: a Permit2 batch of the denied asset plus another is denied, like the single permit', () => {
  const layers = [fleetDeny({ assets: [USDT] }), layer('agent', allowAll)];
  assert.deepEqual(codes(decide(layers, input(permit2Batch([USDT])))), ['denied_by_rule']);
  assert.deepEqual(codes(decide(layers, input(permit2Batch([USDT, USDC])))), ['denied_by_rule']);
  assert.deepEqual(codes(decide(layers, input(permit2Batch([USDC, DAI, USDT])))), ['denied_by_rule']);
  assert.equal(decide(layers, input(permit2Batch([USDC, DAI]))).decision, 'allow');
});

test('allow assets keeps the covers reading: a batch with an unlisted asset is not granted', () => {
  const agent = layer('agent', { version: 1, rules: [{ name: 'usdc', type: 'allow', match: { assets: [USDC] } }] });
  assert.equal(decide([agent], input(permit2Batch([USDC]))).decision, 'allow');
  assert.deepEqual(codes(decide([agent], input(permit2Batch([USDC, USDT])))), ['no_matching_allow_rule']);
});

test('deny to: any party matches (spend recipient, approval spender, call target, x402 payTo), not only intent.to', () => {
  const layers = [fleetDeny({ to: [Q] }), layer('agent', allowAll)];
  const extraRecipient = intent({ to: P, spends: [{ asset: ETH, amount: 1n, to: P, kind: 'value' }, { asset: USDC, amount: 5n, to: Q, kind: 'transfer' }] });
  assert.deepEqual(codes(decide(layers, input(extraRecipient))), ['denied_by_rule']);
  const extraSpender = intent({ kind: 'erc20.approve', to: P, approvals: [{ asset: USDC, amount: 5n, spender: P, unlimited: false }, { asset: DAI, amount: 5n, spender: Q, unlimited: false }] });
  assert.deepEqual(codes(decide(layers, input(extraSpender))), ['denied_by_rule']);
  // An ERC-20 transfer's call target is the token: a deny of that contract in `to` catches it.
  const onToken = layer('fleet', { version: 1, rules: [{ name: 'no', type: 'deny', match: { to: [TOKEN_CONTRACT] } }] });
  const transfer = intent({ kind: 'erc20.transfer', to: P, spends: [{ asset: USDC, amount: 5n, to: P, kind: 'transfer' }], call: { contract: TOKEN_CONTRACT, selector: '0xa9059cbb' } });
  assert.deepEqual(codes(decide([onToken, layer('agent', allowAll)], input(transfer))), ['denied_by_rule']);
  const payment: PaymentInfo = { protocol: 'x402', payTo: Q, network: 'eip155:8453', nonce: '1', validBefore: NOW_MS / 1000 + 60 };
  assert.deepEqual(codes(decide(layers, input(eip3009(8453, { payment })))), ['denied_by_rule']);
  assert.equal(decide(layers, input(eip3009(8453))).decision, 'allow');
});

test('deny args: a call whose arguments were not decoded cannot be cleared, so it is denied (fail closed)', () => {
  const agent = layer('agent', { version: 1, rules: [{ name: 'router', type: 'allow', match: { contracts: [ROUTER] } }] });
  const fleet = fleetDeny({ contracts: [ROUTER], args: { recipient: { in: [Q] } } });
  const call = (c: ContractCall) => intent({ kind: 'contract.call', to: ROUTER, call: c });
  assert.deepEqual(codes(decide([fleet, agent], input(call({ contract: ROUTER, selector: '0x04e45aaf' })))), ['denied_by_rule']);
  assert.deepEqual(codes(decide([fleet, agent], input(call({ contract: ROUTER, selector: '0x04e45aaf', args: { recipient: Q } })))), ['denied_by_rule']);
  assert.equal(decide([fleet, agent], input(call({ contract: ROUTER, selector: '0x04e45aaf', args: { recipient: P } }))).decision, 'allow');
});

test('deny resources: a payment naming no resource could be for any, so it is denied; other intents are not payments', () => {
  const fleet = fleetDeny({ resources: ['https://evil.example/**'] });
  const pay = (resource?: string): PaymentInfo => ({
    protocol: 'x402', payTo: P, network: 'eip155:8453', nonce: '1', validBefore: NOW_MS / 1000 + 60,
    ...(resource !== undefined && { resource, origin: new URL(resource).origin }),
  });
  const agent = layer('agent', allowAll);
  assert.deepEqual(codes(decide([fleet, agent], input(eip3009(8453, { payment: pay('https://evil.example/x') })))), ['denied_by_rule']);
  assert.deepEqual(codes(decide([fleet, agent], input(eip3009(8453, { payment: pay() })))), ['denied_by_rule']);
  assert.equal(decide([fleet, agent], input(eip3009(8453, { payment: pay('https://good.example/x') }))).decision, 'allow');
  assert.equal(decide([fleet, agent], input(eip3009(8453))).decision, 'allow');
});

test('restricting rules apply where their match touches the request: adding an unlisted asset does not switch them off', () => {
  const fleet = layer('fleet', {
    version: 1,
    rules: [
      { name: 'usdt-cap', type: 'max_amount', asset: USDT, max: '10', match: { assets: [USDT] } },
      { name: 'usdt-payees', type: 'destinations', allow: [P], match: { assets: [USDT] } },
    ],
  });
  const toQ = (assets: string[]) => intent({ kind: 'erc20.transfer', to: Q, spends: assets.map((asset) => ({ asset, amount: 100n, to: Q, kind: 'transfer' as const })) });
  const agent = layer('agent', allowAll);
  assert.deepEqual(rules(decide([fleet, agent], input(toQ([USDT])))), ['fleet/usdt-cap', 'fleet/usdt-payees']);
  assert.deepEqual(rules(decide([fleet, agent], input(toQ([USDT, DAI])))), ['fleet/usdt-cap', 'fleet/usdt-payees']);
  assert.equal(decide([fleet, agent], input(toQ([DAI]))).decision, 'allow');
});

test('destinations denylist refuses any party, the call target included; the allowlist still covers payees only', () => {
  const call = { contract: TOKEN_CONTRACT, selector: '0xa9059cbb' };
  const transfer = intent({ kind: 'erc20.transfer', to: P, spends: [{ asset: USDC, amount: 5n, to: P, kind: 'transfer' }], call });
  const deny = layer('agent', { version: 1, rules: [{ name: 'any', type: 'allow', match: {} }, { name: 'bad', type: 'destinations', deny: [TOKEN_CONTRACT] }] });
  assert.deepEqual(codes(decide([deny], input(transfer))), ['destination_denied']);
  const allow = layer('agent', { version: 1, rules: [{ name: 'any', type: 'allow', match: {} }, { name: 'payees', type: 'destinations', allow: [P] }] });
  assert.equal(decide([allow], input(transfer)).decision, 'allow');
});

test('deny chains and domain chain_id: the typed-data domain chain counts', () => {
  const agent = layer('agent', allowAll);
  assert.deepEqual(codes(decide([fleetDeny({ domains: [{ chain_id: 8453 }] }), agent], input(eip3009(8453)))), ['denied_by_rule']);
  assert.deepEqual(codes(decide([fleetDeny({ chains: ['eip155:8453'] }), agent], input(eip3009(8453)))), ['denied_by_rule']);
  assert.equal(decide([fleetDeny({ chains: ['eip155:1'] }), agent], input(eip3009(8453))).decision, 'allow');
});

test('chainless domain: value-moving typed data without domain chainId is refused unless an allow rule opts in', () => {
  const d = decide([layer('agent', allowAll)], input(eip3009(undefined)));
  assert.deepEqual(d.violations.map((v) => [v.rule, v.code]), [['agent/default', 'chainless_domain']]);
  assert.match(d.violations[0]!.message, /allow_chainless_domains/);
  assert.deepEqual(codes(decide([layer('agent', allowAll)], input(permit2Batch([USDC], true)))), ['chainless_domain']);

  const optIn = layer('agent', { version: 1, rules: [{ name: 'legacy', type: 'allow', allow_chainless_domains: true, match: { kinds: ['eip3009.transfer_with_authorization'] } }] });
  assert.deepEqual(decide([optIn], input(eip3009(undefined))).allowedBy, ['agent/legacy']);
  assert.equal(decide([optIn], input(eip3009(undefined))).decision, 'allow');
  // A fleet layer with allow rules must opt in too.
  const fleetAllows = layer('fleet', allowAll);
  assert.deepEqual(rules(decide([fleetAllows, optIn], input(eip3009(undefined)))), ['fleet/default']);

  // Valid on every chain: a chain ceiling cannot be kept, and a deny of any chain catches it.
  assert.deepEqual(codes(decide([optIn, session({ chains: ['eip155:8453'] })], input(eip3009(undefined)))), ['chain_not_allowed']);
  assert.deepEqual(codes(decide([fleetDeny({ chains: ['eip155:1'] }), optIn], input(eip3009(undefined)))), ['denied_by_rule']);
  assert.deepEqual(codes(decide([fleetDeny({ domains: [{ chain_id: 1, name: 'USD Coin' }] }), optIn], input(eip3009(undefined)))), ['denied_by_rule']);

  // Unknown typed data (no tokens move) is governed by §4 naming, not by this refusal.
  const unknown = intent({ action: 'evm.typed_data', kind: 'typed_data.unknown', typedData: { primaryType: 'Vote', domain: { name: 'snapshot', version: '0.1.4' } } });
  const named = layer('agent', { version: 1, rules: [{ name: 'votes', type: 'allow', match: { primary_types: ['Vote'], domains: [{ name: 'snapshot' }] } }] });
  assert.equal(decide([named, session({ chains: ['eip155:8453'] })], input(unknown)).decision, 'allow');
  // Unknown typed data a contract verifies, over a domain without chainId (an exchange order, say), is valid
  // wherever that contract lives: a chain scope refuses it and a deny of any chain catches it (found by review).
  const EXCHANGE = '0x00000000000000000000000000000000000014dc';
  const order = intent({ action: 'evm.typed_data', kind: 'typed_data.unknown', typedData: { primaryType: 'Order', domain: { name: 'Exchange', verifyingContract: EXCHANGE } } });
  const orders = layer('agent', { version: 1, rules: [{ name: 'orders', type: 'allow', match: { primary_types: ['Order'], domains: [{ name: 'Exchange', verifying_contract: EXCHANGE }] } }] });
  assert.equal(decide([orders], input(order)).decision, 'allow');
  assert.deepEqual(codes(decide([orders, session({ chains: ['eip155:8453'] })], input(order))), ['chain_not_allowed']);
  assert.deepEqual(codes(decide([fleetDeny({ chains: ['eip155:1'] }), orders], input(order))), ['denied_by_rule']);
});

// ---- property: adding to a request never turns a deny into an allow ----

const ADDRESSES = [P, Q, ROUTER, '0x4444444444444444444444444444444444444444'];
const ASSETS = [USDC, USDT, DAI, ETH];
const CHAINS = ['eip155:8453', 'eip155:1'];
const SELECTORS = ['0xa9059cbb', '0x04e45aaf'];
const RESOURCES = ['https://api.example/a', 'https://evil.example/b'];
const KINDS: IntentKind[] = [
  'native.transfer', 'erc20.transfer', 'erc20.approve', 'contract.call', 'eip3009.transfer_with_authorization',
  'eip2612.permit', 'permit2.permit_batch', 'permit2.permit_witness_transfer_from',
];

const address = fc.constantFrom(...ADDRESSES);
const subset = <T>(xs: readonly T[]) => fc.subarray([...xs], { minLength: 1 });
const spend: fc.Arbitrary<Spend> = fc.oneof(
  fc.record({ asset: fc.constantFrom(...ASSETS), amount: fc.bigInt(1n, 1000n), to: address, kind: fc.constantFrom('value', 'transfer', 'authorization') as fc.Arbitrary<Spend['kind']> }),
  fc.record({ asset: fc.constant(ETH), amount: fc.bigInt(1n, 1000n), kind: fc.constant('fee' as const) }),
);
const approval: fc.Arbitrary<Approval> = fc.record({ asset: fc.constantFrom(...ASSETS), amount: fc.bigInt(0n, 1000n), spender: address, unlimited: fc.boolean() });
const call: fc.Arbitrary<ContractCall> = fc.record(
  { contract: address, selector: fc.constantFrom(...SELECTORS), args: fc.record({ recipient: address, amount: fc.bigInt(0n, 1000n) }) },
  { requiredKeys: ['contract', 'selector'] },
);
const payment = (chain: string): fc.Arbitrary<PaymentInfo> =>
  fc.record(
    { protocol: fc.constant('x402' as const), payTo: address, network: fc.constant(chain), nonce: fc.constant('1'), validBefore: fc.constant(NOW_MS / 1000 + 60), resource: fc.constantFrom(...RESOURCES) },
    { requiredKeys: ['protocol', 'payTo', 'network', 'nonce', 'validBefore'] },
  );

const baseIntent: fc.Arbitrary<Intent> = fc
  .record({ chain: fc.constantFrom(...CHAINS), kind: fc.constantFrom(...KINDS), typed: fc.boolean(), domainChain: fc.boolean() })
  .chain(({ chain, kind, typed, domainChain }) =>
    fc.record(
      { to: address, spends: fc.array(spend, { maxLength: 3 }), approvals: fc.array(approval, { maxLength: 2 }), call, payment: payment(chain) },
      { requiredKeys: ['spends', 'approvals'] },
    ).map((parts): Intent => intent({
      ...parts,
      chain,
      kind,
      action: typed ? 'evm.typed_data' : 'evm.transaction',
      ...(typed && { typedData: { primaryType: 'T', domain: { name: 'D', ...(domainChain && { chainId: Number(chain.split(':')[1]) }) } } }),
    })),
  );

/** What may be added: more spends and approvals, and a counterparty, call or payment where there was none. */
const additions = (chain: string) =>
  fc.record({ spends: fc.array(spend, { maxLength: 3 }), approvals: fc.array(approval, { maxLength: 2 }), to: fc.option(address), call: fc.option(call), payment: fc.option(payment(chain)) });

function superset(i: Intent, add: { spends: Spend[]; approvals: Approval[]; to: string | null; call: ContractCall | null; payment: PaymentInfo | null }): Intent {
  return {
    ...i,
    spends: [...i.spends, ...add.spends],
    approvals: [...i.approvals, ...add.approvals],
    ...(i.to === undefined && add.to !== null && { to: add.to }),
    ...(i.call === undefined && add.call !== null && { call: add.call }),
    ...(i.payment === undefined && add.payment !== null && { payment: add.payment }),
  };
}

const matchBlock = fc.record(
  {
    actions: subset(['evm.transaction', 'evm.typed_data'] as const),
    chains: subset(CHAINS),
    kinds: subset(KINDS),
    to: subset(ADDRESSES),
    assets: subset(ASSETS),
    contracts: subset(ADDRESSES),
    selectors: subset(SELECTORS),
    args: fc.oneof(fc.record({ recipient: fc.record({ in: subset(ADDRESSES) }) }), fc.record({ amount: fc.record({ gte: fc.bigInt(0n, 1000n).map(String) }) })),
    domains: fc.constantFrom([{ chain_id: 8453 }], [{ chain_id: 1 }], [{ name: 'D' }]),
    resources: subset(['https://evil.example/**', 'https://api.example/*']),
  },
  { requiredKeys: [] },
);

/** Rules that refuse: deny rules, and restrictions whose scope is a `match`. */
const refusingRule = fc.oneof(
  { weight: 4, arbitrary: matchBlock.map((match) => ({ type: 'deny', match })) },
  { weight: 1, arbitrary: subset(ADDRESSES).map((deny) => ({ type: 'destinations', deny })) },
  { weight: 1, arbitrary: fc.record({ allow: subset(ADDRESSES), match: matchBlock }).map((r) => ({ type: 'destinations', ...r })) },
  { weight: 1, arbitrary: fc.record({ asset: fc.constantFrom(...ASSETS), max: fc.bigInt(0n, 1500n).map(String), match: matchBlock }).map((r) => ({ type: 'max_amount', ...r })) },
  { weight: 1, arbitrary: fc.record({ allow: subset(CHAINS), match: matchBlock }).map((r) => ({ type: 'chains', ...r })) },
);

test('property: for random intents and deny rules, adding spends, approvals, counterparties, calls or a payment never turns a deny into an allow', () => {
  const agent = layer('agent', {
    version: 1,
    sets: { all: ADDRESSES },
    rules: [
      { name: 'any', type: 'allow', allow_chainless_domains: true, match: {} },
      { name: 'calls', type: 'allow', allow_chainless_domains: true, match: { contracts: '$all' } },
    ],
  });
  fc.assert(
    fc.property(
      baseIntent.chain((i) => fc.tuple(fc.constant(i), additions(i.chain))),
      fc.array(refusingRule, { minLength: 1, maxLength: 3 }),
      ([i, add], refusing) => {
        const fleet = layer('fleet', { version: 1, rules: refusing.map((r, n) => ({ name: `r${n}`, ...r })) });
        const before = decide([fleet, agent], input(i));
        const after = decide([fleet, agent], input(superset(i, add)));
        // Only the refusing rules are under test: a default deny may lift once a call names a contract.
        const refusedBefore = before.violations.filter((v) => v.rule.startsWith('fleet/'));
        if (refusedBefore.length === 0) return;
        assert.equal(after.decision, 'deny');
        const refusedAfter = new Set(after.violations.map((v) => v.rule));
        for (const v of refusedBefore) assert.ok(refusedAfter.has(v.rule), `${v.rule} (${v.code}) no longer refuses`);
      },
    ),
    { numRuns: 3000 },
  );
});
