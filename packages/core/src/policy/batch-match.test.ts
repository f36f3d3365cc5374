// Batches (a user operation, a Safe MultiSend, a module call) against caps, budgets, approval tiers and rate limits
// whose `match` names what the calls are: the whole of a batch is touched when any call is (calls.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Intent, UserOperationInfo } from '../intent.ts';
import type { LedgerWrite, WindowTotal } from '../ports/ledger.ts';
import { ledgerWritesFor } from './index.ts';
import { ETH, USDC, codes, decide, input, intent, layer } from './testing/fixtures.ts';

const SENDER = '0x5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a';
const SAFE = '0x5afe5afe5afe5afe5afe5afe5afe5afe5afe5afe';
const SHOP = '0x1111111111111111111111111111111111111111';
const OTHER = '0x2222222222222222222222222222222222222222';
const MODULE = '0x3333333333333333333333333333333333333333';
const MULTISEND = '0x40a2accbd92bca938b02010e17a5b8929b49130d';
const TOKEN = USDC.split(':').pop()!;

function transferCall(to: string, amount: bigint, from = SENDER, action: Intent['action'] = 'evm.user_operation'): Intent {
  return intent({ action, kind: 'erc20.transfer', from, to, spends: [{ asset: USDC, amount, to, kind: 'transfer' }], call: { contract: TOKEN, selector: '0xa9059cbb', functionName: 'transfer', args: { to, value: amount } } });
}
function approveCall(spender: string, amount: bigint): Intent {
  return intent({ action: 'evm.user_operation', kind: 'erc20.approve', from: SENDER, to: spender, approvals: [{ asset: USDC, amount, spender, unlimited: false }], call: { contract: TOKEN, selector: '0x095ea7b3', functionName: 'approve', args: { spender, value: amount } } });
}
function userOperation(calls: Intent[]): Intent {
  const op: UserOperationInfo = {
    entryPoint: '0x4337084d9e255ff0702461cf8895ce9e3b5ff108', entryPointVersion: '0.8', sender: SENDER, nonce: 0n, hash: `0x${'11'.repeat(32)}`,
    signing: 'raw', accountCall: calls.length > 1 ? 'executeBatch' : 'execute', calls, totalGas: 300_000n, prefund: 1_000n,
  };
  return intent({ action: 'evm.user_operation', kind: 'erc4337.user_operation', spends: [...calls.flatMap((c) => c.spends), { asset: ETH, amount: op.prefund, kind: 'fee' }], approvals: calls.flatMap((c) => c.approvals), fees: { maxTotalFee: op.prefund, gasLimit: op.totalGas }, userOperation: op });
}
/** A user operation calling a module that makes the account execute `inner` (Zodiac-style `executes`). */
function moduleOperation(inner: Intent[]): Intent {
  const moduleCall = intent({ action: 'evm.user_operation', kind: 'contract.call', from: SENDER, to: MODULE, spends: inner.flatMap((c) => c.spends), approvals: inner.flatMap((c) => c.approvals), call: { contract: MODULE, selector: '0x12345678', functionName: 'execTransactionWithRole' }, module: { contract: MODULE, functionName: 'execTransactionWithRole', abi: 'roles', calls: inner } });
  return userOperation([moduleCall]);
}
const safeTyped = { primaryType: 'SafeTx', domain: { chainId: 8453, verifyingContract: SAFE } } as Intent['typedData'];
function safeMultiSend(calls: Intent[]): Intent {
  const inner = calls.map((c) => ({ ...c, action: 'evm.typed_data' as const, from: SAFE, typedData: safeTyped }));
  return intent({ action: 'evm.typed_data', kind: 'safe.transaction', from: SENDER, to: MULTISEND, spends: inner.flatMap((c) => c.spends), approvals: inner.flatMap((c) => c.approvals), typedData: safeTyped, safe: { address: SAFE, nonce: 0n, operation: 'delegatecall', multiSend: MULTISEND, calls: inner } });
}

