import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Decision } from '../policy/decision.ts';
import type { ShadowPolicyRecord } from '../ports/shadow-policies.ts';
import type { StoreTx } from '../ports/store.ts';
import { compareDecisions, ShadowPolicies } from './shadow-evaluation.ts';

const allow = (...by: string[]): Decision => ({ decision: 'allow', violations: [], allowedBy: by, policyVersion: 'v' });
const refuse = (kind: 'deny' | 'require_approval', ...rules: [string, string][]): Decision => ({
  decision: kind, violations: rules.map(([rule, code]) => ({ rule, code: code as never, message: 'm' })), allowedBy: [], policyVersion: 'v',
});

test('compareDecisions: the same decision by the same rules is `same`; by others `rules_differ`; otherwise what the candidate would do', () => {
  assert.equal(compareDecisions(allow('agent/a'), allow('agent/a')), 'same');
  assert.equal(compareDecisions(allow('agent/a'), allow('agent/b')), 'rules_differ');
  assert.equal(compareDecisions(refuse('deny', ['agent/cap', 'amount_exceeds_max']), refuse('deny', ['agent/cap', 'amount_exceeds_max'])), 'same');
  assert.equal(compareDecisions(refuse('deny', ['agent/cap', 'amount_exceeds_max'], ['agent/default', 'no_matching_allow_rule']), refuse('deny', ['agent/cap', 'amount_exceeds_max'])), 'rules_differ');
  assert.equal(compareDecisions(refuse('deny', ['agent/cap', 'amount_exceeds_max']), allow('agent/a')), 'would_allow');
  assert.equal(compareDecisions(refuse('require_approval', ['agent/big', 'approval_required']), allow('agent/a')), 'would_allow');
  assert.equal(compareDecisions(allow('agent/a'), refuse('deny', ['agent/cap', 'amount_exceeds_max'])), 'would_deny');
  assert.equal(compareDecisions(refuse('require_approval', ['agent/big', 'approval_required']), refuse('deny', ['agent/cap', 'amount_exceeds_max'])), 'would_deny');
  assert.equal(compareDecisions(allow('agent/a'), refuse('require_approval', ['agent/big', 'approval_required'])), 'would_require_approval');
});

/** A transaction that only lists candidates, counting its reads; `gate` holds a read until released. */
function fakeTx(staged: ShadowPolicyRecord[], reads: { n: number }, gate?: Promise<void>): StoreTx {
  return {
    listShadowPolicies: async () => {
      const snapshot = [...staged]; // what the read sees, before it is held
      reads.n++;
      await gate;
      return snapshot;
    },
  } as unknown as StoreTx;
}
const record = (scope: string, rules: unknown[] = []): ShadowPolicyRecord => ({ id: `shd_${scope.length}`, scope, hash: `${scope}-hash`.padEnd(64, '0'), document: { version: 1, rules }, author: 'op', createdAt: 0 });

test('candidates are cached: no read per request; this instance sees its own change at once, another within refreshMs', async (t) => {
  // The cache's age is read from performance.now(): held still here and moved past refreshMs by hand, so a machine
  // that stalls for more than refreshMs (40 ms) between two requests below cannot make the cache expire early.
  let now = performance.now();
  t.mock.method(performance, 'now', () => now);
  const staged: ShadowPolicyRecord[] = [];
  const reads = { n: 0 };
  const mine = new ShadowPolicies({ refreshMs: 40 });
  assert.deepEqual(await mine.candidatesFor(fakeTx(staged, reads), 'ag_1'), []);
  for (let i = 0; i < 100; i++) await mine.candidatesFor(fakeTx(staged, reads), 'ag_1');
  assert.equal(reads.n, 1, 'one read for 101 requests');

  staged.push(record('agent:ag_1'));
  mine.invalidate();
  assert.deepEqual((await mine.candidatesFor(fakeTx(staged, reads), 'ag_1')).map((c) => [c.layer, c.label]), [['agent', 'agent@shadow:agent:ag']]);
  assert.deepEqual(await mine.candidatesFor(fakeTx(staged, reads), 'ag_2'), [], "another agent's candidate does not apply");

  // Staged by another instance: seen once the cache is older than refreshMs.
  staged.push(record('fleet'));
  assert.equal((await mine.candidatesFor(fakeTx(staged, reads), 'ag_2')).length, 0);
  now += 60;
  assert.deepEqual((await mine.candidatesFor(fakeTx(staged, reads), 'ag_1')).map((c) => c.layer), ['fleet', 'agent']);
});

test('a read that started before an invalidation is used once but not cached (it may predate the change)', async () => {
  const staged: ShadowPolicyRecord[] = [];
  const reads = { n: 0 };
  const shadows = new ShadowPolicies({ refreshMs: 60_000 });
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const slow = shadows.candidatesFor(fakeTx(staged, reads, gate), 'ag_1');
  staged.push(record('agent:ag_1'));
  shadows.invalidate();
  release();
  assert.deepEqual(await slow, []);
  assert.equal((await shadows.candidatesFor(fakeTx(staged, reads), 'ag_1')).length, 1, 'read again, not the stale result');
});

test('a stored candidate that no longer compiles is kept as an error, not thrown', async () => {
  const shadows = new ShadowPolicies();
  const [candidate] = await shadows.candidatesFor(fakeTx([record('agent:ag_1', [{ name: 'x', type: 'no_such_rule' }])], { n: 0 }), 'ag_1');
  assert.equal(candidate!.policy, undefined);
  assert.match(candidate!.compileError!, /./);
});
