// One `audit verify` worker thread: opens its own store, verifies the ranges of leaves it is given, and
// posts each range's result (see parallel-verify.ts).
import { parentPort, workerData } from 'node:worker_threads';
import type { Store } from '../ports/store.ts';
import { LeafRangeVerifier } from './log-verifier.ts';
import type { VerifyTask } from './parallel-verify.ts';

const PAGE = 10_000;
const { storeModule, storeUrl } = workerData as { storeModule: string; storeUrl: string };
const { openStore } = (await import(storeModule)) as { openStore(url: string): Promise<Store> };
const store = await openStore(storeUrl);

async function verifyRange(task: VerifyTask) {
  const v = new LeafRangeVerifier({ start: task.start, rootsAt: task.rootsAt, chainAt: task.chainAt });
  for (let next = task.start; next < task.end; ) {
    const page = await store.readAuditLeaves(next, Math.min(PAGE, task.end - next));
    let ok = true;
    for (const e of page) {
      if ((e.leafIndex ?? Infinity) >= task.end) break;
      if (!(ok = v.push(e))) break;
    }
    if (!ok || v.size === next) break;
    next = v.size;
  }
  return v.result();
}

parentPort!.on('message', (task: VerifyTask | { close: true }) => {
  if ('close' in task) {
    void store.close().finally(() => parentPort!.close());
    return;
  }
  verifyRange(task).then(
    (result) => parentPort!.postMessage({ id: task.id, result }),
    (e: unknown) => parentPort!.postMessage({ id: task.id, error: e instanceof Error ? e.message : String(e) }),
  );
});
