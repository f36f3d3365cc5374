import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compilePolicy } from '../policy/index.ts';
import { JUDGED_ALL_OF_ASSET, type Violation } from '../policy/decision.ts';
import { eligibleGroups, quorumMet, requiredQuorum, withOperatorApproval } from './quorum.ts';
import { USDC, decide, input, intent, layer } from '../policy/testing/fixtures.ts';

const tier = (rule: string, min?: number, groups: string[] = [], threshold?: Partial<Violation>): Violation => ({ rule, code: 'approval_required', message: '', ...(min !== undefined ? { quorum: { min, groups } } : {}), ...threshold });
/**
 * A rung of a USDC ladder: the tier's threshold as its violation carries it (`above` in base units), 1 over it
 * requested, and whether it judged all of the request's USDC (its match left out no call moving some; default yes).
 */
const above = (limit: string, judgedAll = true) => ({ asset: USDC, limit, requested: (BigInt(limit) + 1n).toString(), [JUDGED_ALL_OF_ASSET]: judgedAll });

test('no tier with a quorum: an operator approves (undefined)', () => {
  assert.equal(requiredQuorum([tier('agent/big')]), undefined);
  assert.equal(requiredQuorum([]), undefined);
});

test('a tier is dropped only when another implies it (min at least its, groups among its); identical ones count once', () => {
  // The ladder as written in docs/policy.md: 2 of treasury meets 1 of [ops, treasury], so it stands alone.
  assert.deepEqual(requiredQuorum([tier('agent/ops', 1, ['ops', 'treasury'], above('100')), tier('agent/treasury', 2, ['treasury'], above('1000')), tier('agent/plain', undefined, [], above('10'))]), [{ rule: 'agent/treasury', min: 2, groups: ['treasury'] }]);
  // A larger min of other groups does not replace a smaller quorum: both apply.
  assert.deepEqual(requiredQuorum([tier('agent/ops', 1, ['ops'], above('100')), tier('agent/treasury', 2, ['treasury'], above('1000')), tier('agent/plain', undefined, [], above('10'))]), [
    { rule: 'agent/ops', min: 1, groups: ['ops'] },
    { rule: 'agent/treasury', min: 2, groups: ['treasury'] },
  ]);
  // More groups is weaker, not stronger: 3 of [ops, treasury] can be met without treasury, so 2 of treasury stays.
  assert.deepEqual(requiredQuorum([tier('agent/t', 2, ['treasury']), tier('agent/wide', 3, ['ops', 'treasury'])]), [
    { rule: 'agent/t', min: 2, groups: ['treasury'] },
    { rule: 'agent/wide', min: 3, groups: ['ops', 'treasury'] },
  ]);
  assert.deepEqual(requiredQuorum([tier('agent/a', 2, ['treasury']), tier('agent/b', 2, ['risk']), tier('agent/c', 2, ['treasury'])]), [
    { rule: 'agent/a', min: 2, groups: ['treasury'] },
    { rule: 'agent/b', min: 2, groups: ['risk'] },
  ]);
  assert.deepEqual(requiredQuorum([tier('agent/a', 2, ['treasury', 'treasury']), tier('agent/b', 2, ['treasury'])]), [{ rule: 'agent/a', min: 2, groups: ['treasury'] }]);
});

test('an agent cannot steer the approvers: a part that touches a tier of larger min and other groups does not drop "above 1,000 -> 2 of treasury"', () => {
  const SHOP = '0x1111111111111111111111111111111111111111';
  const ROUTER = '0x2626664c2603336e57b271c5c0b26f421741e481';
  const pol = layer('agent', { version: 1, rules: [
    { name: 'pay', type: 'allow', match: { kinds: ['erc20.transfer', 'erc20.approve'], to: [SHOP, ROUTER], assets: [USDC] } },
    { name: 'big', type: 'approval_tier', asset: USDC, above: '1000000000', quorum: { min: 2, groups: ['treasury'] } },
    { name: 'router', type: 'approval_tier', match: { to: [ROUTER] }, quorum: { min: 3, groups: ['devops'] } },
  ] });
  const spends = [{ asset: USDC, amount: 50_000_000_000n, to: SHOP, kind: 'transfer' as const }];
  const plain = decide([pol], input(intent({ kind: 'erc20.transfer', to: SHOP, spends })));
  assert.deepEqual(requiredQuorum(plain.violations), [{ rule: 'agent/big', min: 2, groups: ['treasury'] }]);
  const steered = decide([pol], input(intent({ kind: 'erc20.transfer', to: SHOP, spends, approvals: [{ asset: USDC, amount: 1n, spender: ROUTER, unlimited: false }] } as never)));
  assert.equal(steered.decision, 'require_approval');
  assert.deepEqual(requiredQuorum(steered.violations), [
    { rule: 'agent/big', min: 2, groups: ['treasury'] },
    { rule: 'agent/router', min: 3, groups: ['devops'] },
  ]);
});