const MATCHES = [{ kinds: ['erc20.transfer'] }, { contracts: [TOKEN] }, { selectors: ['0xa9059cbb'] }, { args: { value: { gte: '0' } } }];
const payShop = { name: 'pay-shop', type: 'allow', match: { actions: ['evm.user_operation'], kinds: ['erc20.transfer', 'erc20.approve'], to: [SHOP, OTHER], assets: [USDC] } };
const coSignShop = { name: 'co-sign', type: 'allow', match: { actions: ['evm.typed_data'], kinds: ['erc20.transfer'], to: [SHOP], assets: [USDC], primary_types: ['SafeTx'], domains: [{ chain_id: 8453, verifying_contract: SAFE }] } };
const policy = (rules: unknown[]) => layer('agent', { version: 1, rules: [payShop, coSignShop, ...rules] });
const batchOf = (n: number, each: bigint) => Array.from({ length: n }, () => transferCall(SHOP, each));

for (const match of MATCHES) {
  test(`a batch of transfers is capped, budgeted and tiered on its sum with match ${JSON.stringify(match)}`, () => {
    // Each transfer fits the cap (25), the budget (100) and the tier (30): ten of them in one operation do not.
    const rules = [
      { name: 'cap', type: 'max_amount', asset: USDC, max: '25', match },
      { name: 'daily', type: 'budget', asset: USDC, max: '100', window: '24h', match },
      { name: 'tier', type: 'approval_tier', asset: USDC, above: '30', match },
    ];
    for (const request of [userOperation(batchOf(10, 25n)), moduleOperation(batchOf(10, 25n))]) {
      const d = decide([policy(rules)], input(request));
      assert.equal(d.decision, 'deny');
      assert.deepEqual(d.violations.map((v) => `${v.rule}:${v.code}:${v.requested}`), ['agent/cap:amount_exceeds_max:250', 'agent/daily:budget_exceeded:250']);
    }
    // Under the cap and the budget, above the tier: a human approves the batch.
    const tierOnly = [{ name: 'tier', type: 'approval_tier', asset: USDC, above: '30', match }];
    const held = decide([policy(tierOnly)], input(userOperation(batchOf(2, 20n))));
    assert.deepEqual(held.violations.map((v) => `${v.rule}:${v.code}:${v.requested}`), ['agent/tier:approval_required:40']);
    assert.equal(decide([policy(tierOnly)], input(userOperation(batchOf(1, 20n)))).decision, 'allow');
  });
}

test('a Safe MultiSend of transfers is capped, budgeted and tiered on its sum when the match names the transfers', () => {
  const match = { kinds: ['erc20.transfer'] };
  const rules = [
    { name: 'cap', type: 'max_amount', asset: USDC, max: '25', match },
    { name: 'daily', type: 'budget', asset: USDC, max: '100', window: '24h', match },
  ];
  const d = decide([policy(rules)], input(safeMultiSend(batchOf(5, 25n))));
  assert.deepEqual(d.violations.map((v) => `${v.rule}:${v.code}:${v.requested}`), ['agent/cap:amount_exceeds_max:125', 'agent/daily:budget_exceeded:125']);
  const tier = decide([policy([{ name: 'tier', type: 'approval_tier', asset: USDC, above: '30', match }])], input(safeMultiSend(batchOf(2, 20n))));
  assert.equal(tier.decision, 'require_approval');
  assert.equal(decide([policy(rules)], input(safeMultiSend(batchOf(2, 10n)))).decision, 'allow');
});

