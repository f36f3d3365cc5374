// Using both cores: one daemon vs two daemon processes on the same PostgreSQL store (the supported way to
// scale out; SQLite allows one writer process). Same total offered concurrency (16), split across the two;
// the load generators run as their own processes, concurrently. Native backend.
//
// Scale-out with a real network round trip: 2 cores cannot show scale-out directly (the daemons, the load
// generators and PostgreSQL would fight for the same CPU), so the daemons reach PostgreSQL through a proxy
// that adds a fixed round trip (bench/lib/delay-proxy.ts), as a database on another machine would. With
// the round trip dominating, a daemon spends most of its time waiting; what limits more daemons is then
// what they wait for each other on (locks), which is what this measures. Sixteen independent agents with
// four connections each (64 in all): all on one daemon, or four agents per daemon on four. Each daemon runs
// its default number of group-commit batches at once (PostgresStoreOptions.batchesInFlight).
//
// The same sixteen agents are also measured at a fixed load per daemon: each daemon serves its four agents in
// turn over one connection, first one daemon alone, then all four at once. The total offered load grows with
// the daemons, as it does when an operator adds instances for more agents, and it stays below what the 2 cores
// can do, so what could still hold four daemons back is what they wait for each other on.
//
// Load processes that run together start at one agreed time (http-load.ts `startAt`): each takes a few hundred
// ms of CPU to start, which would otherwise fall inside the others' measured windows.
import { backends } from './in-process.ts';
import { load, loadStartAt, startBenchDaemon } from './http.ts';
import { provisionRemoteAgent, type Daemon, type DaemonData } from '../packages/server/src/testing/processes.ts';
import { usdcPolicy } from '../packages/server/src/testing/harness.ts';
import { figure, fmt, type BenchOptions, type Figure } from './lib/stats.ts';
import { startDelayProxy } from './lib/delay-proxy.ts';
import pg from 'pg';

/** Added round trip to PostgreSQL for the scale-out measurement (a database in another zone of one region). */
export const SCALE_OUT_RTT_MS = 2;
/** Independent agents in the scale-out measurement, four connections each. */
const SCALE_OUT_AGENTS = 16;
/** Connections per daemon at a fixed load per daemon (its four agents in turn). */
const PER_DAEMON_CONNECTIONS = 1;

export interface TwoProcessResult {
  backend: string;
  one: Figure;
  two: Figure;
  /** Median of per-round two/one. */
  gain: Figure;
  /** One daemon vs four, PostgreSQL behind an added round trip, independent agents. */
  scaleOut?: {
    addedRttMs: number;
    /** Round trip measured through the proxy (ms, median of sequential `SELECT $1` after warm-up), direct and delayed. */
    measuredRttMs?: { direct: number; delayed: number };
    one: Figure;
    four: Figure;
    gain: Figure;
    /** Fixed load per daemon: `connections` per daemon over its four agents; one daemon alone, then four at once. */
    perDaemon?: { connections: number; one: Figure; four: Figure; gain: Figure };
  };
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
      const at = loadStartAt();
      const pair = (await Promise.all(daemons.map((d) => load(d.url, token, 8, seconds, at)))).reduce((sum, x) => sum + x.requestsPerSecond, 0);
      one.push(single);
      two.push(pair);
      gain.push(pair / single);
    }
    const result: TwoProcessResult = { backend, one: figure(one), two: figure(two), gain: figure(gain) };
    o.log(`  postgres/${backend}, 16 connections: one daemon ${fmt(result.one)} req/s, two daemons ${fmt(result.two)} req/s (x${result.gain.median.toFixed(2)})`);
    for (const d of daemons.splice(0)) await d.kill('SIGTERM');
    result.scaleOut = await benchScaleOut(o, backend, data);
    return result;
  } finally {
    for (const d of daemons) await d.kill('SIGTERM');
    await data?.cleanup();
  }
}