test('across layers nothing is replaced: a bigger agent quorum does not swap out the fleet\'s approvers', () => {
  // (unless it implies the fleet\'s: 3 of treasury meets 2 of treasury)
  assert.deepEqual(requiredQuorum([tier('fleet/treasury', 2, ['treasury']), tier('agent/more', 3, ['treasury'])]), [{ rule: 'agent/more', min: 3, groups: ['treasury'] }]);
  assert.deepEqual(requiredQuorum([tier('fleet/treasury', 2, ['treasury']), tier('agent/ops', 3, ['ops'])]), [
    { rule: 'fleet/treasury', min: 2, groups: ['treasury'] },
    { rule: 'agent/ops', min: 3, groups: ['ops'] },
  ]);
});

test('a tier without a quorum is met only by a higher rung of its ladder (same or more trusted layer, same asset, threshold at least its): otherwise the operator is required too', () => {
  const operator = (rule: string) => ({ rule, min: 1, groups: [], operator: {} });
  // The ladder: above 1,000 by the operator, above 3,000 by 2 of treasury, in the same layer or a more trusted one.
  assert.deepEqual(requiredQuorum([tier('fleet/big', undefined, [], above('1000')), tier('fleet/treasury', 2, ['treasury'], above('3000'))]), [{ rule: 'fleet/treasury', min: 2, groups: ['treasury'] }]);
  assert.deepEqual(requiredQuorum([tier('agent/big', undefined, [], above('1000')), tier('fleet/treasury', 2, ['treasury'], above('1000'))]), [{ rule: 'fleet/treasury', min: 2, groups: ['treasury'] }]);
  // The review's steering, across layers and within one: a router quorum (no threshold) never replaces the operator.
  assert.deepEqual(requiredQuorum([tier('fleet/big', undefined, [], above('1000')), tier('agent/router', 1, ['devops'])]), [{ rule: 'agent/router', min: 1, groups: ['devops'] }, operator('fleet/big')]);
  assert.deepEqual(requiredQuorum([tier('fleet/big', undefined, [], above('1000')), tier('fleet/router', 1, ['devops'])]), [{ rule: 'fleet/router', min: 1, groups: ['devops'] }, operator('fleet/big')]);
  assert.deepEqual(requiredQuorum([tier('agent/big', undefined, [], above('1000')), tier('agent/router', 1, ['devops'])]), [{ rule: 'agent/router', min: 1, groups: ['devops'] }, operator('agent/big')]);
  // Not a higher rung: a lower threshold, another asset, a less trusted layer, an operator tier without a threshold.
  assert.deepEqual(requiredQuorum([tier('fleet/big', undefined, [], above('1000')), tier('fleet/small', 1, ['ops'], above('999'))]), [{ rule: 'fleet/small', min: 1, groups: ['ops'] }, operator('fleet/big')]);
  assert.deepEqual(requiredQuorum([tier('fleet/big', undefined, [], above('1000')), tier('fleet/eth', 2, ['treasury'], { asset: 'eip155:8453/slip44:60', limit: '5000' })]), [{ rule: 'fleet/eth', min: 2, groups: ['treasury'] }, operator('fleet/big')]);
  assert.deepEqual(requiredQuorum([tier('fleet/big', undefined, [], above('1000')), tier('agent/treasury', 2, ['treasury'], above('5000'))]), [{ rule: 'agent/treasury', min: 2, groups: ['treasury'] }, operator('fleet/big')]);
  assert.deepEqual(requiredQuorum([tier('fleet/nostr-metadata'), tier('fleet/treasury', 2, ['treasury'], above('1000'))]), [{ rule: 'fleet/treasury', min: 2, groups: ['treasury'] }, operator('fleet/nostr-metadata')]);
  // A fleet rung implied by the agent's quorum still speaks for the fleet; two operator tiers make one requirement.
  assert.deepEqual(requiredQuorum([tier('fleet/big', undefined, [], above('1000')), tier('fleet/t', 2, ['treasury'], above('3000')), tier('agent/more', 3, ['treasury'])]), [{ rule: 'agent/more', min: 3, groups: ['treasury'] }]);
  assert.deepEqual(requiredQuorum([tier('fleet/a'), tier('fleet/b'), tier('agent/router', 1, ['devops'])]), [{ rule: 'agent/router', min: 1, groups: ['devops'] }, operator('fleet/a')]);
  // A rung whose match left out a call moving USDC (a 5,000 USDC transfer batched with a router approve), or one
  // found on one call of a batch (no flag), is no rung: the operator too.
  assert.deepEqual(requiredQuorum([tier('fleet/big', undefined, [], above('1000')), tier('fleet/router', 1, ['treasury'], above('1000', false))]), [{ rule: 'fleet/router', min: 1, groups: ['treasury'] }, operator('fleet/big')]);
  assert.deepEqual(requiredQuorum([tier('fleet/big', undefined, [], above('1000')), tier('fleet/t', 2, ['treasury'], { asset: USDC, limit: '3000', requested: '5000' })]), [{ rule: 'fleet/t', min: 2, groups: ['treasury'] }, operator('fleet/big')]);
  // Each operator tier needs its own higher rung: one ladder met does not speak for another tier.
  assert.deepEqual(requiredQuorum([tier('fleet/big', undefined, [], above('1000')), tier('fleet/t', 2, ['treasury'], above('3000')), tier('fleet/router-by-operator')]), [{ rule: 'fleet/t', min: 2, groups: ['treasury'] }, operator('fleet/router-by-operator')]);
});

