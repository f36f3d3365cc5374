// The SQLite store's commits are synced off the event loop (WalSync): what a caller hears of a commit, its
// own answer, work handed over as afterCommit, or any read that saw it, waits for an fdatasync of the WAL
// that began after the COMMIT. These tests hold or fail that sync (the store's test-only `syncWal`) and
// look at what callers get meanwhile; the last ones check the default sync hits the WAL file itself.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { fdatasync, fstatSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import type { AuditEntryInput } from '@airlock/core';
import { openSqliteStore } from './sqlite-store.ts';
import { MAX_COMMITS_AWAITING_SYNC, type SyncFile } from './wal-sync.ts';

const dir = mkdtempSync(join(tmpdir(), 'airlock-walsync-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const tempPath = () => join(dir, `walsync-${++n}.db`);

const realSync: SyncFile = (fd) => new Promise((resolve, reject) => fdatasync(fd, (e) => (e ? reject(e) : resolve())));
const entry = (i: number): AuditEntryInput => ({ at: 1000 + i, type: 'test.entry', actor: 'system', data: { i } });

/** A sync that waits to be let go: `syncs` counts the ones started; `release()` lets the oldest finish (really). */
function heldSync() {
  const held: (() => void)[] = [];
  let failNext: Error | undefined;
  const sync: SyncFile = async (fd) => {
    state.syncs++;
    await new Promise<void>((resolve) => held.push(resolve));
    if (failNext) throw failNext;
    await realSync(fd);
  };
  const state = {
    syncs: 0,
    sync,
    held: () => held.length,
    release: () => held.shift()?.(),
    failWith: (e: Error) => (failNext = e),
  };
  return state;
}

/** The audit entries another connection sees (committed, whatever this store has answered). */
function committedEntries(path: string): number {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    return Number((db.prepare('SELECT count(*) AS n FROM audit_entries').get() as { n: number }).n);
  } finally {
    db.close();
  }
}

const settledYet = async (p: Promise<unknown>) => {
  let settled = false;
  p.then(() => (settled = true), () => (settled = true));
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
  return settled;
};

async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !condition(); i++) await new Promise((resolve) => setTimeout(resolve, 2));
  assert.ok(condition(), 'timed out');
}

/** A store as the daemon opens it whose WAL syncs wait to be let go, migrated (its syncs let through). */
async function migratedWithHeldSync(path: string) {
  const disk = heldSync();
  const store = await openSqliteStore(path, { syncOffLoop: true, syncWal: disk.sync });
  const migrated = store.migrate();
  while (!(await settledYet(migrated))) disk.release();
  await migrated;
  return { disk, store };
}

