// Shared measuring helpers: machines here are noisy (2 cores, other jobs), so every figure is a set of
// rounds reduced to a median and a spread (min-max), and ratios are taken between medians of one run.
import { loadavg } from 'node:os';

export interface Figure {
  median: number;
  min: number;
  max: number;
  rounds: number;
}

export function figure(xs: number[]): Figure {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { median, min: s[0]!, max: s.at(-1)!, rounds: s.length };
}

/** "median (min–max)" with the given number of decimals. */
export function fmt(f: Figure | undefined, digits = 0): string {
  if (!f) return 'n/a';
  return `${f.median.toFixed(digits)} (${f.min.toFixed(digits)}–${f.max.toFixed(digits)})`;
}

export const ratio = (a: Figure, b: Figure): number => a.median / b.median;

/** Runs `op` n times with `concurrency` workers in flight; returns operations per second. */
export async function opsPerSecond(n: number, concurrency: number, op: (i: number) => Promise<unknown> | unknown): Promise<number> {
  let next = 0;
  const start = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < n) await op(next++);
  }));
  return (n / (performance.now() - start)) * 1000;
}

/** Microseconds per call of a synchronous function, after a warm-up of a tenth of the iterations. */
export function microsPerCall(iterations: number, fn: () => unknown): number {
  for (let i = 0; i < Math.ceil(iterations / 10); i++) fn();
  const start = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) fn();
  return Number(process.hrtime.bigint() - start) / 1000 / iterations;
}

export const load = (): [number, number, number] => loadavg().map((x) => Math.round(x * 100) / 100) as [number, number, number];

export interface BenchOptions {
  rounds: number;
  quick: boolean;
  /** Prints a progress line. */
  log(line: string): void;
}
