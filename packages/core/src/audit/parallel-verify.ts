// `audit verify` across worker threads: the log is cut into aligned power-of-two ranges of leaves, each
// worker reads its ranges through its own raw reader on the store (`AuditLeafReader`, one connection per
// worker) and verifies them (`LeafRangeVerifier.pushRow`), and the ranges are joined here (`finishVerification`): the seams, the roots at every signed size from the
// ranges' subtree roots, and the signatures.
import { availableParallelism } from 'node:os';
import { extname } from 'node:path';
import { Worker } from 'node:worker_threads';
import { finishVerification, type AuditVerifyResult, type LeafRangeResult, type Signatures } from './log-verifier.ts';
import type { AuditCheckpoint, SignedTreeHead } from './types.ts';

export interface ParallelVerifyOptions {
  /** How a worker reaches the store: a module exporting `openAuditLeafReader(url)` (`@airlock/store/audit-leaf-reader`) and the store's URL. */
  workers?: { storeModule: string; storeUrl: string; threads?: number };
  /** Below this many entries one thread is faster than starting workers (default 50,000). */
  minEntriesForWorkers?: number;
  /** Leaves per range: a power of two (default 16,384). */
  rangeLeaves?: number;
  /** LeafRangeStart.canonicalDataFrom of every range: the size of a tree head whose signature checked out (default 0: every leaf's data is parsed). */
  canonicalDataFrom?: number;
}

/** A range for a worker. */
export interface VerifyTask {
  id: number;
  start: number;
  end: number;
  rootsAt: number[];
  chainAt: number[];
  canonicalDataFrom: number;
}

/**
 * `treeSize` is the number of leaves, every index below it present: the caller checks that first (the store's
 * largest leaf index + 1 is anything once a row is inserted far out; `verifyStoredAudit` counts the rows).
 */
export async function verifyAuditInParallel(
  treeSize: number,
  treeHeads: SignedTreeHead[],
  checkpoints: AuditCheckpoint[],
  signatures: Signatures,
  options: ParallelVerifyOptions,
): Promise<AuditVerifyResult> {
  const { storeModule, storeUrl, threads } = options.workers!;
  // Ranges are handed out as workers finish, so the run ends when the last range does: with 65,536 leaves a
  // 1M-entry log was 16 ranges and one core sat idle for most of a range (about 0.2 s) at the end. 16,384
  // measured 2-4% faster on two cores; smaller ranges gained nothing more (a range costs one message and
  // one frontier, a few microseconds).
  const rangeLeaves = options.rangeLeaves ?? 16_384;
  if ((rangeLeaves & (rangeLeaves - 1)) !== 0) throw new RangeError('rangeLeaves must be a power of two');
  const ranges = Math.ceil(treeSize / rangeLeaves);
  const sizes = treeHeads.map((h) => h.treeSize);
  const seqs = checkpoints.map((c) => c.seq);
  // Tasks are made as workers ask for them, not listed up front, and none after a range that failed: the join
  // stops at the first problem, so what follows it is never read.
  let nextTask = 0;
  let failedRange = Infinity;
  const takeTask = (): VerifyTask | undefined => {
    if (nextTask >= ranges || nextTask > failedRange) return undefined;
    const id = nextTask++;
    const start = id * rangeLeaves;
    const end = Math.min(start + rangeLeaves, treeSize);
    const within = (s: number) => s > start && s <= end;
    return { id, start, end, rootsAt: sizes.filter(within), chainAt: seqs.filter(within), canonicalDataFrom: options.canonicalDataFrom ?? 0 };
  };
  const count = Math.max(1, Math.min(threads ?? availableParallelism(), ranges));
  // Every task handed out is finished before the join, and they are handed out in order: no holes.
  const results: LeafRangeResult[] = [];
  // The worker sits beside this module with its extension: .ts in the workspace, .js in a built package.
  const workers = Array.from({ length: count }, () => new Worker(new URL(`./verify-worker${extname(import.meta.url)}`, import.meta.url), { workerData: { storeModule, storeUrl } }));
  try {
    await Promise.all(
      workers.map(
        (worker) =>
          new Promise<void>((resolve, reject) => {
            const feed = () => {
              const task = takeTask();
              if (!task) return resolve();
              worker.postMessage(task);
            };
            worker.on('message', (m: { id: number; result?: LeafRangeResult; error?: string }) => {
              if (m.error !== undefined) return reject(new Error(`audit verify worker: ${m.error}`));
              results[m.id] = m.result!;
              if (m.result!.firstBad) failedRange = Math.min(failedRange, m.id);
              feed();
            });
            worker.once('error', reject);
            worker.once('online', feed);
          }),
      ),
    );
  } finally {
    // Each worker closes its store connection and exits; one that does not within a few seconds is stopped.
    await Promise.all(
      workers.map(
        (w) =>
          new Promise<void>((resolve) => {
            const timer = setTimeout(() => void w.terminate().then(() => resolve()), 5000);
            w.once('exit', () => (clearTimeout(timer), resolve()));
            w.postMessage({ close: true });
          }),
      ),
    );
  }
  return finishVerification(results, treeHeads, checkpoints, signatures);
}
