// (3) Over HTTP on loopback: a real daemon (`airlock start`, its own process) and the load generator in a
// third process (bench/http-load.ts). Capacity in a closed loop (autocannon) at 1, 16 and 64 connections;
// latency in an open loop (bench/lib/open-loop.ts: Poisson arrivals at a fixed offered rate, latency from
// each request's scheduled send time) at 500 req/s and at half the c16 capacity measured in the same round;
// and the highest offered rate whose p99 stays under 10 ms. The generator is also run against a trivial
// server at the same rates, so its own share of those latencies is on record.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { prepareDaemonData, provisionRemoteAgent, startDaemon, type Daemon, type DaemonData } from '../packages/server/src/testing/processes.ts';
import { ALICE, usdcPolicy, usdcTransfer } from '../packages/server/src/testing/harness.ts';
import { baselineRound } from './baseline.ts';
import { backends, type Backend } from './in-process.ts';
import { DEFAULT_WARMUP_SECONDS, type Arrivals, type OpenLoopResult } from './lib/open-loop.ts';
import { coresBetween } from './lib/process-cpu.ts';
import { figure, type BenchOptions, type Figure } from './lib/stats.ts';
import { startTrivialServer } from './lib/trivial-server.ts';

const run = promisify(execFile);
const LOAD = new URL('./http-load.ts', import.meta.url).pathname;
export const FIXED_RATE = 500;
/** The latency objective the rate search holds (issue 8): p99 under 10 ms. */
export const P99_OBJECTIVE_MS = 10;
/** Requests each rate of the p99 bisection runs for at least (see highestRateUnderObjective). */
export const P99_MIN_SAMPLES = 1000;

interface ClosedLoopResult {
  requestsPerSecond: number;
  total: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  latencyMs: { p50: number; p99: number; max: number };
}

const signBody = () => JSON.stringify(usdcTransfer(ALICE, 1n, 0));

async function runLoadProcess<T>(spec: object): Promise<T> {
  const { stdout } = await run(process.execPath, [LOAD, JSON.stringify(spec)], { maxBuffer: 1 << 20 });
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as T;
}

/**
 * An agreed start (`startAt`, epoch ms) for load processes spawned now: after each has started (node and its
 * imports take a few hundred ms), so none measures while another starts and a reader knows their window.
 */
export const loadStartAt = () => Date.now() + 1500;

/** Closed loop: `connections` each send their next request as soon as the last is answered (capacity). */
/** `token` may be several agents' tokens, used in turn (one load process for many agents). */
/** `startAt` (epoch ms): when the load begins, for load processes started together (see http-load.ts). */
export async function load(url: string, token: string | string[], connections: number, seconds: number, startAt?: number): Promise<ClosedLoopResult> {
  const tokens = Array.isArray(token) ? token : [token];
  const result = await runLoadProcess<ClosedLoopResult>({ url, token: tokens[0]!, ...(tokens.length > 1 ? { tokens } : {}), body: signBody(), connections, seconds, ...(startAt !== undefined ? { startAt } : {}) });
  if (result.non2xx || result.errors) throw new Error(`load run failed: ${JSON.stringify(result)}`);
  return result;
}

/**
 * Open loop: requests arrive at `rate`/s on a schedule that does not wait for the server; latency counts
 * from each request's scheduled time. Answers other than 2xx and socket errors abort the run (they mean
 * the setup is wrong); timeouts are counted, and fail the rate search.
 */
export async function openLoad(url: string, token: string, rate: number, seconds: number, opts: { arrivals?: Arrivals; seed?: number; startAt?: number } = {}): Promise<OpenLoopResult> {
  const result = await runLoadProcess<OpenLoopResult>({ url, token, body: signBody(), rate, seconds, ...opts });
  if (result.non2xx || result.errors) throw new Error(`open-loop run failed: ${JSON.stringify(result)}`);
  return result;
}

/** Latency at one offered rate, over the rounds. */
export interface LatencyAtRate {
  offered: Figure;
  achieved: Figure;
  p50: Figure;
  p90: Figure;
  p99: Figure;
  max: Figure;
}

type LatencySamples = Record<keyof LatencyAtRate, number[]>;
const latencySamples = (): LatencySamples => ({ offered: [], achieved: [], p50: [], p90: [], p99: [], max: [] });
function addSample(samples: LatencySamples, r: OpenLoopResult): void {
  samples.offered.push(r.offeredRate);
  samples.achieved.push(r.achievedRate);
  samples.p50.push(r.latencyMs.p50);
  samples.p90.push(r.latencyMs.p90);
  samples.p99.push(r.latencyMs.p99);
  samples.max.push(r.latencyMs.max);
}
const latencyFigures = (s: LatencySamples): LatencyAtRate => ({
  offered: figure(s.offered), achieved: figure(s.achieved), p50: figure(s.p50), p90: figure(s.p90), p99: figure(s.p99), max: figure(s.max),
});

