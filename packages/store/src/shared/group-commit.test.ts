// The group committer's counts (airlock_store_group_commit_size) on the paths a real store reaches only under
// contention or a failing disk: requests moved to a later batch, and a commit whose sync fails. The store
// contract tests the ordinary paths on SQLite and PostgreSQL.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AsyncLocalStorage } from 'node:async_hooks';
import { GroupCommitter, RetryInNextBatch, type BatchOps, type WithBatch } from './group-commit.ts';

const ops: BatchOps<object> = { savepoint() {}, releaseSavepoint() {}, rollbackToSavepoint() {}, stillOpen: () => true, newTx: () => ({ end() {} }) };

function committer(withBatch: WithBatch<object>) {
  let commits = 0;
  const gc = new GroupCommitter<object>({
    maxBatch: 64,
    inTransaction: new AsyncLocalStorage(),
    withBatch: async (body, size) => {
      await body(ops);
      commits++;
      return withBatch(async () => undefined, size);
    },
  });
  return { gc, storeCommits: () => commits };
}

test('a batch whose every request is moved to a later batch commits nothing of theirs and is not counted', async () => {
  const { gc, storeCommits } = committer(async () => undefined);
  let tries = 0;
  // Both requests wait (RetryInNextBatch) three times each, as behind another instance's locks, then run.
  const fn = async () => {
    if (++tries <= 6) throw new RetryInNextBatch('busy');
    return 1;
  };
  assert.deepEqual(await Promise.all([gc.submit(fn), gc.submit(fn)]), [1, 1]);
  assert.ok(storeCommits() > 1, 'the store committed the empty batches too');
  assert.deepEqual(gc.stats(), { commits: 1, transactions: 2, atMost: [0, 1, 1, 1, 1, 1, 1] });
});

test('a commit whose sync fails is no commit: its callers hear store_unavailable and the counts stay', async () => {
  let failSync = true;
  const { gc } = committer(async () => ({ durable: failSync ? Promise.reject(new Error('EIO')) : Promise.resolve() }));
  await assert.rejects(Promise.all([gc.submit(() => 1), gc.submit(() => 2)]), /store could not commit/);
  assert.deepEqual(gc.stats(), { commits: 0, transactions: 0, atMost: [0, 0, 0, 0, 0, 0, 0] });
  failSync = false;
  assert.deepEqual(await Promise.all([gc.submit(() => 1), gc.submit(() => 2), gc.submit(() => 3)]), [1, 2, 3]);
  assert.deepEqual(gc.stats(), { commits: 1, transactions: 3, atMost: [0, 0, 1, 1, 1, 1, 1] });
});
