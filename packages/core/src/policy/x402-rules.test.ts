// Policy for paid APIs (x402): resource patterns, per-origin / per-resource series, the loop guard.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AirlockError } from '../errors.ts';
import type { Intent } from '../intent.ts';
import { compilePolicy, ledgerWritesFor, requiredWindows } from './index.ts';
import { compileResourcePattern, normaliseResource } from './resource-pattern.ts';
import { codes, decide, input, intent, layer, NOW_MS, USDC } from './testing/fixtures.ts';

const PAYEE = '0x1111111111111111111111111111111111111111';

function payment(resource?: string, amount = 1000n): Intent {
  const n = resource === undefined ? undefined : normaliseResource(resource);
  return intent({
    action: 'evm.typed_data',
    kind: 'eip3009.transfer_with_authorization',
    to: PAYEE,
    spends: [{ asset: USDC, amount, to: PAYEE, kind: 'authorization' }],
    validity: { validAfter: 0, validBefore: NOW_MS / 1000 + 60 },
    payment: { protocol: 'x402', payTo: PAYEE, network: 'eip155:8453', nonce: `0x${'11'.repeat(32)}`, validBefore: NOW_MS / 1000 + 60, ...(n ? { resource: n.resource, origin: n.origin } : {}) },
  });
}

const allowPaid = (resources: string[], extra: unknown[] = []) => ({
  version: 1,
  rules: [{ name: 'paid', type: 'allow', match: { kinds: ['eip3009.transfer_with_authorization'], resources } }, ...extra],
});

test('resource patterns: * is one host label or path segment, ** is anything; query, case and default port do not matter', () => {
  const p = compileResourcePattern('https://api.example.com/data/*', ['p']);
  const q = compileResourcePattern('https://*.example.org/**', ['p']);
  const root = compileResourcePattern('https://api.example.com', ['p']);
  const n = (u: string) => normaliseResource(u)!.resource;
  assert.equal(p.test(n('https://API.example.com:443/data/prices?x=1#f')), true);
  assert.equal(p.test(n('https://api.example.com/data/a/b')), false, '* is one segment');
  assert.equal(p.test(n('http://api.example.com/data/a')), false, 'the scheme is part of the pattern');
  assert.equal(p.test(n('https://api.example.com.evil.io/data/a')), false);
  assert.equal(q.test(n('https://eu.example.org/a/b/c')), true);
  assert.equal(q.test(n('https://a.b.example.org/x')), false, '* is one host label');
  assert.equal(q.test(n('https://example.org/x')), false);
  assert.equal(root.test(n('https://api.example.com')), true);
  assert.equal(compileResourcePattern('https://**/**', ['p']).test(n('https://a.b.c:8443/x/y')), true);
  assert.equal(compileResourcePattern('https://**.example.org/**', ['p']).test(n('https://evil.io/x.example.org/y')), false, 'host globs never cross /');
  assert.equal(root.test(n('https://api.example.com/data')), false, 'no path means the root only (fail closed)');
  assert.equal(normaliseResource('ftp://x/y'), undefined);
  assert.equal(normaliseResource('https://user:pw@x/y'), undefined, 'credentials are refused');
  assert.throws(() => compilePolicy(allowPaid(['api.example.com/*'])), (e: AirlockError) => e.code === 'invalid_policy' && e.message.startsWith('rules[0].match.resources[0]'));
});

test('a rule with resources matches only payments naming a matching resource: otherwise resource_not_allowed', () => {
  const l = [layer('agent', allowPaid(['https://api.example.com/**']))];
  assert.equal(decide(l, input(payment('https://api.example.com/a'))).decision, 'allow');
  const outside = decide(l, input(payment('https://evil.example.com/a')));
  assert.deepEqual(outside.violations.map((v) => `${v.rule}:${v.code}`), ['agent/paid:resource_not_allowed']);
  assert.deepEqual(codes(decide(l, input(payment(undefined)))), ['resource_not_allowed'], 'no resource: fail closed');
  // A deny rule with resources blocks only those.
  const deny = [layer('agent', allowPaid(['https://**/**'], [{ name: 'no-ads', type: 'deny', match: { resources: ['https://ads.example.com/**'] } }]))];
  assert.deepEqual(codes(decide(deny, input(payment('https://ads.example.com/x')))), ['denied_by_rule']);
  assert.equal(decide(deny, input(payment('https://api.example.com/x'))).decision, 'allow');
});