export interface HttpSetupResult {
  c1: Figure;
  c16: Figure;
  c64: Figure;
  /** c16 throughput over the same round's viem baseline. */
  ratioC16: Figure;
  /** Open loop, Poisson arrivals at FIXED_RATE. */
  fixedRate: LatencyAtRate;
  /** Open loop, Poisson arrivals at half the round's c16 throughput. */
  halfCapacity: LatencyAtRate;
  /** The same offered rate with evenly spaced arrivals: what is left once arrivals come without bursts. */
  halfCapacityEven: LatencyAtRate;
  /**
   * The daemon's CPU in cores (user + system, all its threads, read from /proc over the measured window): during
   * the c16 closed loop and during the half-capacity open loop (Poisson). What says whether "half capacity" is
   * half of what the daemon can do under that kind of load.
   */
  daemonCores?: { c16: Figure; halfCapacity: Figure };
  /** The highest offered rate found (open loop, Poisson, bisection after the rounds) at which p99 < P99_OBJECTIVE_MS; 0 if none. */
  p99ObjectiveRate: number;
  /** The lowest rate the bisection tried that missed the objective (so the answer lies between the two). */
  p99ObjectiveMissedAt?: number;
}

export interface HttpResult {
  baselineViem: Figure;
  /**
   * The generator against a trivial server (bench/lib/trivial-server.ts, its own process, answers at
   * once) at the offered rates of the SQLite/native setup: half its c16 capacity, and all of it. What it
   * reports there is the generator's and loopback's own latency, part of every figure above it.
   */
  generatorFloor?: { setup: string; atHalf: LatencyAtRate; atCapacity: LatencyAtRate };
  setups: Record<string, HttpSetupResult>;
}

export async function startBenchDaemon(store: 'sqlite' | 'postgres', backend: Backend, data?: DaemonData): Promise<{ daemon: Daemon; data: DaemonData }> {
  const own = data ?? (await prepareDaemonData(store));
  const before = process.env.AIRLOCK_KEY_BACKEND;
  process.env.AIRLOCK_KEY_BACKEND = backend; // startDaemon hands process.env to the child
  try {
    const daemon = await startDaemon(own);
    // `airlock start` logs JSON lines (`"msg":"key backend","backend":"native (libsecp256k1)"`); older builds wrote text.
    const out = daemon.output();
    if (!out.includes(`"backend":"${backend}`) && !out.includes(`key backend: ${backend}`)) throw new Error(`daemon did not report the ${backend} backend:\n${out}`);
    return { daemon, data: own };
  } finally {
    if (before === undefined) delete process.env.AIRLOCK_KEY_BACKEND;
    else process.env.AIRLOCK_KEY_BACKEND = before;
  }
}

