// The Prometheus listener (AIRLOCK_METRICS_LISTEN) keeps web pages away as the API port does: a page that rebinds
// its own name to the daemon's address sends that name as Host and is refused (421 host_not_allowed), any request
// carrying an Origin (a browser's; Prometheus never sends one) is refused (403 origin_not_allowed), and every answer
// is no-store and nosniff. Driven over real HTTP against `serveAirlock` with the metrics listener on, so the host
// names the operator listed (AIRLOCK_ALLOWED_HOSTS) reach the listener as they reach the API.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from './config.ts';
import { initAirlock } from './runtime.ts';
import { serveAirlock, type RunningServer } from './serve.ts';
import { TEST_PASSPHRASE, TEST_VAULT } from './testing/harness.ts';

const LISTED = 'metrics.ops.internal';

let server: RunningServer;
let dataDir: string;
let metricsPort: string;
let apiPort: string;

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'airlock-metrics-host-'));
  const config = loadConfig({ dataDir, host: '127.0.0.1', port: 0, metricsListen: { host: '127.0.0.1', port: 0 }, allowedHosts: [LISTED] }, {});
  await initAirlock(config, TEST_PASSPHRASE, TEST_VAULT);
  server = await serveAirlock(config, TEST_PASSPHRASE, { vault: TEST_VAULT, timers: false });
  assert.ok(server.metricsUrl, 'the metrics listener is on');
  metricsPort = new URL(server.metricsUrl).port;
  apiPort = new URL(server.url).port;
});

after(async () => {
  await server?.close().catch(() => {});
  rmSync(dataDir, { recursive: true, force: true });
});

interface Answer {
  status: number;
  body: string;
  headers: Record<string, string | string[] | undefined>;
}

/** A GET to 127.0.0.1 with the headers given (Host included), as a browser sends it after DNS rebinding. */
function get(port: string, path: string, headers: Record<string, string>): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: Number(port), path, method: 'GET', headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, body, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

function assertNoStore(res: Answer): void {
  assert.equal(res.headers['cache-control'], 'no-store');
  assert.equal(res.headers['x-content-type-options'], 'nosniff');
}

describe('the metrics listener refuses web pages as the API does', () => {
  test('a rebound Host is refused with 421 host_not_allowed and no metric, as the API refuses it', async () => {
    const rebound = `rebind.attacker.example:${metricsPort}`;
    const res = await get(metricsPort, '/metrics', { host: rebound });
    assert.equal(res.status, 421, res.body.slice(0, 200));
    assert.match(res.body, /^host_not_allowed: /);
    assert.ok(!res.body.includes('airlock_'), 'no metric in the refusal');
    assert.match(String(res.headers['content-type']), /^text\/plain/);
    assertNoStore(res);

    // With the page's own Origin and fetch metadata, as the browser sends them after the rebinding.
    const page = await get(metricsPort, '/metrics', { host: rebound, origin: `http://${rebound}`, 'sec-fetch-site': 'same-origin' });
    assert.equal(page.status, 421);
    assert.ok(!page.body.includes('airlock_'));

    // The API port of the same daemon answers that name alike (browser-guard.ts).
    const api = await get(apiPort, '/v1/health', { host: `rebind.attacker.example:${apiPort}` });
    assert.equal(api.status, 421);
    assert.equal(JSON.parse(api.body).error.code, 'host_not_allowed');
  });

  test('a request with any Origin is refused with 403 origin_not_allowed, even under an allowed Host', async () => {
    for (const origin of [`http://127.0.0.1:${metricsPort}`, 'null', 'https://grafana.example']) {
      const res = await get(metricsPort, '/metrics', { host: `127.0.0.1:${metricsPort}`, origin });
      assert.equal(res.status, 403, `${origin}: ${res.body.slice(0, 200)}`);
      assert.match(res.body, /^origin_not_allowed: /);
      assert.ok(!res.body.includes('airlock_'));
      assertNoStore(res);
    }
  });

  test('Prometheus is answered under an IP literal, localhost, the listed name and without Host; every answer is no-store and nosniff', async () => {
    for (const host of [`127.0.0.1:${metricsPort}`, `localhost:${metricsPort}`, `LOCALHOST:${metricsPort}`, `${LISTED}:${metricsPort}`, `[::1]:${metricsPort}`, '10.0.0.7']) {
      const res = await get(metricsPort, '/metrics', { host, 'user-agent': 'Prometheus/3.0.0', accept: 'text/plain;version=0.0.4' });
      assert.equal(res.status, 200, `${host}: ${res.body.slice(0, 200)}`);
      assert.match(res.body, /^# HELP airlock_/m, host);
      assertNoStore(res);
    }
    // fetch sends the URL's host (127.0.0.1:port), as a scraper does.
    const scraped = await fetch(server.metricsUrl!);
    assert.equal(scraped.status, 200);
    assert.equal(scraped.headers.get('cache-control'), 'no-store');
    assert.equal(scraped.headers.get('x-content-type-options'), 'nosniff');
    await scraped.text();
    // HTTP/1.0 without a Host (no browser sends that): answered.
    const raw = await new Promise<string>((resolve, reject) => {
      let text = '';
      const socket = connect(Number(metricsPort), '127.0.0.1', () => socket.write('GET /metrics HTTP/1.0\r\n\r\n'));
      socket.setEncoding('utf8');
      socket.on('data', (d) => (text += d));
      socket.on('end', () => resolve(text));
      socket.on('error', reject);
    });
    assert.match(raw, /^HTTP\/1\.1 200 /);
  });

  test('other paths and methods stay 404, with the same headers', async () => {
    const res = await get(metricsPort, '/', { host: `127.0.0.1:${metricsPort}` });
    assert.equal(res.status, 404);
    assertNoStore(res);
  });
});
