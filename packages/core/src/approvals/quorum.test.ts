import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compilePolicy } from '../policy/index.ts';
import type { Violation } from '../policy/decision.ts';
import { eligibleGroups, quorumMet, requiredQuorum } from './quorum.ts';

const tier = (rule: string, min?: number, groups: string[] = []): Violation => ({ rule, code: 'approval_required', message: '', ...(min !== undefined ? { quorum: { min, groups } } : {}) });

test('no tier with a quorum: an operator approves (undefined)', () => {
  assert.equal(requiredQuorum([tier('agent/big')]), undefined);
  assert.equal(requiredQuorum([]), undefined);
});

test('within one layer the largest min replaces the smaller rungs; equal largest both apply; identical ones count once', () => {
  assert.deepEqual(requiredQuorum([tier('agent/ops', 1, ['ops']), tier('agent/treasury', 2, ['treasury']), tier('agent/plain')]), [{ rule: 'agent/treasury', min: 2, groups: ['treasury'] }]);
  assert.deepEqual(requiredQuorum([tier('agent/a', 2, ['treasury']), tier('agent/b', 2, ['risk']), tier('agent/c', 2, ['treasury'])]), [
    { rule: 'agent/a', min: 2, groups: ['treasury'] },
    { rule: 'agent/b', min: 2, groups: ['risk'] },
  ]);
});

test('across layers nothing is replaced: a bigger agent quorum does not swap out the fleet\'s approvers', () => {
  assert.deepEqual(requiredQuorum([tier('fleet/treasury', 2, ['treasury']), tier('agent/ops', 3, ['ops'])]), [
    { rule: 'fleet/treasury', min: 2, groups: ['treasury'] },
    { rule: 'agent/ops', min: 3, groups: ['ops'] },
  ]);
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