test('a cap or tier whose match touches some calls judges the sum of those calls; a budget, what the request charges', () => {
  const match = { kinds: ['erc20.transfer'] };
  // Transfers of 20 and an 80 approval: the transfers add up to 20, under a 25 cap and a 30 tier.
  const request = userOperation([transferCall(SHOP, 20n), approveCall(OTHER, 80n)]);
  const capTier = [{ name: 'cap', type: 'max_amount', asset: USDC, max: '25', match }, { name: 'tier', type: 'approval_tier', asset: USDC, above: '30', match }];
  assert.equal(decide([policy(capTier)], input(request)).decision, 'allow');
  // The budget's window counts every charge (semantics §6): the batch adds 100 to it, which a 90 budget refuses
  // (sent one by one, the approval first, the transfer would be refused too).
  const budget = decide([policy([{ name: 'daily', type: 'budget', asset: USDC, max: '90', window: '24h', match }])], input(request));
  assert.deepEqual(budget.violations.map((v) => `${v.rule}:${v.code}:${v.requested}`), ['agent/daily:budget_exceeded:100']);
  // A match that touches no call leaves the batch alone.
  const approvals = [{ name: 'cap', type: 'max_amount', asset: USDC, max: '1', match: { kinds: ['erc20.transfer_from'] } }];
  assert.equal(decide([policy(approvals)], input(request)).decision, 'allow');
});

test('a rate limit counts a batch once per call, and the charge counts the same', () => {
  const match = { kinds: ['erc20.transfer'] };
  const hourly = (extra: object = {}) => policy([{ name: 'hourly', type: 'rate_limit', max: 3, window: '1h', match, ...extra }]);
  const four = input(userOperation(batchOf(4, 1n)));
  const d = decide([hourly()], four);
  assert.deepEqual(d.violations.map((v) => `${v.rule}:${v.code}:${v.used}:${v.requested}`), ['agent/hourly:rate_limit_exceeded:0:4']);
  assert.equal(decide([hourly()], input(userOperation(batchOf(3, 1n)))).decision, 'allow');
  assert.equal(decide([hourly()], input(userOperation(batchOf(3, 1n))), { 'agent:ag_1|*': { count: 1 } }).decision, 'deny');
  // Per destination: the calls paying that destination.
  const perShop = hourly({ per_destination: true });
  assert.deepEqual(codes(decide([perShop], four)), ['rate_limit_exceeded']);
  assert.equal(decide([perShop], input(userOperation([...batchOf(3, 1n), transferCall(OTHER, 1n)]))).decision, 'allow');
  // Without a match too, and through a module and a Safe MultiSend.
  assert.deepEqual(codes(decide([policy([{ name: 'hourly', type: 'rate_limit', max: 3, window: '1h' }])], four)), ['rate_limit_exceeded']);
  assert.deepEqual(codes(decide([hourly()], input(moduleOperation(batchOf(4, 1n))))), ['rate_limit_exceeded']);
  assert.deepEqual(codes(decide([hourly()], input(safeMultiSend(batchOf(4, 1n))))), ['rate_limit_exceeded']);

  const counts = (i: Intent) => Object.fromEntries(ledgerWritesFor(input(i)).filter((w) => w.asset === '*').map((w) => [w.series, w.count]));
  assert.deepEqual(counts(userOperation([...batchOf(3, 1n), transferCall(OTHER, 1n)])), {
    'fleet': 4, 'agent:ag_1': 4, 'session:ses_1': 4,
    [`fleet|to:${SHOP}`]: 3, [`agent:ag_1|to:${SHOP}`]: 3, [`fleet|to:${OTHER}`]: 1, [`agent:ag_1|to:${OTHER}`]: 1,
  });
  assert.equal(counts(moduleOperation(batchOf(2, 1n)))['agent:ag_1'], 2);
  assert.equal(counts(transferCall(SHOP, 1n, SENDER, 'evm.transaction'))['agent:ag_1'], 1);
});