export async function benchHttp(o: BenchOptions): Promise<HttpResult> {
  const seconds = o.quick ? 1 : 2;
  const rateSeconds = o.quick ? 2 : 5;
  const setups: { key: string; daemon: Daemon; data: DaemonData; token: string }[] = [];
  const trivial = await startTrivialServer();
  try {
    for (const store of ['sqlite', 'postgres'] as const) {
      for (const backend of backends()) {
        const { daemon, data } = await startBenchDaemon(store, backend);
        const { token } = await provisionRemoteAgent(daemon.url, data.adminToken, { policy: usdcPolicy({ daily: (10n ** 30n).toString(), perRequest: '1000000' }) });
        setups.push({ key: `${store}/${backend}`, daemon, data, token });
        await load(daemon.url, token, 4, 1); // warm-up
      }
    }
    const floorSetup = (setups.find((s) => s.key === 'sqlite/native') ?? setups[0]!).key;
    const floor = { atHalf: latencySamples(), atCapacity: latencySamples() };
    const viem: number[] = [];
    type Samples = { c1: number[]; c16: number[]; c64: number[]; ratioC16: number[]; fixed: LatencySamples; half: LatencySamples; halfEven: LatencySamples; coresC16: number[]; coresHalf: number[] };
    const raw: Record<string, Samples> = {};
    for (let r = 0; r < o.rounds; r++) {
      const b = await baselineRound(o.quick ? 0.3 : 0.6);
      viem.push(b.viem);
      // A different Poisson schedule each round, so no one unlucky schedule decides every round.
      const seed = r + 1;
      for (const s of setups) {
        const slot = (raw[s.key] ??= { c1: [], c16: [], c64: [], ratioC16: [], fixed: latencySamples(), half: latencySamples(), halfEven: latencySamples(), coresC16: [], coresHalf: [] });
        slot.c1.push((await load(s.daemon.url, s.token, 1, seconds)).requestsPerSecond);
        // The load processes start at an agreed time, so the daemon's CPU is read over exactly their window.
        const c16At = loadStartAt();
        const c16Cores = coresBetween(s.daemon.pid, c16At, c16At + seconds * 1000);
        const c16 = (await load(s.daemon.url, s.token, 16, seconds, c16At)).requestsPerSecond;
        slot.coresC16.push(await c16Cores);
        slot.c16.push(c16);
        slot.ratioC16.push(c16 / b.viem);
        slot.c64.push((await load(s.daemon.url, s.token, 64, seconds)).requestsPerSecond);
        addSample(slot.fixed, await openLoad(s.daemon.url, s.token, FIXED_RATE, rateSeconds, { seed }));
        const half = Math.max(1, Math.round(c16 / 2));
        const halfAt = loadStartAt();
        const measuredFrom = halfAt + DEFAULT_WARMUP_SECONDS * 1000;
        const halfCores = coresBetween(s.daemon.pid, measuredFrom, measuredFrom + rateSeconds * 1000);
        addSample(slot.half, await openLoad(s.daemon.url, s.token, half, rateSeconds, { seed, startAt: halfAt }));
        slot.coresHalf.push(await halfCores);
        addSample(slot.halfEven, await openLoad(s.daemon.url, s.token, half, rateSeconds, { arrivals: 'even' }));
        if (s.key === floorSetup) {
          addSample(floor.atHalf, await openLoad(trivial.url, s.token, half, rateSeconds, { seed }));
          addSample(floor.atCapacity, await openLoad(trivial.url, s.token, Math.max(1, Math.round(c16)), rateSeconds, { seed }));
        }
      }
      o.log(`  http round ${r + 1}/${o.rounds}: viem ${b.viem.toFixed(0)}/s; ${setups.map((s) => `${s.key} c16 ${raw[s.key]!.c16.at(-1)!.toFixed(0)}/s (${raw[s.key]!.coresC16.at(-1)!.toFixed(2)} cores) p99 ${raw[s.key]!.half.p99.at(-1)!.toFixed(1)} ms at ${raw[s.key]!.half.offered.at(-1)}/s (${raw[s.key]!.coresHalf.at(-1)!.toFixed(2)} cores)`).join(', ')}; generator alone p99 ${floor.atHalf.p99.at(-1)?.toFixed(1)} ms`);
    }
    const out: HttpResult['setups'] = {};
    for (const [key, v] of Object.entries(raw)) {
      const s = setups.find((x) => x.key === key)!;
      out[key] = {
        c1: figure(v.c1), c16: figure(v.c16), c64: figure(v.c64), ratioC16: figure(v.ratioC16),
        fixedRate: latencyFigures(v.fixed),
        halfCapacity: latencyFigures(v.half),
        halfCapacityEven: latencyFigures(v.halfEven),
        ...([...v.coresC16, ...v.coresHalf].every(Number.isFinite) ? { daemonCores: { c16: figure(v.coresC16), halfCapacity: figure(v.coresHalf) } } : {}),
        ...(await highestRateUnderObjective(s.daemon.url, s.token, figure(v.c64).median, o.quick ? 4 : 6, rateSeconds)),
      };
      o.log(`  http ${key}: p99 < ${P99_OBJECTIVE_MS} ms up to ${out[key]!.p99ObjectiveRate} req/s offered (missed at ${out[key]!.p99ObjectiveMissedAt ?? 'none tried'})`);
    }
    return { baselineViem: figure(viem), generatorFloor: { setup: floorSetup, atHalf: latencyFigures(floor.atHalf), atCapacity: latencyFigures(floor.atCapacity) }, setups: out };
  } finally {
    for (const s of setups) {
      await s.daemon.kill('SIGTERM');
      await s.data.cleanup();
    }
    await trivial.close();
  }
}

/**
 * Bisects the offered rate between 0 and the measured capacity for the highest one whose p99 (open loop,
 * Poisson arrivals, latency from the scheduled send time) stays under the objective and that the daemon
 * actually sustains (achieves >= 95% of it, nothing timed out).
 */
async function highestRateUnderObjective(url: string, token: string, capacity: number, steps: number, seconds: number): Promise<{ p99ObjectiveRate: number; p99ObjectiveMissedAt?: number }> {
  let low = 0;
  let high = Math.max(2, Math.round(capacity));
  let missedAt: number | undefined;
  for (let i = 0; i < steps; i++) {
    const rate = Math.round((low + high) / 2);
    if (rate <= low || rate >= high) break;
    // A p99 needs enough requests to mean anything: at low rates a fixed-length run has so few that its
    // p99 is its single slowest request. Each rate runs for at least P99_MIN_SAMPLES requests (at most 60 s).
    const r = await openLoad(url, token, rate, Math.max(seconds, Math.min(60, Math.ceil(P99_MIN_SAMPLES / rate))));
    if (r.latencyMs.p99 < P99_OBJECTIVE_MS && r.achievedRate >= rate * 0.95 && r.timeouts === 0) low = rate;
    else high = missedAt = rate;
  }
  return { p99ObjectiveRate: low, ...(missedAt !== undefined ? { p99ObjectiveMissedAt: missedAt } : {}) };
}
