// AttemptLimiter when its key map is full (the HTTP test, auth-failure-limiter.http.test.ts, fills the real one):
// aged-out keys go first, then keys under their limit; keys at their limit are never forgotten, and a map full of
// them leaves a new key uncounted (without a sweep per new key) until one of theirs expires.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AttemptLimiter } from './attempt-limiter.ts';

const MAX = 3;
const WINDOW = 60_000;

function limited(l: AttemptLimiter, key: string, now: number): void {
  for (let i = 0; i < MAX; i++) l.record(key, now);
  assert.ok(l.retryAfterMs(key, now) > 0, `${key} is at its limit`);
}

test('a full map forgets keys under their limit, never a key at it', () => {
  const l = new AttemptLimiter(MAX, WINDOW, 3);
  limited(l, 'a', 0);
  l.record('b', 0);
  l.record('c', 0);
  for (let i = 0; i < 100; i++) l.record(`new-${i}`, 1);
  assert.ok(l.retryAfterMs('a', 2) > 0, 'a stays limited');
  // Keys still count after the map filled: a new key reaches its limit.
  limited(l, 'd', 3);
});

test('aged-out keys make room first; a map full of limited keys does not take a new key until one expires', () => {
  const l = new AttemptLimiter(MAX, WINDOW, 2);
  limited(l, 'a', 0);
  limited(l, 'b', 10);
  // Full of limited keys: the new key is not counted, and they stay limited.
  for (let i = 0; i < MAX + 2; i++) l.record('c', 20);
  assert.equal(l.retryAfterMs('c', 20), 0);
  assert.ok(l.retryAfterMs('a', 20) > 0 && l.retryAfterMs('b', 20) > 0);
  // Once a's attempts left the window, its slot is taken by the next new key.
  limited(l, 'c', WINDOW + 1);
  assert.ok(l.retryAfterMs('b', WINDOW + 1) > 0, 'b still limited');
});
