// TxLocks' bookkeeping against a scripted PostgreSQL: the keys it believes held must be exactly those the lock
// statement took, also when a tried key was refused. On a batch's request without a savepoint (PostgreSQL takes
// one only before a request's first write) they stay the batch's until COMMIT, and the lock-ordering rule that
// keeps instances from deadlocking counts on knowing them (docs/architecture.md, Concurrency).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RetryInNextBatch } from '../shared/group-commit.ts';
import type { Row } from '../shared/rows.ts';
import { fleetSlotKey, seriesLockKey, TxLocks } from './tx-locks.ts';

/** Answers each lock statement with the next scripted row, and keeps the parameters sent. */
function scripted(rows: Row[]) {
  const sent: unknown[][] = [];
  const q = async (_sql: string, params: unknown[] = []) => {
    sent.push(params);
    const row = rows.shift();
    if (!row) throw new Error('no scripted answer left');
    return [row];
  };
  return { q, sent };
}

test('a refused try leaves exactly what the statement took held: the tried keys that were taken and the fleet slot', async () => {
  const [k0, k1, k2] = ['agent:a', 'agent:b', 'agent:c'].map(seriesLockKey).sort((a, b) => (a < b ? -1 : 1)) as [bigint, bigint, bigint];
  const { q, sent } = scripted([
    { lock_tried: null, lock_waited: '1', lock_slot: null },
    // k0 taken, k1 refused (another transaction holds it); the same statement took fleet slot 5.
    { lock_tried: [true, false], lock_waited: '0', lock_slot: 5 },
  ]);
  const locks = new TxLocks(q, 0);
  await locks.acquire({ keys: [k2] });
  await assert.rejects(locks.acquire({ keys: [k1, k0], slot: true }), RetryInNextBatch);
  assert.deepEqual(sent[1]![0], [k0, k1].map(String), 'below a key held, both were only tried, in order');
  assert.deepEqual([locks.holds(k0), locks.holds(k1), locks.holds(k2), locks.holds(fleetSlotKey(5))], [true, false, true, true]);
  // No savepoint to give them back: they are the batch's, and the slot is the one its fleet charges go through.
  locks.keepCurrent();
  assert.equal(locks.chargingSlot(), 5);
});
