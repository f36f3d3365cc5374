// One fuzz target in a worker thread, so the parent can terminate it if a case hangs synchronously.
import { parentPort, workerData } from 'node:worker_threads';
import { TARGETS } from './targets.ts';

const { target, numRuns, seed, progress } = workerData as { target: string; numRuns: number; seed: number; progress: SharedArrayBuffer };
const run = TARGETS[target];
if (!run) throw new Error(`no fuzz target ${target}`);
const result = await run(numRuns, seed, new Int32Array(progress));
parentPort!.postMessage(result);