describe('SQLite commits are answered only once their WAL sync is done', () => {
  test('a transaction is committed before its sync, answered after it; its afterCommit work runs beside the sync', async () => {
    const path = tempPath();
    const { disk, store } = await migratedWithHeldSync(path);
    const before = committedEntries(path);

    let signedAt = -1;
    const answer = store.transaction((tx) => tx.appendAudit(entry(1)), {
      afterCommit: async (e) => {
        signedAt = disk.syncs;
        return { signatureFor: e.seq };
      },
    });
    await until(() => disk.held() === 1);
    // Committed (another connection sees it) and the afterCommit work has run, but nobody is answered yet.
    assert.equal(committedEntries(path), before + 1);
    assert.notEqual(signedAt, -1, 'afterCommit starts at COMMIT, beside the sync');
    assert.equal(await settledYet(answer), false, 'answered before the WAL sync finished');
    // A read that would see the commit waits for the same sync.
    const read = store.queryAudit({ limit: 10 });
    assert.equal(await settledYet(read), false, 'a read of a commit still on its way to disk was answered');
    disk.release();
    const out = await answer;
    assert.equal(typeof out.signatureFor, 'number');
    assert.ok((await read).some((e) => e.type === 'test.entry'));
    await store.close();
  });

  test('one sync covers every commit made before it began; commits made during it wait for the next one', async () => {
    const path = tempPath();
    const { disk, store } = await migratedWithHeldSync(path);
    const startSyncs = disk.syncs;

    const base = committedEntries(path);
    const first = store.transaction((tx) => tx.appendAudit(entry(1)));
    await until(() => disk.held() === 1);
    // Three more commits while the first sync is held, each in a batch of its own (submitted once the one
    // before has committed): one sync after it covers all three.
    const more: Promise<unknown>[] = [];
    for (const i of [2, 3, 4]) {
      more.push(store.transaction((tx) => tx.appendAudit(entry(i))));
      await until(() => committedEntries(path) === base + i);
    }
    assert.equal(disk.syncs - startSyncs, 1, 'a sync started for commits made after the running one began? none may start while one runs');
    disk.release();
    await first;
    await until(() => disk.held() === 1);
    assert.equal(disk.syncs - startSyncs, 2);
    for (const p of more) assert.equal(await settledYet(p), false);
    disk.release();
    await Promise.all(more);
    assert.equal(disk.syncs - startSyncs, 2, 'one sync for the three commits made during the first');
    await store.close();
  });

  test('a failed sync: the waiting caller is told it may or may not have been recorded, gets no afterCommit result, and the store refuses everything after it', async () => {
    const path = tempPath();
    const { disk, store } = await migratedWithHeldSync(path);

    let signed = false;
    const answer = store.transaction((tx) => tx.appendAudit(entry(1)), {
      afterCommit: async () => {
        signed = true;
        return 'a signature';
      },
    });
    await until(() => disk.held() === 1);
    disk.failWith(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' }));
    disk.release();
    await assert.rejects(answer, (e: Error & { code?: string }) => e.code === 'store_unavailable' && /may or may not have been recorded/.test(e.message));
    assert.equal(signed, true, 'the work ran, its result was dropped');
    // Fails closed: no further write or read, even though a later sync might succeed (fsyncgate).
    await assert.rejects(store.transaction((tx) => tx.appendAudit(entry(2))), { code: 'store_unavailable' });
    await assert.rejects(store.queryAudit({ limit: 1 }), { code: 'store_unavailable' });
    assert.equal(disk.held(), 0, 'nothing was written after the failure, so nothing waits for a sync');
    await store.close();

    // The process still had the committed frames: reopened, the entry is there (its retry would be a replay).
    const reopened = await openSqliteStore(path);
    await reopened.migrate();
    assert.equal((await reopened.queryAudit({ limit: 10 })).filter((e) => e.type === 'test.entry').length, 1);
    await reopened.close();
  });

  test('a transaction that fails on its own keeps its own error, after the sync', async () => {
    const path = tempPath();
    const { disk, store } = await migratedWithHeldSync(path);
    const ok = store.transaction((tx) => tx.appendAudit(entry(1)));
    const refused = store.transaction(async (tx) => {
      await tx.appendAudit(entry(2));
      throw Object.assign(new Error('refused by rule x'), { code: 'policy_denied' });
    });
    await until(() => disk.held() === 1);
    assert.equal(await settledYet(refused), false);
    disk.release();
    await ok;
    await assert.rejects(refused, { message: 'refused by rule x' });
    await store.close();
  });

  test('a request refused on its own in a batch of one is answered only once the commit it read is on disk', async () => {
    const path = tempPath();
    const { disk, store } = await migratedWithHeldSync(path);
    const base = committedEntries(path);
    const record = { scope: 'agent:a1', key: 'k1', requestHash: 'ab'.repeat(32), auditSeq: 1, response: { status: 200, body: {} }, createdAt: 1000 };
    const first = store.transaction(async (tx) => {
      await tx.putIdempotency(record);
      await tx.appendAudit(entry(1));
    });
    await until(() => disk.held() === 1 && committedEntries(path) === base + 1);
    // Its own batch, rolled back: it reads the key committed above (not yet on disk) and refuses because of it.
    const refused = store.transaction(async (tx) => {
      if (await tx.getIdempotency('agent:a1', 'k1')) throw Object.assign(new Error('refused: the key is taken'), { code: 'conflict' });
    });
    assert.equal(await settledYet(refused), false, 'a refusal resting on a commit not yet on disk went out');
    disk.release();
    await first;
    await assert.rejects(refused, { code: 'conflict' });
    await store.close();
  });

  test(`a disk that stops answering holds new batches back after ${MAX_COMMITS_AWAITING_SYNC} commits`, async () => {
    const path = tempPath();
    const { disk, store } = await migratedWithHeldSync(path);
    const base = committedEntries(path);
    const answers: Promise<unknown>[] = [];
    for (let i = 1; i <= MAX_COMMITS_AWAITING_SYNC + 3; i++) {
      answers.push(store.transaction((tx) => tx.appendAudit(entry(i))));
      if (i <= MAX_COMMITS_AWAITING_SYNC) await until(() => committedEntries(path) === base + i);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(committedEntries(path), base + MAX_COMMITS_AWAITING_SYNC, 'committed past the bound while the disk was silent');
    while (!(await settledYet(Promise.all(answers)))) disk.release();
    assert.equal(committedEntries(path), base + MAX_COMMITS_AWAITING_SYNC + 3);
    await store.close();
  });

  test('the file synced is the WAL SQLite writes, also when the database is opened through a symlink', async () => {
    const real = join(dir, 'elsewhere');
    mkdirSync(real);
    const target = join(real, 'target.db');
    const path = tempPath();
    symlinkSync(target, path);
    const synced: number[] = [];
    const store = await openSqliteStore(path, {
      syncOffLoop: true,
      syncWal: async (fd) => {
        synced.push(fstatSync(fd).ino);
        await realSync(fd);
      },
    });
    await store.migrate();
    await store.transaction((tx) => tx.appendAudit(entry(1)));
    assert.ok(synced.length >= 1);
    // SQLite follows the symlink: the WAL sits beside the target, and no file is made beside the link.
    assert.ok(synced.every((ino) => ino === statSync(`${target}-wal`).ino), 'synced a file other than the WAL');
    assert.throws(() => statSync(`${path}-wal`), { code: 'ENOENT' });
    await store.close();
  });

  test('a :memory: store has nothing to sync: answered at COMMIT, afterCommit run after it', async () => {
    const store = await openSqliteStore(':memory:', { syncOffLoop: true });
    await store.migrate();
    const out = await store.transaction((tx) => tx.appendAudit(entry(1)), { afterCommit: async (e) => e.seq });
    assert.equal(typeof out, 'number');
    await store.close();
  });
});
