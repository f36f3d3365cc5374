// The thread of a WalCheckpointer (wal-checkpointer.ts): its own connection to the database, and a PASSIVE
// checkpoint every `intervalMs`. PASSIVE never waits for the writer and never makes it wait: it copies
// into the database file what no reader still needs, and the writer goes on appending to the WAL.
import { DatabaseSync } from 'node:sqlite';
import { parentPort, workerData } from 'node:worker_threads';

const { path, intervalMs } = workerData as { path: string; intervalMs: number };
const db = new DatabaseSync(path);
// The checkpoint syncs the WAL before copying it and the database file before the WAL may be reused,
// as the writer's own checkpoints do.
db.exec('PRAGMA synchronous = FULL');
const checkpoint = db.prepare('PRAGMA wal_checkpoint(PASSIVE)');

const timer = setInterval(() => {
  try {
    checkpoint.get();
  } catch {
    // Busy (the writer's backstop checkpoint is running) or an I/O error: the next tick tries again, and
    // the writer's backstop threshold bounds the WAL meanwhile.
  }
}, intervalMs);

parentPort!.once('message', () => {
  clearInterval(timer);
  db.close();
  parentPort!.close();
});
