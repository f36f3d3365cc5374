import { Worker } from 'node:worker_threads';
import { extname } from 'node:path';

/** How often the worker checkpoints: about what SQLite's 1,000-page threshold gives at a few hundred signatures/s. */
export const CHECKPOINT_INTERVAL_MS = 200;

/**
 * The writer's own automatic checkpoint while the worker runs: a backstop that bounds the WAL (about
 * 40 MB) if the worker falls behind, never reached when it keeps up.
 */
export const BACKSTOP_CHECKPOINT_PAGES = 10_000;

/** SQLite's default threshold, put back if the worker dies. */
export const SQLITE_DEFAULT_CHECKPOINT_PAGES = 1000;

/**
 * Takes WAL checkpoints off the writer's thread. SQLite checkpoints automatically inside the COMMIT that
 * takes the WAL past 1,000 pages, on the committing connection; `node:sqlite` is synchronous, so that
 * commit stops the daemon's event loop while the checkpoint copies pages into the database file and syncs
 * it (10–30 ms measured on the bench machine under load, every 40–80 signatures: every request in flight
 * waits). Here a worker thread with its own connection checkpoints every `intervalMs` instead, and the
 * writer keeps only a far-off backstop (`setWriterThreshold`). If the worker dies, the writer gets
 * SQLite's default threshold back: checkpoints never stop, only move.
 */
export class WalCheckpointer {
  private readonly worker: Worker;
  private readonly exited: Promise<void>;
  private stopped = false;

  constructor(path: string, setWriterThreshold: (pages: number) => void, intervalMs = CHECKPOINT_INTERVAL_MS) {
    // The worker sits beside this module with its extension: .ts in the workspace, .js in a built package.
    this.worker = new Worker(new URL(`./wal-checkpoint-worker${extname(import.meta.url)}`, import.meta.url), { workerData: { path, intervalMs } });
    // A store that is never closed must not keep its process alive.
    this.worker.unref();
    setWriterThreshold(BACKSTOP_CHECKPOINT_PAGES);
    let fellBack = false;
    const fallBack = () => {
      if (this.stopped || fellBack) return;
      fellBack = true;
      setWriterThreshold(SQLITE_DEFAULT_CHECKPOINT_PAGES);
    };
    this.worker.on('error', fallBack);
    this.exited = new Promise((resolve) => this.worker.once('exit', () => {
      fallBack();
      resolve();
    }));
  }

  /** Stops the worker and waits until its connection is closed. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    // Referenced again while it stops: otherwise a process with nothing else to do would exit before the
    // worker does, leaving this promise (and whoever awaits it) unsettled.
    this.worker.ref();
    this.worker.postMessage('stop');
    await this.exited;
  }
}
