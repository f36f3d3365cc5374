// The SQLite store on a disk that fills up, then has space freed: a real small filesystem (tmpfs), so
// SQLite meets a genuine ENOSPC. What an operator sees: writes refused with store_unavailable while the
// disk is full and nothing written meanwhile; once space is freed the store writes again by itself, and
// the space its write-ahead log held goes back to the filesystem first (else the commits under load grew
// the log into the freed space, the checkpoint that resets it had no room to grow the database file, and
// every commit failed until a restart: the torture's intermittent full-disk failure).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, statfsSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { randomBytes } from 'node:crypto';
import { isAirlockError } from '@airlock/core/errors';
import { openSqliteStore, type SqliteStore } from './sqlite-store.ts';

/** Mounts an 4 MiB tmpfs, or says why it cannot (not root, no mount): then these tests skip. */
function mountSmallDisk(): { dir: string; skip: false } | { skip: string } {
  if (process.getuid?.() !== 0) return { skip: 'needs root to mount a small tmpfs (CI runs as root)' };
  const dir = mkdtempSync(join(tmpdir(), 'airlock-disk-full-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', dir], { stdio: 'pipe' });
    return { dir, skip: false };
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    return { skip: `cannot mount a tmpfs here: ${(e as Error).message.split('\n')[0]}` };
  }
}

const disk = mountSmallDisk();
const skip = disk.skip === false ? false : disk.skip;
const dir = disk.skip === false ? disk.dir : '';
after(() => {
  if (!dir) return;
  execFileSync('umount', [dir]);
  rmSync(dir, { recursive: true, force: true });
});

const freeBytes = () => {
  const fs = statfsSync(dir);
  return fs.bavail * fs.bsize;
};

/** Writes until the filesystem refuses (as a log file or another program filling the disk would). */
function fillUp(path: string): void {
  for (const [name, size] of [[path, 64 * 1024], [`${path}.tail`, 512]] as const) {
    const fd = openSync(name, 'w');
    try {
      for (;;) writeSync(fd, Buffer.alloc(size));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
    } finally {
      closeSync(fd);
    }
  }
}
const freeUp = (path: string) => {
  rmSync(path, { force: true });
  rmSync(`${path}.tail`, { force: true });
};

/** A value of `kb` KiB that does not compress into fewer pages. */
const bulky = (kb: number) => randomBytes(kb * 512).toString('hex');

async function rejection(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await p;
  } catch (e) {
    assert.ok(isAirlockError(e), `expected an AirlockError, got ${String(e)}`);
    return { code: e.code, message: e.message };
  }
  assert.fail('expected the write to be refused');
}

describe('SQLite store on a disk that fills up', { skip }, () => {
  let store: SqliteStore;
  let path: string;
  const filler = () => join(dir, 'filler');

  before(async () => {
    path = join(dir, 'airlock.db');
    // As the daemon opens it: commits synced off the event loop, checkpoints from a worker thread.
    store = await openSqliteStore(path, { syncOffLoop: true, backgroundCheckpoints: true });
    await store.migrate();
  });
  after(async () => {
    await store?.close();
    freeUp(filler());
  });

  test('refuses writes while full, writes nothing meanwhile, and gives the log space back once space is freed', async () => {
    // A log that has grown (SQLite reuses a WAL file from its start; it never shrinks it by itself).
    for (let i = 0; i < 12; i++) await store.setMeta('bulk', bulky(100));
    await store.setMeta('before', 'kept');
    const walBefore = statSync(`${path}-wal`).size;
    assert.ok(walBefore > 1024 * 1024, `the WAL grew to ${walBefore} bytes`);

    fillUp(filler());
    const refused = await rejection(store.setMeta('during', bulky(200)));
    assert.equal(refused.code, 'store_unavailable');
    // Still full: refused again, and with what the operator must do.
    const again = await rejection(store.setMeta('during', 'small'));
    assert.equal(again.code, 'store_unavailable');
    assert.match(again.message, /disk .* full/);
    // Reads go on.
    assert.equal(await store.getMeta('before'), 'kept');

    freeUp(filler());
    const freedWith = freeBytes();
    await store.setMeta('after', 'written');
    assert.equal(await store.getMeta('after'), 'written');
    assert.equal(await store.getMeta('during'), undefined, 'nothing of the refused writes was recorded');
    // The log was checkpointed and truncated before the write: its space is free again, not eaten by commits.
    const walAfter = statSync(`${path}-wal`).size;
    assert.ok(walAfter < 256 * 1024, `WAL ${walAfter} bytes after recovery (was ${walBefore})`);
    assert.ok(freeBytes() > freedWith + walBefore / 2, `free space ${freeBytes()} after recovery, ${freedWith} when freed`);

    // And the store keeps working at the size it had: the freed space holds a log as large as before.
    for (let i = 0; i < 12; i++) await store.setMeta('bulk', bulky(100));
    assert.equal(await store.getMeta('after'), 'written');
  });

  test('a reader holding the log while the store recovers delays the first write, never loses it', async () => {
    for (let i = 0; i < 4; i++) await store.setMeta('bulk', bulky(100));
    fillUp(filler());
    assert.equal((await rejection(store.setMeta('during', bulky(200)))).code, 'store_unavailable');
    freeUp(filler());

    // Another connection in a read transaction (a backup, an operator's sqlite3 shell) pins the WAL, so it
    // cannot be truncated: the store refuses rather than grow the log before it is reclaimed.
    const reader = new DatabaseSync(path, { readOnly: true });
    try {
      reader.exec('BEGIN');
      reader.prepare('SELECT count(*) FROM schema_migrations').get();
      const refused = await rejection(store.setMeta('while-read', 'x'));
      assert.equal(refused.code, 'store_unavailable');
      assert.match(refused.message, /reading/);
      reader.exec('COMMIT');
    } finally {
      reader.close();
    }
    await store.setMeta('while-read', 'written after the reader ended');
    assert.equal(await store.getMeta('while-read'), 'written after the reader ended');
    assert.equal(await store.getMeta('during'), undefined);
  });
});
