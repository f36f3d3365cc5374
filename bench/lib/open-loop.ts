// An open-loop HTTP load generator: requests arrive on a schedule fixed in advance (evenly spaced, or a
// seeded Poisson process), whatever the server does, and each one's latency is measured from the time it
// was SCHEDULED to go out, not from when it went out. A closed-loop generator (autocannon, or its
// `overallRate` mode, which fires every connection in step once per tick) only sends when a connection is
// free: when the server stalls it stops sending, and the requests that would have arrived during the stall
// are never measured (coordinated omission). Here a stall delays every request scheduled inside it, and
// each of them is counted with the delay it saw.
//
// Requests go over a pool of keep-alive connections (node:http Agent) that grows as needed up to
// `maxConnections`: a request only waits for a connection on the client side if that many are already in
// flight, which at the rates measured means the server fell behind (counted in `clientQueued`).
//
// Run it in its own process (bench/http-load.ts), never in the process it measures: the two would share
// one event loop, and the generator's timers would stall with the server.
import { Agent, request } from 'node:http';
import type { Socket } from 'node:net';
import { prng } from '../../testing/prng.ts';

export type Arrivals = 'even' | 'poisson';

export interface OpenLoopSpec {
  url: string;
  method: string;
  headers: Record<string, string>;
  body?: string;
  /** Offered rate, requests per second. */
  rate: number;
  /** Measured window, after the warm-up. */
  seconds: number;
  /** Same schedule, not measured: opens the connection pool and warms both sides' JIT. Default 0.5 s. */
  warmupSeconds?: number;
  /** Default 'poisson'. */
  arrivals?: Arrivals;
  /** Seed of the Poisson schedule (the same seed gives the same schedule). Default 1. */
  seed?: number;
  /** Ceiling on open connections. Default 256. */
  maxConnections?: number;
  /** Requests still unanswered this long after the last arrival are abandoned as timeouts. Default 10 s. */
  timeoutMs?: number;
}

export interface OpenLoopResult {
  offeredRate: number;
  /** Successful (2xx) measured requests per second, from the first measured arrival to the last answer. */
  achievedRate: number;
  /** Measured requests: scheduled inside the window. */
  scheduled: number;
  ok: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  /** From the scheduled send time to the end of the response; includes any time spent waiting to be sent. */
  latencyMs: { p50: number; p90: number; p99: number; p999: number; max: number; mean: number };
  /** How late the generator itself sent requests (actual send − scheduled): its own overhead. */
  sendLagMs: { p99: number; max: number };
  /** CPU the generator process used over the run, as a share of one core. */
  generatorCpu: number;
  peakInFlight: number;
  connectionsOpened: number;
  /** Requests that had to wait for a connection because `maxConnections` were in flight. */
  clientQueued: number;
}

/** Millisecond offsets of `count` arrivals at `rate`/s, starting at 0. */
export function arrivalOffsets(rate: number, count: number, arrivals: Arrivals, seed = 1): Float64Array {
  const offsets = new Float64Array(count);
  const meanGapMs = 1000 / rate;
  if (arrivals === 'even') {
    for (let i = 0; i < count; i++) offsets[i] = i * meanGapMs;
    return offsets;
  }
  // Poisson process: exponential gaps, inverse-transform sampled from a seeded PRNG.
  const random = prng(seed);
  let t = 0;
  for (let i = 0; i < count; i++) {
    offsets[i] = t;
    t += -Math.log(1 - random()) * meanGapMs;
  }
  return offsets;
}

/** The value at quantile q of ascending `sorted` (nearest rank). */
export function quantile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

/** The warm-up before the measured window when a spec names none. */
export const DEFAULT_WARMUP_SECONDS = 0.5;

