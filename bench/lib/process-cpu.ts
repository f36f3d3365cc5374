// How much CPU another process uses, read from Linux's /proc (bench/http.ts reads the daemon's over a load's
// measured window: whether "half capacity" is half of what the daemon can do under that load).
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

const CLOCK_TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** CPU seconds `pid` has used so far (user + system, every thread), from /proc; undefined where there is none. */
export function cpuSecondsOf(pid: number): number | undefined {
  try {
    // Fields after the command name, which may hold spaces and parentheses, hence from its last closing
    // parenthesis: state is the 1st, utime the 12th and stime the 13th (proc(5) fields 3, 14 and 15).
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return undefined;
  }
}

/**
 * The cores `pid` kept busy on average between two epoch-ms times (resolves once `toMs` has passed); NaN where
 * /proc cannot be read. Divided by the time between the two actual reads: a timer may fire late.
 */
export async function coresBetween(pid: number, fromMs: number, toMs: number): Promise<number> {
  const readAt = (ms: number) => new Promise<{ cpu: number | undefined; at: number }>((resolve) => setTimeout(() => resolve({ cpu: cpuSecondsOf(pid), at: Date.now() }), Math.max(0, ms - Date.now())));
  const from = await readAt(fromMs);
  const to = await readAt(toMs);
  if (from.cpu === undefined || to.cpu === undefined || to.at <= from.at) return Number.NaN;
  return (to.cpu - from.cpu) / ((to.at - from.at) / 1000);
}
