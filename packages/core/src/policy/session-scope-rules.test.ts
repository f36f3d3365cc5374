// Policy rules with `scope: session` bound the session together with every session derived from it: a child's
// request is judged on its own series and on each ancestor's (whose series hold their descendants' charges).
// A session scope's own budgets (layers.ts) still bound only that session (and what derives from it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ancestorScopeLayer, sessionScopeLayer } from './layers.ts';
import { requiredWindows } from './evaluate.ts';
import { USDC, decide, input, intent, layer } from './testing/fixtures.ts';

const SHOP = '0x1111111111111111111111111111111111111111';
const pol = layer('agent', { version: 1, rules: [
  { name: 'pay', type: 'allow', match: { kinds: ['erc20.transfer'], to: [SHOP], assets: [USDC] } },
  { name: 'per-session', type: 'budget', asset: USDC, max: '100', window: '24h', scope: 'session' },
  { name: 'per-session-rate', type: 'rate_limit', max: 5, window: '1h', scope: 'session' },
] });
const pay = (amount: bigint) => intent({ kind: 'erc20.transfer', to: SHOP, spends: [{ asset: USDC, amount, to: SHOP, kind: 'transfer' }] });
const child = { sessionId: 'ses_child', sessionAncestors: ['ses_parent', 'ses_root'] };

test('a child is judged on its own series and each ancestor\'s: a full ancestor refuses it, naming that series', () => {
  const windows = requiredWindows([pol], input(pay(1n), child)).map((q) => `${q.series}|${q.asset}`).sort();
  assert.deepEqual(windows, [`session:ses_child|${USDC}`, 'session:ses_child|*', `session:ses_parent|${USDC}`, 'session:ses_parent|*', `session:ses_root|${USDC}`, 'session:ses_root|*'].sort());

  assert.equal(decide([pol], input(pay(100n), child)).decision, 'allow');
  const parentFull = decide([pol], input(pay(1n), child), { [`session:ses_parent|${USDC}`]: { amount: 100n } });
  assert.equal(parentFull.decision, 'deny');
  assert.deepEqual(parentFull.violations.map((v) => [v.rule, v.code, v.used, v.limit]), [['agent/per-session', 'budget_exceeded', '100', '100']]);
  assert.match(parentFull.violations[0]!.message, /session:ses_parent\b/);

  const rootBusy = decide([pol], input(pay(1n), child), { 'session:ses_root|*': { count: 5 } });
  assert.deepEqual(rootBusy.violations.map((v) => [v.rule, v.code]), [['agent/per-session-rate', 'rate_limit_exceeded']]);
  assert.match(rootBusy.violations[0]!.message, /^session:ses_root: 5 requests/);

  // Each exceeded series is named.
  const both = decide([pol], input(pay(60n), child), { [`session:ses_child|${USDC}`]: { amount: 50n }, [`session:ses_root|${USDC}`]: { amount: 90n } });
  assert.deepEqual(both.violations.map((v) => v.message.match(/session:ses_\w+/)?.[0]), ['session:ses_child', 'session:ses_root']);
});

test('a session issued by an operator (no ancestors) reads its own series alone', () => {
  const windows = requiredWindows([pol], input(pay(1n))).map((q) => q.series);
  assert.deepEqual([...new Set(windows)], ['session:ses_1']);
  assert.equal(decide([pol], input(pay(1n)), { [`session:ses_1|${USDC}`]: { amount: 100n } }).decision, 'deny');
});

test('a session scope\'s budget bounds that session only, an ancestor\'s scope budget that ancestor only', () => {
  const scope = { actions: ['evm.transaction'], chains: [], budgets: [{ asset: USDC, max: '10', window: '24h' }] };
  const allow = layer('agent', { version: 1, rules: [{ name: 'pay', type: 'allow', match: { kinds: ['erc20.transfer'], to: [SHOP], assets: [USDC] } }] });
  const own = sessionScopeLayer(scope, 'ses_child');
  const parent = ancestorScopeLayer({ ...scope, budgets: [{ asset: USDC, max: '1000', window: '24h' }] }, 'ses_parent');
  const layers = [allow, own, parent];
  // The parent's series holds 500 (its other children): the child's 10 is not measured against it.
  const d = decide(layers, input(pay(10n), child), { [`session:ses_parent|${USDC}`]: { amount: 500n } });
  assert.equal(d.decision, 'allow', JSON.stringify(d.violations));
  assert.deepEqual(requiredWindows(layers, input(pay(10n), child)).map((q) => q.series).sort(), ['session:ses_child', 'session:ses_parent']);
  const over = decide(layers, input(pay(11n), child));
  assert.deepEqual(over.violations.map((v) => v.rule), ['session/budget-0']);
});
