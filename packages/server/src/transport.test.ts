// Transport-level behaviour: a Unix socket listener, 429 after repeated authentication failures with one
// credential, and the Host / Origin checks on a real TCP listener.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from './config.ts';
import { initAirlock } from './runtime.ts';
import { serveAirlock } from './serve.ts';
import { ALICE, startHarness, TEST_PASSPHRASE, TEST_VAULT, usdcTransfer } from './testing/harness.ts';

function overSocket(socketPath: string, path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> {
  return raw({ socketPath }, path, headers);
}

/** A raw HTTP/1.1 request with the headers a browser would send. */
function rawRequest(target: { socketPath: string }, method: string, path: string, headers: Record<string, string>, body?: string): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = request({ ...target, path, method, headers: { ...headers, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) } }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** A raw HTTP/1.1 GET, so the test chooses the Host header a browser would send. */
function raw(target: { socketPath: string } | { host: string; port: number }, path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = request({ ...target, path, method: 'GET', headers }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('the daemon serves the API on a Unix socket when configured', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'airlock-sock-'));
  const config = loadConfig({ dataDir: dir, socketPath: join(dir, 'airlock.sock') }, {});
  const { adminToken } = await initAirlock(config, TEST_PASSPHRASE, TEST_VAULT);
  const server = await serveAirlock(config, TEST_PASSPHRASE, { vault: TEST_VAULT, timers: false });
  try {
    assert.equal(server.url, `unix:${config.socketPath}`);
    assert.ok(statSync(config.socketPath!).isSocket());
    assert.deepEqual((await overSocket(config.socketPath!, '/v1/health')).body, { status: 'ok', store: 'sqlite' });
    const agents = await overSocket(config.socketPath!, '/v1/agents', { authorization: `Bearer ${adminToken}` });
    assert.equal(agents.status, 200);
    assert.deepEqual(agents.body.agents, []);
    // A socket's clients send whatever Host their URL names: not checked without an Origin.
    assert.equal((await overSocket(config.socketPath!, '/v1/agents', { authorization: `Bearer ${adminToken}`, host: 'rebind.evil.example' })).status, 200);
    // A page rebound to a bridge in front of the socket (ssh -L, socat) sends its own name as Host and Origin:
    // not the console's own origin, so it cannot guess the passphrase (using up the unseal limiter the socket's
    // clients share) or reset a share ceremony. The console's own requests under localhost still pass the guard.
    const rebound = { host: 'rebind.evil.example:8420', origin: 'http://rebind.evil.example:8420', 'x-airlock-console': '1' };
    for (const [method, path, body] of [['POST', '/v1/unseal', '{"passphrase":"a-guess-at-it"}'], ['POST', '/v1/unseal/shares/reset', '{}'], ['GET', '/v1/unseal/shares', undefined]] as const) {
      const refused = await rawRequest({ socketPath: config.socketPath! }, method, path, rebound, body);
      assert.deepEqual([refused.status, refused.body.error?.code], [403, 'origin_not_allowed'], `${method} ${path}`);
    }
    const own = await rawRequest({ socketPath: config.socketPath! }, 'GET', '/v1/agents', { host: 'localhost:8420', origin: 'http://localhost:8420', 'x-airlock-console': '1' });
    assert.equal(own.status, 401, 'the console header passes the guard and meets the cookie check');
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('repeated bad tokens for one credential from one client get 429 rate_limited, and nothing is signed', async () => {
  const h = await startHarness();
  try {
    const bad = 'ses_0123456789abcdef.' + 'B'.repeat(43);
    const statuses: number[] = [];
    for (let i = 0; i < 35; i++) statuses.push((await h.call('POST', '/v1/sign/transaction', { token: bad, body: usdcTransfer(ALICE, 1n) })).status);
    assert.deepEqual(statuses.slice(0, 30), Array(30).fill(401));
    const limited = await h.call('POST', '/v1/sign/transaction', { token: bad, body: usdcTransfer(ALICE, 1n) });
    assert.equal(limited.status, 429);
    assert.equal(limited.body.error.code, 'rate_limited');
  } finally {
    await h.close();
  }
});

test('on a TCP listener, a rebinding Host gets 421 host_not_allowed and a foreign Origin 403; the listen address is served', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'airlock-host-'));
  const config = loadConfig({ dataDir: dir, host: '127.0.0.1', port: 0 }, { AIRLOCK_ALLOWED_HOSTS: 'airlock.internal' });
  const { adminToken } = await initAirlock(config, TEST_PASSPHRASE, TEST_VAULT);
  const server = await serveAirlock(config, TEST_PASSPHRASE, { vault: TEST_VAULT, timers: false });
  try {
    const port = Number(new URL(server.url).port);
    const get = (headers: Record<string, string>) => raw({ host: '127.0.0.1', port }, '/v1/agents', { authorization: `Bearer ${adminToken}`, ...headers });
    const rebound = await get({ host: `rebind.evil.example:${port}` });
    assert.equal(rebound.status, 421);
    assert.equal(rebound.body.error.code, 'host_not_allowed');
    const fromPage = await get({ origin: 'https://evil.example' });
    assert.equal(fromPage.status, 403);
    assert.equal(fromPage.body.error.code, 'origin_not_allowed');
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `airlock.internal:${port}`]) assert.equal((await get({ host })).status, 200, host);
    // What the SDK and the CLI send: fetch sets Host from the URL and no Origin.
    assert.equal((await fetch(`${server.url}/v1/agents`, { headers: { authorization: `Bearer ${adminToken}` } })).status, 200);
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

/** A raw POST whose body is written in the given pieces; without `contentLength` it goes out chunked. */
function post(port: number, path: string, pieces: string[], headers: Record<string, string>, contentLength?: number): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'POST', headers: { 'content-type': 'application/json', ...headers, ...(contentLength !== undefined ? { 'content-length': String(contentLength) } : {}) } }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
    });
    req.on('error', reject);
    for (const piece of pieces) req.write(piece);
    req.end();
  });
}

