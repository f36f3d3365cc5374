// WalCheckpointer against a real database file: the writer stops checkpointing inside its commits, the
// worker checkpoints instead, and checkpoints come back to the writer if the worker dies. What has been
// checkpointed is read from the WAL-index header in the -shm file (https://www.sqlite.org/walformat.html:
// mxFrame at byte 16, the frames in the WAL; nBackfill at byte 96, the frames already copied into the
// database file; both native-endian 32-bit).
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readSync, rmSync } from 'node:fs';
import { endianness, tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { BACKSTOP_CHECKPOINT_PAGES, SQLITE_DEFAULT_CHECKPOINT_PAGES, WalCheckpointer } from './wal-checkpointer.ts';
import { openSqliteStore } from './sqlite-store.ts';

const dir = mkdtempSync(join(tmpdir(), 'airlock-wal-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const tempPath = () => join(dir, `wal-${++n}.db`);

function walState(path: string): { frames: number; backfilled: number } {
  const header = Buffer.alloc(100);
  const fd = openSync(`${path}-shm`, 'r');
  try {
    readSync(fd, header, 0, 100, 0);
  } finally {
    closeSync(fd);
  }
  const u32 = (offset: number) => (endianness() === 'LE' ? header.readUInt32LE(offset) : header.readUInt32BE(offset));
  return { frames: u32(16), backfilled: u32(96) };
}

/** A writer connection as the store opens it, and `pages` 4 KiB pages written in commits of 100. */
function openWriter(path: string): DatabaseSync {
  const db = new DatabaseSync(path);
  db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; CREATE TABLE t (x BLOB)');
  return db;
}
function writePages(db: DatabaseSync, pages: number): void {
  const insert = db.prepare('INSERT INTO t VALUES (randomblob(4000))');
  for (let done = 0; done < pages; done += 100) {
    db.exec('BEGIN IMMEDIATE');
    for (let i = 0; i < 100; i++) insert.run();
    db.exec('COMMIT');
  }
}
const setThreshold = (db: DatabaseSync) => (pages: number) => db.exec(`PRAGMA wal_autocheckpoint = ${pages}`);

async function waitFor(condition: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return true;
}

describe('WalCheckpointer', () => {
  test('without it, the commit that takes the WAL past 1,000 pages checkpoints (the stall it removes)', () => {
    const path = tempPath();
    const db = openWriter(path);
    try {
      writePages(db, 1500);
      // A commit checkpointed the whole WAL, and a later one started it over from the beginning.
      assert.ok(walState(path).frames < 1000, `${walState(path).frames} frames in the WAL`);
    } finally {
      db.close();
    }
  });

  test('with it, the writer\'s commits no longer checkpoint below the backstop', async () => {
    const path = tempPath();
    const db = openWriter(path);
    const checkpointer = new WalCheckpointer(path, setThreshold(db), 3_600_000); // the worker never ticks here
    try {
      writePages(db, 3000);
      const wal = walState(path);
      assert.ok(wal.frames >= 3000, `${wal.frames} frames in the WAL`);
      assert.equal(wal.backfilled, 0, 'no commit checkpointed');
    } finally {
      await checkpointer.stop();
      db.close();
    }
  });

  test('the worker checkpoints the WAL while the writer goes on', async () => {
    const path = tempPath();
    const db = openWriter(path);
    const checkpointer = new WalCheckpointer(path, setThreshold(db), 50);
    try {
      writePages(db, 1500);
      assert.ok(await waitFor(() => walState(path).backfilled === walState(path).frames, 5000), `all frames checkpointed: ${JSON.stringify(walState(path))}`);
      writePages(db, 200);
      assert.ok(await waitFor(() => walState(path).backfilled === walState(path).frames, 5000), 'and again after more writes');
      assert.equal(Number((db.prepare('SELECT count(*) AS n FROM t').get() as { n: number }).n), 1700);
    } finally {
      await checkpointer.stop();
      db.close();
    }
  });

  test('if the worker dies, the writer gets SQLite\'s default threshold back', async () => {
    const thresholds: number[] = [];
    // A directory is no database: the worker fails as it opens it.
    const checkpointer = new WalCheckpointer(dir, (pages) => thresholds.push(pages), 50);
    assert.ok(await waitFor(() => thresholds.length === 2, 5000), `thresholds set: ${thresholds}`);
    assert.deepEqual(thresholds, [BACKSTOP_CHECKPOINT_PAGES, SQLITE_DEFAULT_CHECKPOINT_PAGES]);
    await checkpointer.stop();
  });

  test('closing the store at the end of a process that has nothing else to do settles: the process exits 0', () => {
    // The worker is unreferenced (a forgotten store must not keep a process alive); stopping it must not
    // let the process exit with the close still pending (exit code 13, unsettled top-level await).
    const script = `import { openSqliteStore } from ${JSON.stringify(new URL('./sqlite-store.ts', import.meta.url).href)};
      const store = await openSqliteStore(${JSON.stringify(tempPath())}, { backgroundCheckpoints: true });
      await store.close();
      console.log('closed');`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'closed');
  });

  test('a store with background checkpoints keeps its data across close and reopen, and close leaves no WAL behind', async () => {
    const path = tempPath();
    const store = await openSqliteStore(path, { backgroundCheckpoints: true });
    await store.migrate();
    await store.setMeta('probe', 'kept');
    await store.close();
    assert.throws(() => walState(path), /ENOENT/, 'the last connection to close checkpointed and removed the WAL');
    const again = await openSqliteStore(path, { backgroundCheckpoints: true });
    try {
      assert.equal(await again.getMeta('probe'), 'kept');
    } finally {
      await again.close();
    }
  });
});
