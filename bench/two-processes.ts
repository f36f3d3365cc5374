// Using both cores: one daemon vs two daemon processes on the same PostgreSQL store (the supported way to
// scale out; SQLite allows one writer process). Same total offered concurrency (16), split across the two;
// the load generators run as their own processes, concurrently. Native backend.
import { backends } from './in-process.ts';
import { load, startBenchDaemon } from './http.ts';
import { provisionRemoteAgent, type Daemon, type DaemonData } from '../packages/server/src/testing/processes.ts';
import { usdcPolicy } from '../packages/server/src/testing/harness.ts';
import { figure, fmt, type BenchOptions, type Figure } from './lib/stats.ts';

export interface TwoProcessResult {
  backend: string;
  one: Figure;
  two: Figure;
  /** Median of per-round two/one. */
  gain: Figure;
}

export async function benchTwoProcesses(o: BenchOptions): Promise<TwoProcessResult> {
  const backend = backends().at(-1)!;
  const daemons: Daemon[] = [];
  let data: DaemonData | undefined;
  try {
    const first = await startBenchDaemon('postgres', backend);
    data = first.data;
    daemons.push(first.daemon, (await startBenchDaemon('postgres', backend, data)).daemon);
    const { token } = await provisionRemoteAgent(daemons[0]!.url, data.adminToken, { policy: usdcPolicy({ daily: (10n ** 30n).toString(), perRequest: '1000000' }) });
    const seconds = o.quick ? 1 : 3;
    for (const d of daemons) await load(d.url, token, 4, 1); // warm-up
    const one: number[] = [];
    const two: number[] = [];
    const gain: number[] = [];
    for (let r = 0; r < o.rounds; r++) {
      const single = (await load(daemons[0]!.url, token, 16, seconds)).requestsPerSecond;
      const pair = (await Promise.all(daemons.map((d) => load(d.url, token, 8, seconds)))).reduce((sum, x) => sum + x.requestsPerSecond, 0);
      one.push(single);
      two.push(pair);
      gain.push(pair / single);
    }
    const result = { backend, one: figure(one), two: figure(two), gain: figure(gain) };
    o.log(`  postgres/${backend}, 16 connections: one daemon ${fmt(result.one)} req/s, two daemons ${fmt(result.two)} req/s (x${result.gain.median.toFixed(2)})`);
    return result;
  } finally {
    for (const d of daemons) await d.kill('SIGTERM');
    await data?.cleanup();
  }
}