test('allow still reads match as covers and deny as touches on the calls of a batch', () => {
  // A deny naming transfers to OTHER refuses the batch through its call; an allow for SHOP only grants nothing to OTHER.
  const deny = policy([{ name: 'no-other', type: 'deny', match: { kinds: ['erc20.transfer'], to: [OTHER] } }]);
  assert.deepEqual(codes(decide([deny], input(userOperation([transferCall(SHOP, 1n), transferCall(OTHER, 1n)])))), ['denied_by_rule']);
  const shopOnly = layer('agent', { version: 1, rules: [{ ...payShop, match: { ...payShop.match, to: [SHOP] } }] });
  assert.deepEqual(codes(decide([shopOnly], input(userOperation([transferCall(SHOP, 1n), transferCall(OTHER, 1n)])))), ['no_matching_allow_rule']);
  assert.equal(decide([shopOnly], input(userOperation([transferCall(SHOP, 1n), transferCall(SHOP, 1n)]))).decision, 'allow');
});

// ---- Property: a batch is never allowed where the same calls, sent one by one in the same window, would be refused.

function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test('property: a batch is never allowed if its calls sent separately in one window would be refused', () => {
  const matches = [undefined, { kinds: ['erc20.transfer'] }, { kinds: ['erc20.approve'] }, { contracts: [TOKEN] }, { selectors: ['0xa9059cbb'] }, { to: [SHOP] }, { args: { value: { gte: '20' } } }, { assets: [USDC] }];
  let refusedSeparately = 0;
  let checked = 0;
  for (let seed = 1; seed <= 400; seed++) {
    const r = prng(seed);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
    const int = (lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
    const rules: object[] = [];
    for (let k = int(1, 4); k > 0; k--) {
      const match = pick(matches);
      const m = match ? { match } : {};
      switch (pick(['max_amount', 'budget', 'approval_tier', 'rate_limit'] as const)) {
        case 'max_amount': rules.push({ name: `r${k}`, type: 'max_amount', asset: USDC, max: String(int(10, 120)), ...m }); break;
        case 'budget': rules.push({ name: `r${k}`, type: 'budget', asset: USDC, max: String(int(20, 200)), window: '1h', per_destination: r() < 0.3, ...m }); break;
        case 'approval_tier': rules.push({ name: `r${k}`, type: 'approval_tier', asset: USDC, above: String(int(10, 120)), ...m }); break;
        case 'rate_limit': rules.push({ name: `r${k}`, type: 'rate_limit', max: int(1, 6), window: '1h', per_destination: r() < 0.3, ...m }); break;
      }
    }
    const layers = [policy(rules)];
    const calls = Array.from({ length: int(1, 6) }, () => (r() < 0.7 ? transferCall : approveCall)(pick([SHOP, OTHER]), BigInt(int(1, 50))));
    // What the window already holds: a few earlier single transfers.
    const totals: Record<string, WindowTotal> = {};
    const charge = (writes: readonly LedgerWrite[]) => {
      for (const w of writes) {
        const key = `${w.series}|${w.asset}`;
        const t = totals[key] ?? { amount: 0n, count: 0 };
        totals[key] = { amount: t.amount + w.amount, count: t.count + w.count };
      }
    };
    for (let k = int(0, 3); k > 0; k--) charge(ledgerWritesFor(input(userOperation([transferCall(pick([SHOP, OTHER]), BigInt(int(1, 30)))]))));
    const before = structuredClone(totals);
    const batch = decide(layers, input(userOperation(calls)), before);
    let refused = false;
    for (const call of calls) {
      const one = input(userOperation([call]));
      if (decide(layers, one, totals).decision !== 'allow') {
        refused = true;
        break;
      }
      charge(ledgerWritesFor(one));
    }
    checked++;
    if (!refused) continue;
    refusedSeparately++;
    assert.notEqual(batch.decision, 'allow', `seed ${seed}: ${JSON.stringify(rules)} / ${calls.map((c) => c.summary + ' ' + c.kind + ' ' + c.to + ' ' + (c.spends[0]?.amount ?? c.approvals[0]?.amount)).join(', ')}`);
  }
  assert.equal(checked, 400);
  assert.ok(refusedSeparately > 50, `only ${refusedSeparately} refused cases: the generator is too lax`);
});
