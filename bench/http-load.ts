// The load generator, run as its own process (never inside the daemon or the orchestrator) so that it does
// not share an event loop with what it measures. Input: one JSON argument; output: one JSON line.
//   `connections` set: closed loop (autocannon): each connection sends its next request when the last is
//     answered; measures capacity.
//   `rate` set: open loop (bench/lib/open-loop.ts): arrivals on a fixed schedule at that offered rate,
//     latency from each request's scheduled time; measures latency at a given load.
import autocannon from 'autocannon';
import { runOpenLoop, type Arrivals } from './lib/open-loop.ts';

interface LoadSpec {
  url: string;
  token: string;
  /** Closed loop only: more agents' tokens, taken in turn request by request (one process for many agents). */
  tokens?: string[];
  body: string;
  seconds: number;
  connections?: number;
  rate?: number;
  arrivals?: Arrivals;
  seed?: number;
  /**
   * Epoch ms to start at: several load processes started together measure the same window, and none measures
   * while the others are still starting (each start takes a few hundred ms of CPU).
   */
  startAt?: number;
}

const spec = JSON.parse(process.argv[2]!) as LoadSpec;
if (spec.startAt !== undefined && spec.startAt > Date.now()) await new Promise((resolve) => setTimeout(resolve, spec.startAt! - Date.now()));
const url = `${spec.url}/v1/sign/transaction`;
const headers = { authorization: `Bearer ${spec.token}`, 'content-type': 'application/json' };

if (spec.rate !== undefined) {
  const result = await runOpenLoop({
    url, method: 'POST', headers, body: spec.body, rate: spec.rate, seconds: spec.seconds,
    ...(spec.arrivals ? { arrivals: spec.arrivals } : {}), ...(spec.seed !== undefined ? { seed: spec.seed } : {}),
  });
  process.stdout.write(`${JSON.stringify(result)}\n`);
} else {
  const tokens = spec.tokens ?? [spec.token];
  let turn = 0;
  const result = await autocannon({
    url, method: 'POST', headers, body: spec.body, connections: spec.connections ?? 1, duration: spec.seconds,
    ...(tokens.length > 1 ? { requests: [{ setupRequest: (req: { headers?: Record<string, string> }) => ({ ...req, headers: { ...req.headers, authorization: `Bearer ${tokens[turn++ % tokens.length]}` } }) }] } : {}),
  });
  const ok = result.requests.total - result.non2xx;
  process.stdout.write(`${JSON.stringify({
    requestsPerSecond: ok / spec.seconds,
    total: result.requests.total,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    latencyMs: { p50: result.latency.p50, p99: result.latency.p99, max: result.latency.max },
  })}\n`);
}