test('ledger writes charge the origin and resource series when the payment names a resource', () => {
  const writes = ledgerWritesFor(input(payment('https://api.example.com/a?q=1')));
  const series = new Set(writes.map((w) => `${w.series}|${w.asset}`));
  for (const s of [`agent:ag_1|origin:https://api.example.com|${USDC}`, `fleet|origin:https://api.example.com|${USDC}`, 'agent:ag_1|resource:https://api.example.com/a|*']) {
    assert.ok(series.has(s), s);
  }
  assert.equal(ledgerWritesFor(input(payment(undefined))).some((w) => w.series.includes('origin:') || w.series.includes('resource:')), false);
});

test('per_origin budget reads the origin series; payments without a resource are not counted by it', () => {
  const l = [layer('agent', allowPaid(['https://**/**'], [{ name: 'per-api', type: 'budget', asset: USDC, max: '2500', window: '24h', per_origin: true }]))];
  const inp = input(payment('https://api.example.com/a'));
  assert.deepEqual(requiredWindows(l, inp).map((q) => q.series), ['agent:ag_1|origin:https://api.example.com']);
  assert.equal(decide(l, inp, { [`agent:ag_1|origin:https://api.example.com|${USDC}`]: { amount: 1500n } }).decision, 'allow');
  const d = decide(l, inp, { [`agent:ag_1|origin:https://api.example.com|${USDC}`]: { amount: 1501n } });
  assert.deepEqual(d.violations.map((v) => `${v.code}:${v.used}:${v.limit}`), ['budget_exceeded:1501:2500']);
  assert.throws(() => compilePolicy(allowPaid(['https://**/**'], [{ name: 'b', type: 'budget', asset: USDC, max: '1', window: '1h', scope: 'session', per_origin: true }])), /per-origin budgets exist for scope agent and fleet/);
  assert.throws(() => compilePolicy(allowPaid(['https://**/**'], [{ name: 'b', type: 'budget', asset: USDC, max: '1', window: '1h', per_origin: true, per_destination: true }])), /not both/);
});

test('rate_limit per_resource and per_origin count their own series', () => {
  const l = [layer('agent', allowPaid(['https://**/**'], [
    { name: 'per-url', type: 'rate_limit', max: 2, window: '1m', per_resource: true },
    { name: 'per-site', type: 'rate_limit', max: 5, window: '1h', per_origin: true, scope: 'fleet' },
  ]))];
  const inp = input(payment('https://api.example.com/a'));
  assert.deepEqual(requiredWindows(l, inp).map((q) => q.series).sort(), ['agent:ag_1|resource:https://api.example.com/a', 'fleet|origin:https://api.example.com']);
  const d = decide(l, inp, { 'agent:ag_1|resource:https://api.example.com/a|*': { count: 2 }, 'fleet|origin:https://api.example.com|*': { count: 5 } });
  assert.deepEqual(d.violations.map((v) => `${v.rule}:${v.code}`), ['agent/per-url:rate_limit_exceeded', 'agent/per-site:rate_limit_exceeded']);
  assert.throws(() => compilePolicy(allowPaid(['https://**/**'], [{ name: 'r', type: 'rate_limit', max: 1, window: '1m', per_resource: true, scope: 'fleet' }])), /scope agent only/);
});

test('loop_guard: at most N payments to one resource per window (default 1m), then loop_guard_tripped', () => {
  const doc = allowPaid(['https://**/**'], [{ name: 'no-loops', type: 'loop_guard', max: 3 }]);
  const l = [layer('agent', doc)];
  const inp = input(payment('https://api.example.com/a'));
  assert.deepEqual(requiredWindows(l, inp), [{ series: 'agent:ag_1|resource:https://api.example.com/a', asset: '*', sinceMs: NOW_MS - 60_000 }]);
  assert.equal(decide(l, inp, { 'agent:ag_1|resource:https://api.example.com/a|*': { count: 2 } }).decision, 'allow');
  const d = decide(l, inp, { 'agent:ag_1|resource:https://api.example.com/a|*': { count: 3 } });
  assert.deepEqual(d.violations.map((v) => `${v.rule}:${v.code}:${v.used}:${v.limit}`), ['agent/no-loops:loop_guard_tripped:3:3']);
  assert.equal(decide(l, input(payment(undefined)), {}).violations.some((v) => v.code === 'loop_guard_tripped'), false, 'not counted without a resource');
  assert.throws(() => compilePolicy(allowPaid(['https://**/**'], [{ name: 'g', type: 'loop_guard', max: 0 }])), (e: AirlockError) => e.message.startsWith('rules[1].max'));
});

test('validity_window rules expose their maximum (the x402 builder clamps to it)', () => {
  const p = compilePolicy({ version: 1, rules: [{ name: 'v', type: 'validity_window', max_seconds: 90 }] });
  assert.equal(p.rules[0]!.maxValiditySeconds, 90);
});