test('over TCP the body is read from the Node request: pieces and chunked bodies parse, and the size limit holds on the bytes', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'airlock-body-'));
  const config = loadConfig({ dataDir: dir, host: '127.0.0.1', port: 0, bodyLimitBytes: 4096 }, {});
  const { adminToken } = await initAirlock(config, TEST_PASSPHRASE, TEST_VAULT);
  const server = await serveAirlock(config, TEST_PASSPHRASE, { vault: TEST_VAULT, timers: false });
  try {
    const port = Number(new URL(server.url).port);
    const admin = { authorization: `Bearer ${adminToken}` };
    const created = JSON.stringify({ names: ['body-bot'] });
    // Written in three pieces, chunked (no Content-Length): the whole JSON arrives.
    const split = await post(port, '/v1/agents', [created.slice(0, 5), created.slice(5, 12), created.slice(12)], admin);
    assert.equal(split.status, 201, JSON.stringify(split.body));
    assert.equal(split.body.agents[0].name, 'body-bot');

    const oversized = JSON.stringify({ names: ['x'.repeat(5000)] });
    const declared = await post(port, '/v1/agents', [oversized], admin, Buffer.byteLength(oversized));
    assert.equal(declared.status, 413);
    assert.equal(declared.body.error.code, 'body_too_large');
    // No Content-Length to refuse up front: the limit is counted on the bytes as they arrive.
    const chunked = await post(port, '/v1/agents', [oversized.slice(0, 3000), oversized.slice(3000)], admin);
    assert.equal(chunked.status, 413);
    assert.equal(chunked.body.error.code, 'body_too_large');
    // Exactly at the limit is read (and refused by the schema, not for its size).
    const atLimit = JSON.stringify({ names: ['y'.repeat(4096 - JSON.stringify({ names: [''] }).length)] });
    assert.equal(Buffer.byteLength(atLimit), 4096);
    const fits = await post(port, '/v1/agents', [atLimit], admin);
    assert.notEqual(fits.body.error?.code, 'body_too_large', JSON.stringify(fits.body));
    // Nothing oversized was created, and the listener still serves.
    const agents = await raw({ host: '127.0.0.1', port }, '/v1/agents', admin);
    assert.deepEqual(agents.body.agents.map((a: { name: string }) => a.name), ['body-bot']);
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