export async function runOpenLoop(spec: OpenLoopSpec): Promise<OpenLoopResult> {
  const warmupSeconds = spec.warmupSeconds ?? DEFAULT_WARMUP_SECONDS;
  const maxConnections = spec.maxConnections ?? 256;
  const timeoutMs = spec.timeoutMs ?? 10_000;
  const warmupCount = Math.round(spec.rate * warmupSeconds);
  const measuredCount = Math.max(1, Math.round(spec.rate * spec.seconds));
  const total = warmupCount + measuredCount;
  const offsets = arrivalOffsets(spec.rate, total, spec.arrivals ?? 'poisson', spec.seed ?? 1);

  const target = new URL(spec.url);
  const agent = new Agent({ keepAlive: true, maxSockets: maxConnections, maxFreeSockets: maxConnections });
  const body = spec.body === undefined ? undefined : Buffer.from(spec.body);
  const headers = { ...spec.headers, ...(body ? { 'content-length': String(body.length) } : {}) };

  // Per measured request (index − warmupCount); NaN until it ends.
  const latency = new Float64Array(measuredCount).fill(Number.NaN);
  const sendLag = new Float64Array(measuredCount);
  const counts = { ok: 0, non2xx: 0, errors: 0, timeouts: 0 };
  const sockets = new WeakSet<Socket>();
  let connectionsOpened = 0;
  let inFlight = 0;
  let peakInFlight = 0;
  let clientQueued = 0;
  let lastAnswer = 0;
  let sent = 0;
  const pending = new Set<{ cancel(now: number): void }>();
  let allSettled: () => void = () => {};

  const cpuBefore = process.cpuUsage();
  // First arrival a little ahead, so setting up the first request does not make it late.
  const start = performance.now() + 20;
  const measuredStart = start + (offsets[warmupCount] ?? 0);

  const send = (index: number, scheduledAt: number) => {
    const measured = index >= warmupCount ? index - warmupCount : -1;
    if (measured >= 0) sendLag[measured] = performance.now() - scheduledAt;
    if (inFlight >= maxConnections) clientQueued++;
    inFlight++;
    peakInFlight = Math.max(peakInFlight, inFlight);
    let done = false;
    const finish = (now: number, outcome: keyof typeof counts) => {
      if (done) return;
      done = true;
      inFlight--;
      pending.delete(entry);
      if (measured >= 0) {
        latency[measured] = now - scheduledAt;
        counts[outcome]++;
        if (outcome === 'ok') lastAnswer = Math.max(lastAnswer, now);
      }
      if (inFlight === 0 && sent === total) allSettled();
    };
    const req = request({ agent, host: target.hostname, port: target.port, path: target.pathname + target.search, method: spec.method, headers });
    const entry = {
      cancel: (now: number) => {
        finish(now, 'timeouts');
        req.destroy();
      },
    };
    pending.add(entry);
    req.on('socket', (socket) => {
      if (sockets.has(socket)) return;
      sockets.add(socket);
      connectionsOpened++;
    });
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => finish(performance.now(), res.statusCode! >= 200 && res.statusCode! < 300 ? 'ok' : 'non2xx'));
      res.on('error', () => finish(performance.now(), 'errors'));
    });
    req.on('error', () => finish(performance.now(), 'errors'));
    req.end(body);
  };

  await new Promise<void>((resolve) => {
    allSettled = resolve;
    // Send everything that is due, then sleep until the next arrival. Timers have a 1 ms floor, so a
    // request can go out up to about a millisecond late; that lateness is part of its latency (measured
    // from the schedule) and is reported on its own as sendLagMs.
    const pump = () => {
      const now = performance.now();
      while (sent < total && start + offsets[sent]! <= now) {
        send(sent, start + offsets[sent]!);
        sent++;
      }
      if (sent < total) {
        setTimeout(pump, Math.max(0, start + offsets[sent]! - performance.now()));
        return;
      }
      if (inFlight === 0) resolve();
      // Abandon what is still unanswered `timeoutMs` after the last arrival; it counts with the wait it saw.
      else setTimeout(() => {
        const now = performance.now();
        for (const p of [...pending]) p.cancel(now);
        resolve();
      }, timeoutMs).unref();
    };
    setTimeout(pump, Math.max(0, start - performance.now()));
  });
  agent.destroy();
  const cpu = process.cpuUsage(cpuBefore);
  const wallMs = performance.now() - start;

  const sorted = latency.filter((x) => !Number.isNaN(x)).sort();
  const lagSorted = sendLag.sort();
  const mean = sorted.length ? sorted.reduce((a, b) => a + b, 0) / sorted.length : 0;
  // The window runs to the last answer, but never shorter than the schedule itself (one gap past the last arrival).
  const scheduleSpanMs = offsets[total - 1]! - offsets[warmupCount]! + 1000 / spec.rate;
  const achievedWindowMs = Math.max(lastAnswer - measuredStart, scheduleSpanMs);
  return {
    offeredRate: spec.rate,
    achievedRate: counts.ok / (achievedWindowMs / 1000),
    scheduled: measuredCount,
    ...counts,
    latencyMs: {
      p50: quantile(sorted, 0.5),
      p90: quantile(sorted, 0.9),
      p99: quantile(sorted, 0.99),
      p999: quantile(sorted, 0.999),
      max: sorted.at(-1) ?? 0,
      mean,
    },
    sendLagMs: { p99: quantile(lagSorted, 0.99), max: lagSorted.at(-1) ?? 0 },
    generatorCpu: (cpu.user + cpu.system) / 1000 / wallMs,
    peakInFlight,
    connectionsOpened,
    clientQueued,
  };
}
