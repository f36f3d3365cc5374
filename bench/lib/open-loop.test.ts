// The open-loop generator against servers in their own processes whose behaviour is known: it must keep
// sending on schedule whatever the server does, and count a server stall against every request scheduled
// inside it (no coordinated omission). Margins are wide: this runs on a loaded 2-core machine.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { arrivalOffsets, quantile, runOpenLoop, type OpenLoopSpec } from './open-loop.ts';
import { startTrivialServer, type TrivialServerBehaviour } from './trivial-server.ts';

async function against(behaviour: TrivialServerBehaviour, spec: Omit<OpenLoopSpec, 'url' | 'method' | 'headers'>) {
  const server = await startTrivialServer(behaviour);
  try {
    return await runOpenLoop({ url: `${server.url}/sign`, method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"n":1}', ...spec });
  } finally {
    await server.close();
  }
}

describe('arrival schedules', () => {
  test('even arrivals are spaced exactly 1/rate apart', () => {
    const t = arrivalOffsets(250, 5, 'even');
    assert.deepEqual([...t], [0, 4, 8, 12, 16]);
  });

  test('Poisson arrivals: seeded, the offered mean rate, exponential gaps (coefficient of variation near 1)', () => {
    const a = arrivalOffsets(1000, 20_000, 'poisson', 7);
    assert.deepEqual([...arrivalOffsets(1000, 20_000, 'poisson', 7)], [...a], 'same seed, same schedule');
    assert.notDeepEqual([...arrivalOffsets(1000, 100, 'poisson', 8)], [...a.slice(0, 100)], 'another seed, another schedule');
    const gaps = a.slice(1).map((t, i) => t - a[i]!);
    const mean = gaps.reduce((x, y) => x + y, 0) / gaps.length;
    const sd = Math.sqrt(gaps.reduce((x, g) => x + (g - mean) ** 2, 0) / gaps.length);
    assert.ok(Math.abs(mean - 1) < 0.03, `mean gap ${mean} ms, want 1 ms`);
    assert.ok(Math.abs(sd / mean - 1) < 0.05, `coefficient of variation ${sd / mean}, want about 1`);
  });

  test('quantile is the nearest rank', () => {
    const sorted = Float64Array.from({ length: 100 }, (_, i) => i + 1);
    assert.equal(quantile(sorted, 0.5), 50);
    assert.equal(quantile(sorted, 0.99), 99);
    assert.equal(quantile(sorted, 1), 100);
  });
});

describe('open-loop generator', () => {
  test('keeps sending on schedule while answers are outstanding: 200 req/s against a server that answers after 40 ms', async () => {
    const r = await against({ delayMs: 40 }, { rate: 200, seconds: 1.5, warmupSeconds: 0.3, arrivals: 'even' });
    assert.equal(r.ok, 300);
    assert.equal(r.non2xx + r.errors + r.timeouts, 0);
    // 40 ms at 200/s is 8 in flight; a generator that waited for each answer would have 1.
    assert.ok(r.peakInFlight >= 6, `peak in flight ${r.peakInFlight}`);
    assert.ok(r.latencyMs.p50 >= 40 && r.latencyMs.p50 < 80, `p50 ${r.latencyMs.p50} ms`);
    assert.ok(r.achievedRate > 180 && r.achievedRate < 210, `achieved ${r.achievedRate}/s`);
    assert.equal(r.clientQueued, 0);
  });

  test('a 300 ms server stall counts against every request scheduled inside it, not only those in flight', async () => {
    const r = await against({ stallMs: 300, stallAfterMs: 700 }, { rate: 200, seconds: 1.5, warmupSeconds: 0.2, arrivals: 'even' });
    assert.equal(r.ok, 300);
    // About 60 arrivals fall inside the stall, waiting 300 ms down to 0: the worst 10% of the 300 measured
    // requests waited about 150 ms or more. A closed loop stops sending during the stall, measures only
    // the few requests in flight when it began, and puts p90 near a millisecond.
    assert.ok(r.latencyMs.max >= 280, `max ${r.latencyMs.max} ms`);
    assert.ok(r.latencyMs.p90 >= 100, `p90 ${r.latencyMs.p90} ms`);
    assert.ok(r.latencyMs.p50 < 50, `p50 ${r.latencyMs.p50} ms`);
  });

  test('with too few connections, requests that wait for one on the client side still count from their scheduled time', async () => {
    const r = await against({ stallMs: 300, stallAfterMs: 700 }, { rate: 200, seconds: 1.5, warmupSeconds: 0.2, arrivals: 'even', maxConnections: 2 });
    assert.equal(r.ok, 300);
    assert.ok(r.clientQueued > 0, 'requests waited for a connection');
    assert.ok(r.peakInFlight > 2, `peak in flight ${r.peakInFlight}: waiting requests count as in flight`);
    assert.ok(r.latencyMs.p90 >= 100, `p90 ${r.latencyMs.p90} ms`);
  });

  test('counts answers other than 2xx, and nothing as ok', async () => {
    const r = await against({ status: 503 }, { rate: 100, seconds: 0.5, warmupSeconds: 0.1 });
    assert.equal(r.scheduled, 50);
    assert.equal(r.non2xx, 50);
    assert.equal(r.ok, 0);
    assert.equal(r.achievedRate, 0);
  });

  test('against a server that is not there: every request is an error', async () => {
    const r = await runOpenLoop({ url: 'http://127.0.0.1:1/sign', method: 'GET', headers: {}, rate: 100, seconds: 0.3, warmupSeconds: 0 });
    assert.equal(r.errors, r.scheduled);
    assert.equal(r.ok, 0);
  });
});
