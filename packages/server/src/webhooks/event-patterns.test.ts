import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AirlockError } from '@airlock/core';
import { auditMatchFor, matchesEventPatterns, parseEventPatterns, webhookEventType } from './event-patterns.ts';
import { retryDelayMs } from './retry-schedule.ts';

test('patterns: family.* or family.name of a known family; the default is alerts, approvals and breakers', () => {
  assert.deepEqual(parseEventPatterns(undefined), ['alert.*', 'approval.*', 'breaker.*']);
  assert.deepEqual(parseEventPatterns(['alert.loop_guard', 'breaker.*', 'alert.loop_guard']), ['alert.loop_guard', 'breaker.*']);
  for (const bad of [[], ['*'], ['sign.*'], ['auth.failures'], ['alert'], ['alert.'], ['alert.**'], ['Alert.*'], ['alert.*x'], ['alert.a*'], Array.from({ length: 33 }, (_, i) => `alert.a${i}`)]) {
    assert.throws(() => parseEventPatterns(bad), (e) => e instanceof AirlockError && e.code === 'webhook_event_unknown', JSON.stringify(bad));
  }
});

test('a request held for a human is approval.requested; everything else keeps its audit type', () => {
  assert.equal(webhookEventType({ type: 'sign.request', decision: 'require_approval' }), 'approval.requested');
  assert.equal(webhookEventType({ type: 'sign.request', decision: 'allow' }), 'sign.request');
  assert.equal(webhookEventType({ type: 'approval.denied', decision: 'deny' }), 'approval.denied');
  assert.equal(matchesEventPatterns(['approval.*'], 'approval.requested'), true);
  assert.equal(matchesEventPatterns(['alert.*'], 'alertx.y'), false);
  assert.equal(matchesEventPatterns(['alert.loop_guard'], 'alert.loop_guard_2'), false);
});

test('the store is asked for prefixes, exact types, and held decisions only when approval.requested is wanted', () => {
  assert.deepEqual(auditMatchFor([['alert.*', 'agent.frozen'], ['breaker.*']]), { types: ['agent.frozen'], prefixes: ['alert.', 'breaker.'], decisions: [] });
  assert.deepEqual(auditMatchFor([['approval.requested']]).decisions, ['require_approval']);
  assert.deepEqual(auditMatchFor([['approval.*']]).decisions, ['require_approval']);
});

test('retry waits double from the base up to the cap, each plus up to half again at random', () => {
  const s = { retryBaseMs: 1_000, retryMaxMs: 10_000, maxAttempts: 15 };
  assert.deepEqual([1, 2, 3, 4, 5, 6].map((n) => retryDelayMs(n, s, () => 0)), [1_000, 2_000, 4_000, 8_000, 10_000, 10_000]);
  assert.deepEqual([1, 2, 5].map((n) => retryDelayMs(n, s, () => 0.999999)), [1_500, 3_000, 15_000]);
  assert.equal(retryDelayMs(200, s, () => 0), 10_000, 'no overflow far past the cap');
});