async function benchScaleOut(o: BenchOptions, backend: 'js' | 'native', data: DaemonData): Promise<NonNullable<TwoProcessResult['scaleOut']>> {
  const pgUrl = new URL(data.storeUrl);
  const proxy = await startDelayProxy({ host: pgUrl.hostname, port: Number(pgUrl.port || 5432) }, SCALE_OUT_RTT_MS);
  const daemons: Daemon[] = [];
  try {
    const viaProxy = new URL(data.storeUrl);
    viaProxy.hostname = '127.0.0.1';
    viaProxy.port = String(proxy.port);
    const delayed: DaemonData = { ...data, storeUrl: viaProxy.toString() };
    for (let i = 0; i < 4; i++) daemons.push((await startBenchDaemon('postgres', backend, delayed)).daemon);
    const tokens: string[] = [];
    for (let i = 0; i < SCALE_OUT_AGENTS; i++) {
      tokens.push((await provisionRemoteAgent(daemons[0]!.url, data.adminToken, { policy: usdcPolicy({ daily: (10n ** 30n).toString(), perRequest: '1000000' }) })).token);
    }
    const seconds = o.quick ? 2 : 4;
    for (let i = 0; i < 4; i++) await load(daemons[i]!.url, tokens[i]!, 2, 1); // warm-up
    const one: number[] = [];
    const four: number[] = [];
    const gain: number[] = [];
    const fixed = { one: [] as number[], four: [] as number[], gain: [] as number[] };
    const sum = (xs: { requestsPerSecond: number }[]) => xs.reduce((t, x) => t + x.requestsPerSecond, 0);
    const agentsOf = (i: number) => tokens.filter((_, k) => k % 4 === i);
    for (let r = 0; r < o.rounds; r++) {
      // One load process per daemon (each for its agents' tokens in turn): 16 load processes would take the
      // cores the daemons need.
      const single = (await load(daemons[0]!.url, tokens, 4 * tokens.length, seconds)).requestsPerSecond;
      const at = loadStartAt();
      const spread = sum(await Promise.all(daemons.map((d, i) => load(d.url, agentsOf(i), tokens.length, seconds, at))));
      one.push(single);
      four.push(spread);
      gain.push(spread / single);
      const alone = (await load(daemons[0]!.url, agentsOf(0), PER_DAEMON_CONNECTIONS, seconds)).requestsPerSecond;
      const atOnce = loadStartAt();
      const all = sum(await Promise.all(daemons.map((d, i) => load(d.url, agentsOf(i), PER_DAEMON_CONNECTIONS, seconds, atOnce))));
      fixed.one.push(alone);
      fixed.four.push(all);
      fixed.gain.push(all / alone);
    }
    const result = {
      addedRttMs: SCALE_OUT_RTT_MS,
      measuredRttMs: await measureRoundTrips(data.storeUrl, viaProxy.toString()),
      one: figure(one), four: figure(four), gain: figure(gain),
      perDaemon: { connections: PER_DAEMON_CONNECTIONS, one: figure(fixed.one), four: figure(fixed.four), gain: figure(fixed.gain) },
    };
    o.log(`  scale-out, +${SCALE_OUT_RTT_MS} ms round trip (measured ${result.measuredRttMs.delayed.toFixed(2)} ms against ${result.measuredRttMs.direct.toFixed(2)} direct): 64 connections on one daemon ${fmt(result.one)} req/s, spread over four ${fmt(result.four)} req/s (x${result.gain.median.toFixed(2)}); ${PER_DAEMON_CONNECTIONS} connection per daemon: one ${fmt(result.perDaemon.one)} req/s, four ${fmt(result.perDaemon.four)} req/s (x${result.perDaemon.gain.median.toFixed(2)})`);
    return result;
  } finally {
    for (const d of daemons) await d.kill('SIGTERM');
    await proxy.close();
  }
}

/** Median round trip of a sequential parameterised `SELECT`, direct and through the delay proxy (ms). */
async function measureRoundTrips(direct: string, delayed: string): Promise<{ direct: number; delayed: number }> {
  const median = async (url: string) => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      for (let i = 0; i < 20; i++) await client.query({ text: 'SELECT $1::int', values: [i] });
      const times: number[] = [];
      for (let i = 0; i < 200; i++) {
        const t = performance.now();
        await client.query({ text: 'SELECT $1::int', values: [i] });
        times.push(performance.now() - t);
      }
      return figure(times).median;
    } finally {
      await client.end();
    }
  };
  return { direct: await median(direct), delayed: await median(delayed) };
}
