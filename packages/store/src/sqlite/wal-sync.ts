import { closeSync, fdatasync, fsync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import { AirlockError } from '@airlock/core/errors';

/** Flushes a file's written data to the disk (fdatasync(2)), off the event loop. */
export type SyncFile = (fd: number) => Promise<void>;

/**
 * Commits made and not yet synced past which a new batch waits for the disk (`roomForCommit`). A sync covers
 * every commit before it, so on a working disk one or two are waiting at most; this bounds what a disk that
 * stopped answering lets pile up (charged requests whose signatures wait in memory).
 */
export const MAX_COMMITS_AWAITING_SYNC = 8;

const fdatasyncOffLoop: SyncFile = (fd) => new Promise((resolve, reject) => fdatasync(fd, (e) => (e ? reject(e) : resolve())));
const fsyncOffLoop = (fd: number) => new Promise<void>((resolve, reject) => fsync(fd, (e) => (e ? reject(e) : resolve())));

/**
 * The durable half of a SQLite commit, off the event loop.
 *
 * With `synchronous = FULL`, SQLite's COMMIT writes the transaction's frames to the WAL and then
 * fdatasyncs the WAL before it returns; `node:sqlite` is synchronous, so every request in the process
 * waited for the disk (0.3 ms here when quiet, tens of ms at its p99 under load). The writer now runs
 * with `synchronous = NORMAL`, whose COMMIT writes the same frames without the sync, and this class
 * makes the same fdatasync of the same file on libuv's thread pool: the store answers a batch's callers
 * only once a sync that began after their COMMIT has finished. A commit is therefore exactly as durable as
 * before when anyone hears of it (SQLite's FULL does nothing more for a WAL commit: https://www.sqlite.org/pragma.html#pragma_synchronous),
 * while the event loop evaluates, commits and signs the next batch during the sync. One sync covers
 * every commit before it (fdatasync flushes the file, whichever commit wrote which frames), so syncs are
 * coalesced: one runs at a time, and every commit made meanwhile waits for the one after it.
 *
 * The WAL file stays the same file while this connection is open: SQLite deletes it only when the last
 * connection to the database closes. Its directory entry is synced once, with the first sync (a new WAL
 * file's name is otherwise on disk only once a checkpoint syncs it).
 *
 * A failed sync is final: after fdatasync fails, Linux may have dropped the pages it could not write and a
 * later sync can succeed without them (PostgreSQL's "fsyncgate", 2018). Every waiting caller is told its
 * request may or may not have been recorded, and the store refuses everything after it until restarted.
 */
export class WalSync {
  private fd: number | undefined;
  private requested = 0;
  private synced = 0;
  private running = false;
  private failure: AirlockError | undefined;
  private waiters: { upTo: number; resolve: () => void; reject: (e: unknown) => void }[] = [];

  private readonly walPath: string;
  private readonly syncFile: SyncFile;

  constructor(walPath: string, syncFile: SyncFile = fdatasyncOffLoop) {
    this.walPath = walPath;
    this.syncFile = syncFile;
  }

  /** Called right after a COMMIT: resolves once that commit is on disk; rejects if it cannot be made so. */
  afterCommit(): Promise<void> {
    // Never throws: the commit happened, so its callers must hear "may or may not", not "nothing recorded".
    if (this.failure) return Promise.reject(this.failure);
    const done = this.syncedUpTo(++this.requested);
    void this.run();
    return done;
  }

  /** Resolves once every commit made so far is on disk (at once if none is waiting for the disk). */
  allCommitsDurable(): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.synced === this.requested) return Promise.resolve();
    return this.syncedUpTo(this.requested);
  }

  /** Resolves once fewer than MAX_COMMITS_AWAITING_SYNC commits wait for the disk. */
  roomForCommit(): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.requested - this.synced < MAX_COMMITS_AWAITING_SYNC) return Promise.resolve();
    return this.syncedUpTo(this.requested - MAX_COMMITS_AWAITING_SYNC + 1);
  }

  /** Settles once the commits up to the `upTo`-th are synced (rejects if a sync fails first). */
  private syncedUpTo(upTo: number): Promise<void> {
    return new Promise<void>((resolve, reject) => this.waiters.push({ upTo, resolve, reject }));
  }

  /** Waits for the syncs owed, then closes the file. */
  async close(): Promise<void> {
    await this.allCommitsDurable().catch(() => undefined);
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  private async run(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      while (this.synced < this.requested && !this.failure) {
        // Everything requested by now was committed before this sync starts: the sync covers it.
        const upTo = this.requested;
        try {
          await this.syncOnce();
        } catch (e) {
          this.failure = new AirlockError('store_unavailable', 'the SQLite store could not write its log to disk: requests since the last confirmed write may or may not have been recorded, and the store refuses all requests until it is restarted', { cause: e });
          break;
        }
        this.synced = upTo;
        this.settle();
      }
    } finally {
      this.running = false;
    }
    if (this.failure) {
      for (const w of this.waiters.splice(0)) w.reject(this.failure);
    }
  }

  private settle(): void {
    const still: typeof this.waiters = [];
    for (const w of this.waiters) {
      if (w.upTo <= this.synced) w.resolve();
      else still.push(w);
    }
    this.waiters = still;
  }

  private async syncOnce(): Promise<void> {
    if (this.fd === undefined) {
      // Opened on the first sync, after the first COMMIT: the WAL exists by then (SQLite creates it when
      // the connection first reads the database in WAL mode). Its name goes to disk before the first answer.
      const fd = openSync(this.walPath, 'r+');
      try {
        await syncDirectory(dirname(this.walPath));
      } catch (e) {
        closeSync(fd);
        throw e;
      }
      this.fd = fd;
    }
    await this.syncFile(this.fd);
  }
}

/** The directory entry of the WAL file, once (where the platform can sync a directory). */
async function syncDirectory(dir: string): Promise<void> {
  if (process.platform === 'win32') return; // Windows has no directory handle to sync; NTFS journals its metadata.
  const fd = openSync(dir, 'r');
  try {
    await fsyncOffLoop(fd);
  } finally {
    closeSync(fd);
  }
}
