// Part 4, hostile input: property-based and mutation fuzzing (fast-check) of every request decoder, the
// policy parser and the HTTP layer. Each target runs in a worker thread under a watchdog: a case that
// never returns is reported as a hang with the seed that reproduces it, not a stuck run.
import { Worker } from 'node:worker_threads';
import { Violations, type Mode, type Part, type PartReport } from './lib.ts';
import type { TargetResult } from './fuzz/targets.ts';

const TARGETS = ['decode-transaction', 'decode-typed-data', 'decode-message', 'policy', 'http'] as const;
/** No new case started for this long: the current one hangs. */
const HANG_MS = 30_000;

function runTarget(target: string, numRuns: number, seed: number): Promise<TargetResult & { seconds: number }> {
  const progress = new SharedArrayBuffer(4);
  const started = new Int32Array(progress);
  const t0 = performance.now();
  const worker = new Worker(new URL('./fuzz/worker.ts', import.meta.url), { workerData: { target, numRuns, seed, progress } });
  return new Promise((resolve, reject) => {
    let last = -1;
    let lastChange = performance.now();
    const watchdog = setInterval(() => {
      const now = Atomics.load(started, 0);
      if (now !== last) {
        last = now;
        lastChange = performance.now();
      } else if (performance.now() - lastChange > HANG_MS) {
        clearInterval(watchdog);
        void worker.terminate();
        resolve({ cases: now, accepted: 0, codes: {}, failure: `hang: case ${now} did not finish within ${HANG_MS} ms (seed ${seed})`, seconds: (performance.now() - t0) / 1000 });
      }
    }, 1000);
    worker.once('message', (r: TargetResult) => {
      clearInterval(watchdog);
      resolve({ ...r, seconds: (performance.now() - t0) / 1000 });
    });
    worker.once('error', (e) => {
      clearInterval(watchdog);
      reject(e);
    });
    worker.once('exit', (code) => {
      clearInterval(watchdog);
      if (code !== 0) reject(new Error(`fuzz worker ${target} exited with ${code}`));
    });
  }).finally(() => void worker.terminate()) as Promise<TargetResult & { seconds: number }>;
}

export const hostileInputPart: Part = {
  name: 'hostile-input',
  summary: 'fast-check fuzzing: transaction, typed-data and message decoders, policy parser, HTTP layer',
  async run(mode: Mode): Promise<PartReport> {
    const v = new Violations();
    const figures: PartReport['figures'] = {};
    // TORTURE_CASES overrides the count (a reduced full run on a loaded machine says so in its figures).
    const numRuns = Number(process.env.TORTURE_CASES ?? (mode === 'full' ? 100_000 : 2_000));
    figures.casesPerTarget = numRuns;
    // A fresh seed per run (printed), so repeated runs explore new ground and any failure can be replayed.
    const seed = Number(process.env.TORTURE_SEED ?? Math.floor(Math.random() * 2 ** 31));
    figures.seed = seed;
    // Two at a time: one per core.
    const queue = [...TARGETS];
    await Promise.all([0, 1].map(async () => {
      for (let target = queue.shift(); target; target = queue.shift()) {
        const r = await runTarget(target, numRuns, seed);
        figures[`${target}.cases`] = r.cases;
        figures[`${target}.accepted`] = r.accepted;
        figures[`${target}.outcomes`] = Object.entries(r.codes).sort(([, a], [, b]) => b - a).map(([k, n]) => `${k}:${n}`).join(' ');
        figures[`${target}.seconds`] = Math.round(r.seconds);
        if (r.failure) v.add(`${target}: ${r.failure}`);
        else v.check(r.cases === numRuns, () => `${target}: ran ${r.cases} of ${numRuns} cases`);
      }
    }));
    return { figures, violations: v.done() };
  },
};