test('as the tiers evaluate: the fleet\'s router quorum does not take a 5,000 USDC transfer from the fleet\'s operator; its treasury rung does', () => {
  const ALICE = '0x1111111111111111111111111111111111111111';
  const ROUTER = '0x2626664c2603336e57b271c5c0b26f421741e481';
  // The router is listed too: an allow rule's `to` covers everyone the request pays or lets spend.
  const agent = layer('agent', { version: 1, rules: [{ name: 'pay', type: 'allow', match: { kinds: ['erc20.transfer'], to: [ALICE, ROUTER], assets: [USDC] } }] });
  const fleet = (...rules: object[]) => layer('fleet', { version: 1, rules: [{ name: 'big-by-operator', type: 'approval_tier', asset: USDC, above: '1000000000' }, ...rules] });
  const routerByDevops = { name: 'router', type: 'approval_tier', match: { to: [ROUTER] }, quorum: { min: 1, groups: ['devops'] } };
  const treasury = { name: 'treasury', type: 'approval_tier', asset: USDC, above: '3000000000', quorum: { min: 2, groups: ['treasury'] } };
  const steered = intent({ kind: 'erc20.transfer', to: ALICE, spends: [{ asset: USDC, amount: 5_000_000_000n, to: ALICE, kind: 'transfer' as const }], approvals: [{ asset: USDC, amount: 1n, spender: ROUTER, unlimited: false }] } as never);
  assert.deepEqual(requiredQuorum(decide([fleet(routerByDevops), agent], input(steered)).violations), [
    { rule: 'fleet/router', min: 1, groups: ['devops'] },
    { rule: 'fleet/big-by-operator', min: 1, groups: [], operator: {} },
  ]);
  assert.deepEqual(requiredQuorum(decide([fleet(treasury), agent], input(steered)).violations), [{ rule: 'fleet/treasury', min: 2, groups: ['treasury'] }]);
});

