// One `audit verify` worker thread: opens its own raw reader on the store (`AuditLeafReader`: rows as
// arrays straight from the driver), verifies the ranges of leaves it is given, and posts each range's
// result (see parallel-verify.ts).
import { parentPort, workerData } from 'node:worker_threads';
import type { AuditLeafReader } from '../ports/audit-leaf-reader.ts';
import { LeafRangeVerifier } from './log-verifier.ts';
import type { VerifyTask } from './parallel-verify.ts';

const { storeModule, storeUrl } = workerData as { storeModule: string; storeUrl: string };
const { openAuditLeafReader } = (await import(storeModule)) as { openAuditLeafReader(url: string): Promise<AuditLeafReader> };
const reader = await openAuditLeafReader(storeUrl);

async function verifyRange(task: VerifyTask) {
  const v = new LeafRangeVerifier({ start: task.start, rootsAt: task.rootsAt, chainAt: task.chainAt, canonicalDataFrom: task.canonicalDataFrom });
  // A range stops at its first problem; a missing leaf shows as the next row's index (or, at the end of
  // the range, as a range that ends early, which the join reports).
  read: for await (const page of reader.pages(task.start, task.end)) {
    for (const row of page) if (!v.pushRow(row)) break read;
  }
  return v.result();
}

parentPort!.on('message', (task: VerifyTask | { close: true }) => {
  if ('close' in task) {
    void reader.close().finally(() => parentPort!.close());
    return;
  }
  verifyRange(task).then(
    (result) => parentPort!.postMessage({ id: task.id, result }),
    (e: unknown) => parentPort!.postMessage({ id: task.id, error: e instanceof Error ? e.message : String(e) }),
  );
});
