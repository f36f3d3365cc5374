// Request ids are drawn from a pool of random bytes: across refills they stay 16 hex digits and never repeat.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { freshRequestId } from './request-log.ts';

test('fresh request ids are 16 hex digits and distinct across several refills of the pool', () => {
  const ids = Array.from({ length: 1000 }, () => freshRequestId());
  for (const id of ids) assert.match(id, /^[0-9a-f]{16}$/);
  assert.equal(new Set(ids).size, ids.length);
});