test('a tripped require_approval breaker is the operator\'s requirement whatever quorum matched, the fleet\'s included', () => {
  const breaker = (code: 'breaker_open' | 'breaker_tripped', rule = 'detector/fleet/burst'): Violation => ({ rule, code, message: '' });
  const operator = (rule: string) => ({ rule, min: 1, groups: [], operator: {} });
  assert.deepEqual(requiredQuorum([tier('agent/router', 1, ['devops']), breaker('breaker_open')]), [{ rule: 'agent/router', min: 1, groups: ['devops'] }, operator('detector/fleet/burst')]);
  assert.deepEqual(requiredQuorum([tier('fleet/treasury', 2, ['treasury']), breaker('breaker_tripped', 'detector/agent/burst')]), [{ rule: 'fleet/treasury', min: 2, groups: ['treasury'] }, operator('detector/agent/burst')]);
  // One requirement, however many ask for the operator; no quorum matched: the operator approves alone, as before.
  assert.deepEqual(requiredQuorum([tier('fleet/big'), tier('agent/router', 1, ['devops']), breaker('breaker_open')]), [{ rule: 'agent/router', min: 1, groups: ['devops'] }, operator('fleet/big')]);
  assert.equal(requiredQuorum([breaker('breaker_open')]), undefined);
  assert.equal(requiredQuorum([tier('agent/big'), breaker('breaker_tripped')]), undefined);
  // An alert changes nothing.
  assert.deepEqual(requiredQuorum([tier('agent/router', 1, ['devops']), { rule: 'detector/agent/odd', code: 'anomaly_detected', message: '' }]), [{ rule: 'agent/router', min: 1, groups: ['devops'] }]);
});

test("the operator's requirement is met only by the operator's approval, given before (on the approval) or by the granting admin token; no vote counts for it", () => {
  const required = requiredQuorum([tier('fleet/big'), tier('agent/router', 1, ['devops'])])!;
  const dev = { approverId: 'd', groups: ['devops'], decision: 'approve' as const };
  assert.equal(quorumMet(required, [dev]), false);
  assert.equal(eligibleGroups(required, ['operator']), false);
  assert.equal(quorumMet(withOperatorApproval(required, undefined)!, [dev]), false);
  const approved = withOperatorApproval(required, undefined, 'admin')!;
  assert.deepEqual(approved[1], { rule: 'fleet/big', min: 1, groups: [], operator: { approvedBy: 'admin' } });
  assert.equal(quorumMet(approved, []), false, 'and the votes too');
  assert.equal(quorumMet(approved, [dev]), true);
  // Carried to the requirement a policy in force names now, from the one stored on the approval.
  const now = requiredQuorum([tier('fleet/renamed'), tier('agent/router', 1, ['devops'])]);
  assert.equal(quorumMet(withOperatorApproval(now, approved)!, [dev]), true);
});

test('met only when every requirement has min distinct approving approvers of its groups; rejects and outsiders do not count', () => {
  const reqs = [{ rule: 'fleet/t', min: 2, groups: ['treasury'] }, { rule: 'agent/o', min: 1, groups: ['ops'] }];
  const v = (approverId: string, groups: string[], decision: 'approve' | 'reject' = 'approve') => ({ approverId, groups, decision });
  assert.equal(quorumMet(reqs, [v('a', ['treasury']), v('a', ['treasury']), v('o', ['ops'])]), false, 'one approver counts once');
  assert.equal(quorumMet(reqs, [v('a', ['treasury']), v('b', ['treasury'], 'reject'), v('o', ['ops'])]), false);
  assert.equal(quorumMet(reqs, [v('a', ['treasury']), v('b', ['treasury', 'ops'])]), true, 'an approver in both groups counts for both');
  assert.equal(eligibleGroups(reqs, ['risk']), false);
  assert.equal(eligibleGroups(reqs, ['risk', 'ops']), true);
});

test('the policy refuses a malformed quorum with its path', () => {
  const doc = (quorum: unknown) => ({ version: 1, rules: [{ name: 't', type: 'approval_tier', asset: 'eip155:1/slip44:60', above: '1', quorum }] });
  for (const bad of [{ min: 0, groups: ['ops'] }, { min: 1, groups: [] }, { min: 1, groups: ['Ops!'] }, { min: 1.5, groups: ['ops'] }, { min: 1, groups: ['ops'], extra: 1 }]) {
    assert.throws(() => compilePolicy(doc(bad)), (e: any) => e.code === 'invalid_policy' && /rules\[0\]\.quorum|rules\.0\.quorum|quorum/.test(e.message), JSON.stringify(bad));
  }
  assert.ok(compilePolicy(doc({ min: 2, groups: ['treasury', 'risk'] })).rules.length === 1);
});
