// The load generator, run as its own process (never inside the daemon or the orchestrator) so that it does
// not share an event loop with what it measures. Input: one JSON argument; output: one JSON line.
// `overallRate` set: fixed offered load (autocannon corrects latencies for coordinated omission).
import autocannon from 'autocannon';

interface LoadSpec {
  url: string;
  token: string;
  body: string;
  connections: number;
  seconds: number;
  overallRate?: number;
}

const spec = JSON.parse(process.argv[2]!) as LoadSpec;
const result = await autocannon({
  url: `${spec.url}/v1/sign/transaction`,
  method: 'POST',
  headers: { authorization: `Bearer ${spec.token}`, 'content-type': 'application/json' },
  body: spec.body,
  connections: spec.connections,
  duration: spec.seconds,
  ...(spec.overallRate ? { overallRate: spec.overallRate } : {}),
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
