// What pay_x402 and pay_l402 may reach, how much of an answer they read, and how long HTTP-mode sessions live,
// driven through the official MCP client (in memory, and over Streamable HTTP for the session limits). Found
// by review: both tools fetched any URL the model chose (cloud metadata, loopback, the daemon's own routes)
// with any method, headers and body, and returned the answer; they read bodies without a limit; HTTP mode kept
// every session forever.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { networkInterfaces } from 'node:os';
import { createAirlockMcpServer, createRedactor, createToolContext, readMcpConfig, serveHttp, type McpConfig } from './index.ts';
import { withInMemoryClient, type CallTool } from './testing/in-memory-client.ts';
import { checkTarget, classifyAddress, createOutboundFetch, parsePrivateUrlAllowance, type PrivateUrlAllowance } from './outbound.ts';
import { ToolError } from './results.ts';

const TOKEN = `ses_0123456789abcdef.${'A'.repeat(43)}`;

async function listen(s: Server): Promise<string> {
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  return `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
}
const portOf = (url: string) => new URL(url).port;

describe('pay_x402 / pay_l402: what the model may make the MCP host fetch', () => {
  let airlock: Server;
  let internal: Server;
  let airlockUrl: string;
  let internalUrl: string;
  let airlockSaw: string[] = [];
  let internalSaw: string[] = [];
  let streamed = { written: 0, closed: false };

  before(async () => {
    // Airlock: the session (the x402 signer's address) and no L402 credential held; anything else is recorded.
    airlock = createServer((req, res) => {
      airlockSaw.push(`${req.method} ${req.url}`);
      res.setHeader('content-type', 'application/json');
      if (req.url === '/v1/session') return res.end(JSON.stringify({ agent: { address: '0x9999999999999999999999999999999999999999' } }));
      res.statusCode = 404;
      res.end(JSON.stringify({ error: { code: 'not_found', message: 'not found' } }));
    });
    internal = createServer((req, res) => {
      internalSaw.push(`${req.method} ${req.url}`);
      if (req.url === '/redirect-to-metadata') {
        res.writeHead(302, { location: 'http://169.254.169.254/latest/meta-data/iam' });
        return res.end();
      }
      if (req.url === '/trickle') {
        // A byte every 200 ms, for ever: never idle long enough for the idle limit.
        res.writeHead(200, { 'content-type': 'text/plain' });
        const timer = setInterval(() => res.write('a'), 200);
        res.once('close', () => {
          clearInterval(timer);
          streamed.closed = true;
        });
        return;
      }
      if (req.url === '/endless') {
        // A body that never ends: the tool must stop reading and hang up.
        res.writeHead(200, { 'content-type': 'text/plain' });
        const chunk = Buffer.alloc(64 * 1024, 'a');
        const pump = () => {
          while (!res.destroyed && res.write(chunk)) streamed.written += chunk.length;
          if (!res.destroyed) res.once('drain', pump);
        };
        res.once('close', () => (streamed.closed = true));
        return pump();
      }
      res.setHeader('content-type', 'text/plain');
      res.end(`INTERNAL-ONLY secret config for ${req.method} ${req.url}`);
    });
    airlockUrl = await listen(airlock);
    internalUrl = await listen(internal);
  });
  after(() => {
    for (const s of [airlock, internal]) {
      s.closeAllConnections();
      s.close();
    }
  });

  const withClient = <T>(allowPrivateUrls: PrivateUrlAllowance | undefined, fn: (call: CallTool) => Promise<T>) =>
    withInMemoryClient({ url: airlockUrl, token: TOKEN, rpc: new Map(), ...(allowPrivateUrls ? { allowPrivateUrls } : {}) }, fn);

  test('by default: cloud metadata, loopback by address and by name, the daemon itself, unspecified and mapped addresses are refused (url_not_allowed); nothing is fetched', async () => {
    internalSaw = [];
    airlockSaw = [];
    const port = portOf(internalUrl);
    const targets = [
      'http://169.254.169.254/latest/meta-data/iam/security-credentials/',
      `${internalUrl}/latest/meta-data/iam`,
      `http://localhost:${port}/admin`,
      `http://[::1]:${port}/admin`,
      `http://[::ffff:127.0.0.1]:${port}/admin`,
      // Loopback and metadata wrapped in IPv6 forms that reach IPv4 through a translator or relay.
      `http://[::ffff:0:7f00:1]:${port}/admin`,
      `http://[2002:7f00:1::]:${port}/admin`,
      `http://[64:ff9b::a9fe:a9fe]/latest/meta-data/`,
      `http://[2001:0:4136:e378:8000:63bf:80ff:fffe]:${port}/admin`,
      `http://0.0.0.0:${port}/admin`,
      `http://10.0.0.1:${port}/admin`,
      `${airlockUrl}/v1/unseal/status`,
    ];
    await withClient(undefined, async (call) => {
      for (const tool of ['pay_x402', 'pay_l402']) {
        for (const url of targets) {
          const r = await call(tool, { url, method: 'DELETE', headers: { 'x-h': 'chosen-by-model' } });
          assert.equal(r.isError, true, `${tool} ${url}: ${JSON.stringify(r)}`);
          assert.equal(r.structuredContent.error.code, 'url_not_allowed', `${tool} ${url}: ${JSON.stringify(r.structuredContent)}`);
          assert.ok(!JSON.stringify(r).includes('INTERNAL-ONLY'));
        }
      }
    });
    assert.deepEqual(internalSaw, [], 'the internal server saw no request');
    assert.ok(!airlockSaw.some((line) => line.includes('/v1/unseal')), `the daemon's own routes were not fetched: ${airlockSaw.join(', ')}`);
  });

  test('AIRLOCK_MCP_ALLOW_PRIVATE_URLS=1: loopback and private targets are fetched; the daemon (by its URL or another name for it) and link-local metadata still are not', async () => {
    internalSaw = [];
    airlockSaw = [];
    await withClient({ kind: 'private' }, async (call) => {
      for (const tool of ['pay_x402', 'pay_l402']) {
        const ok = await call(tool, { url: `http://localhost:${portOf(internalUrl)}/data` });
        assert.ok(!ok.isError, JSON.stringify(ok));
        assert.equal(ok.structuredContent.status, 200);
        assert.match(ok.structuredContent.body, /INTERNAL-ONLY secret config for GET \/data/);
        for (const url of [`${airlockUrl}/v1/unseal/status`, `http://localhost:${portOf(airlockUrl)}/v1/unseal/status`, `http://[::ffff:127.0.0.1]:${portOf(airlockUrl)}/v1/unseal/status`, 'http://169.254.169.254/latest/meta-data/']) {
          const r = await call(tool, { url });
          assert.equal(r.structuredContent?.error?.code, 'url_not_allowed', `${tool} ${url}: ${JSON.stringify(r)}`);
        }
      }
    });
    assert.deepEqual(internalSaw, ['GET /data', 'GET /data']);
    assert.ok(!airlockSaw.some((line) => line.includes('/v1/unseal')), airlockSaw.join(', '));
  });

  test('a list of hosts re-allows those hosts only', async () => {
    internalSaw = [];
    await withClient(parsePrivateUrlAllowance('localhost'), async (call) => {
      const ok = await call('pay_x402', { url: `http://localhost:${portOf(internalUrl)}/named` });
      assert.equal(ok.structuredContent.status, 200, JSON.stringify(ok));
      const other = await call('pay_x402', { url: `${internalUrl}/by-address` });
      assert.equal(other.structuredContent.error.code, 'url_not_allowed');
    });
    assert.deepEqual(internalSaw, ['GET /named']);
  });

  test('redirects are not followed: the 3xx comes back with its location, and the target is not fetched', async () => {
    internalSaw = [];
    await withClient({ kind: 'private' }, async (call) => {
      for (const tool of ['pay_x402', 'pay_l402']) {
        const r = await call(tool, { url: `${internalUrl}/redirect-to-metadata` });
        assert.ok(!r.isError, JSON.stringify(r));
        assert.equal(r.structuredContent.status, 302);
        assert.equal(r.structuredContent.location, 'http://169.254.169.254/latest/meta-data/iam');
        assert.equal(r.structuredContent.paid, false);
      }
    });
    assert.deepEqual(internalSaw, ['GET /redirect-to-metadata', 'GET /redirect-to-metadata']);
  });

  test('an endless body: read up to a limit from maxBodyChars, then the connection is dropped; the answer says truncated', async () => {
    for (const tool of ['pay_x402', 'pay_l402']) {
      streamed = { written: 0, closed: false };
      await withClient({ kind: 'private' }, async (call) => {
        const r = await call(tool, { url: `${internalUrl}/endless`, maxBodyChars: 1000 });
        assert.ok(!r.isError, JSON.stringify(r));
        assert.equal(r.structuredContent.status, 200);
        assert.equal(r.structuredContent.truncated, true);
        assert.equal(r.structuredContent.body, 'a'.repeat(1000));
        assert.equal(r.structuredContent.bodyLength, undefined, 'the length of a body not read in full is not known');
      });
      const deadline = Date.now() + 5000;
      while (!streamed.closed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.equal(streamed.closed, true, `${tool}: the server saw the connection closed`);
      assert.ok(streamed.written < 16 * 1024 * 1024, `${tool}: only a bounded part was sent (${streamed.written} bytes)`);
    }
  });

  // Found by review: only an idle limit, so a server trickling a byte now and then held a tool call for ever.
  test('a body trickled slower than the deadline: reading it fails with resource_timeout at the deadline and the connection is dropped', { timeout: 15_000 }, async () => {
    streamed = { written: 0, closed: false };
    const outbound = createOutboundFetch({ daemonUrl: airlockUrl, allow: { kind: 'private' }, idleTimeoutMs: 1000, deadlineMs: 1500 });
    const started = Date.now();
    const response = await outbound(`${internalUrl}/trickle`);
    assert.equal(response.status, 200);
    const err = await response.text().then(
      () => assert.fail('expected the deadline'),
      (e: unknown) => e,
    );
    const elapsed = Date.now() - started;
    assert.ok(err instanceof ToolError, `expected a ToolError, got ${String(err)}`);
    assert.equal(err.code, 'resource_timeout');
    assert.ok(elapsed >= 1400 && elapsed < 5000, `stopped at the deadline (${elapsed} ms)`);
    const until = Date.now() + 3000;
    while (!streamed.closed && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    assert.equal(streamed.closed, true, 'the server saw the connection closed');
  });

  test('the operator setting is read from AIRLOCK_MCP_ALLOW_PRIVATE_URLS; addresses are classified after mapping', () => {
    const env = { AIRLOCK_SESSION: TOKEN };
    assert.deepEqual(readMcpConfig(env).allowPrivateUrls, { kind: 'none' });
    assert.deepEqual(readMcpConfig({ ...env, AIRLOCK_MCP_ALLOW_PRIVATE_URLS: '1' }).allowPrivateUrls, { kind: 'private' });
    assert.deepEqual(readMcpConfig({ ...env, AIRLOCK_MCP_ALLOW_PRIVATE_URLS: 'api.internal, 10.0.0.7:8080' }).allowPrivateUrls, { kind: 'hosts', hosts: new Set(['api.internal', '10.0.0.7:8080']) });
    const table: [string, string][] = [
      ['8.8.8.8', 'public'], ['2606:4700::1111', 'public'],
      ['127.0.0.1', 'private'], ['127.8.9.10', 'private'], ['10.1.2.3', 'private'], ['172.31.0.1', 'private'], ['192.168.1.1', 'private'], ['100.64.0.1', 'private'], ['::1', 'private'], ['fd00::1', 'private'], ['fc12::1', 'private'],
      ['169.254.1.1', 'link-local'], ['fe80::1', 'link-local'],
      // Cloud metadata and credential endpoints, link-local or not.
      ['169.254.169.254', 'metadata'], ['169.254.170.2', 'metadata'], ['fd00:ec2::254', 'metadata'], ['fd00:ec2:0:0:0:0:0:254', 'metadata'], ['fd00:ec2::23', 'metadata'], ['fd20:ce::254', 'metadata'], ['fd00:a9fe:a9fe::1', 'metadata'], ['fd00:ec2::1234', 'metadata'], ['fd00:42::42', 'metadata'], ['169.254.42.42', 'metadata'], ['169.254.0.23', 'metadata'],
      ['100.100.100.200', 'metadata'], ['168.63.129.16', 'metadata'], ['192.0.0.192', 'metadata'], ['::ffff:100.100.100.200', 'metadata'], ['64:ff9b::a83f:8110', 'metadata'],
      ['fd00:ec2::1', 'metadata'], ['fd00:ec3::1', 'private'], ['fd00:a9fe:a9ff::1', 'private'], ['100.100.100.100', 'private'], ['168.63.129.17', 'public'],
      ['0.0.0.0', 'forbidden'], ['::', 'forbidden'], ['224.0.0.1', 'forbidden'], ['255.255.255.255', 'forbidden'], ['ff02::1', 'forbidden'], ['::7f00:1', 'forbidden'],
      ['::ffff:127.0.0.1', 'private'], ['::ffff:7f00:1', 'private'], ['::ffff:a9fe:a9fe', 'metadata'], ['64:ff9b::a00:1', 'private'], ['::ffff:8.8.8.8', 'public'],
      // The same, in every textual form, and the other IPv6 wrappers of an IPv4 address.
      ['0:0:0:0:0:ffff:7f00:1', 'private'], ['::FFFF:7F00:1', 'private'], ['::ffff:0:7f00:1', 'private'], ['::ffff:0:127.0.0.1', 'private'],
      ['0064:ff9b:0000:0000:0000:0000:0a00:0001', 'private'], ['64:ff9b::127.0.0.1', 'private'], ['64:ff9b::8.8.8.8', 'public'],
      ['2002:7f00:1::', 'private'], ['2002:a9fe:a101::1', 'link-local'], ['2002:a9fe:a9fe::1', 'metadata'], ['2002:c0a8:101::1', 'private'], ['2002:808:808::1', 'public'],
      ['64:ff9b:1::a00:1', 'forbidden'], ['2001:0:4136:e378:8000:63bf:80ff:fffe', 'forbidden'], ['100::1', 'forbidden'], ['2001:db8::1', 'forbidden'], ['::0.0.0.2', 'forbidden'],
      ['2001:4860:4860::8888', 'public'], ['2a00:1450:4001::1', 'public'],
    ];
    for (const [address, expected] of table) assert.equal(classifyAddress(address), expected, address);
  });

  // Found by review: with private URLs allowed, AWS's IPv6 IMDS (in fc00::/7) and Alibaba's metadata service (in
  // 100.64/10) were reachable, and Azure's WireServer (public space) always was.
  test('cloud metadata endpoints are refused whatever the operator allows: every private address, or the host by name', async () => {
    const endpoints = ['http://[fd00:ec2::254]/latest/meta-data/', 'http://[fd00:ec2::23]/v1/credentials', 'http://100.100.100.200/latest/meta-data/', 'http://168.63.129.16/machine?comp=goalstate', 'http://169.254.169.254/latest/meta-data/', 'http://169.254.170.2/v2/credentials', 'http://192.0.0.192/opc/v2/instance/', 'http://[::ffff:100.100.100.200]/latest/meta-data/', 'http://[fd20:ce::254]/computeMetadata/v1/', 'http://[fd00:42::42]/conf', 'http://169.254.42.42/conf'];
    for (const url of endpoints) {
      const host = new URL(url).hostname;
      for (const allow of [undefined, { kind: 'private' } as const, parsePrivateUrlAllowance(`${host},${host.replace(/^\[|\]$/g, '')}`)]) {
        await assert.rejects(checkTarget(new URL(url), { daemonUrl: airlockUrl, ...(allow ? { allow } : {}) }), (e: unknown) => e instanceof ToolError && e.code === 'url_not_allowed' && /cloud metadata/.test(e.message), `${url} with ${JSON.stringify(allow)}`);
      }
    }
    // Their neighbours are private addresses as before: re-allowed by the setting.
    for (const url of ['http://[fd00:ec3::1]/', 'http://100.100.100.100/']) assert.ok((await checkTarget(new URL(url), { daemonUrl: airlockUrl, allow: { kind: 'private' } })).length > 0, url);
  });
});

describe('HTTP mode: sessions expire when idle and are limited in number', () => {
  const config: McpConfig = { url: 'http://127.0.0.1:9', token: TOKEN, rpc: new Map() };
  const newServer = () => createAirlockMcpServer(createToolContext(config), createRedactor(config));
  const headers = (session?: string) => ({ 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...(session ? { 'mcp-session-id': session } : {}) });
  const initialize = (url: string) =>
    fetch(url, { method: 'POST', headers: headers(), body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-03-26', capabilities: {}, clientInfo: { name: 't', version: '1' } } }) });
  const listTools = (url: string, session: string) => fetch(url, { method: 'POST', headers: headers(session), body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' }) });

  test('beyond maxSessions an initialize is refused with 503 and a message; idle sessions are closed (404 afterwards) and make room', async () => {
    // Idle after 1 s, and the test polls for the sweeps: the session in use is asked every 100 ms, so only a stall of
    // nearly a second could expire it. With 300 ms and fixed pauses, the two initializes after session a's and one pause
    // took longer than that now and then on a loaded machine (2 failures in 10 runs at a load of 18).
    const IDLE_MS = 1_000;
    const running = await serveHttp(newServer, { host: '127.0.0.1', port: 0, maxSessions: 2, sessionIdleMs: IDLE_MS });
    /** Polls until `done` holds, for at most `ms`. */
    const eventually = async (done: () => boolean, ms: number) => {
      for (const deadline = Date.now() + ms; !done() && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 50));
      return done();
    };
    try {
      const first = await initialize(running.url);
      assert.equal(first.status, 200);
      await first.text();
      const a = first.headers.get('mcp-session-id')!;
      const second = await initialize(running.url);
      await second.text();
      assert.equal(second.status, 200);
      assert.equal(running.sessionCount(), 2);

      const third = await initialize(running.url);
      assert.equal(third.status, 503);
      assert.match(((await third.json()) as any).error.message, /too many MCP sessions \(at most 2\)/);

      // Session a stays in use; the other goes idle and is closed (within the idle time and one sweep after it).
      const closedBy = Date.now() + 3 * IDLE_MS;
      for (let i = 0; running.sessionCount() === 2 && Date.now() < closedBy; i++) {
        await new Promise((r) => setTimeout(r, 100));
        const r = await listTools(running.url, a);
        assert.equal(r.status, 200, `in-use session answered (${i})`);
        await r.text();
      }
      assert.equal(running.sessionCount(), 1, 'the idle session was closed, the used one kept');
      const kept = await listTools(running.url, a);
      assert.equal(kept.status, 200, 'the session in use was kept');
      await kept.text();
      const fourth = await initialize(running.url);
      assert.equal(fourth.status, 200, 'room for a new session');
      await fourth.text();

      assert.ok(await eventually(() => running.sessionCount() === 0, 3 * IDLE_MS), `${running.sessionCount()} session(s) left once both were idle`);
      const gone = await listTools(running.url, a);
      assert.equal(gone.status, 404, 'an expired session is 404: the client starts a new one');
      await gone.text();
    } finally {
      await running.close();
    }
  });

  test('the limits come from AIRLOCK_MCP_MAX_SESSIONS and AIRLOCK_MCP_SESSION_IDLE_SECONDS; bad values are refused', async () => {
    const running = await serveHttp(newServer, { host: '127.0.0.1', port: 0, env: { AIRLOCK_MCP_MAX_SESSIONS: '1', AIRLOCK_MCP_SESSION_IDLE_SECONDS: '60' } });
    try {
      const first = await initialize(running.url);
      await first.text();
      assert.equal(first.status, 200);
      const second = await initialize(running.url);
      assert.equal(second.status, 503);
      assert.equal(second.headers.get('retry-after'), '60');
      await second.text();
    } finally {
      await running.close();
    }
    await assert.rejects(serveHttp(newServer, { host: '127.0.0.1', port: 0, env: { AIRLOCK_MCP_MAX_SESSIONS: '0' } }), /AIRLOCK_MCP_MAX_SESSIONS must be a positive integer/);
  });
});

// The daemon is never a target under any name: an IPv6 spelling of its own address (or of an interface of this
// host, when it listens on every interface) reaches it as surely as the address itself (found by review: the
// daemon check compared addresses as text).
const ownV4 = Object.values(networkInterfaces()).flat().find((i) => i && i.family === 'IPv4' && !i.internal)?.address;
describe('the daemon under an IPv6 spelling of its own address', { skip: ownV4 ? false : 'this host has no non-loopback IPv4 address' }, () => {
  const spellings = (v4: string) => {
    const [a, b, c, d] = v4.split('.').map(Number) as [number, number, number, number];
    const hex = `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
    return [`::ffff:${v4}`, `::ffff:${hex}`, `0:0:0:0:0:ffff:${hex}`, `64:ff9b::${hex}`];
  };
  const daemonOn = async (host: string) => {
    const saw: string[] = [];
    const server = createServer((req, res) => {
      saw.push(req.url ?? '');
      res.end('DAEMON');
    });
    await new Promise<void>((resolve) => server.listen(0, host, () => resolve()));
    return { saw, server, port: (server.address() as AddressInfo).port };
  };

  test('listening on every interface, AIRLOCK_URL on loopback: the host\'s address in any IPv6 spelling is refused', async () => {
    const { saw, server, port } = await daemonOn('0.0.0.0');
    try {
      const fetchOut = createOutboundFetch({ daemonUrl: `http://127.0.0.1:${port}`, allow: { kind: 'none' } });
      for (const spelling of [ownV4!, ...spellings(ownV4!)]) {
        const url = spelling.includes(':') ? `http://[${spelling}]:${port}/v1/unseal/status` : `http://${spelling}:${port}/v1/unseal/status`;
        await assert.rejects(fetchOut(url), (e: unknown) => e instanceof ToolError && e.code === 'url_not_allowed' && /daemon/.test(e.message), url);
      }
      assert.deepEqual(saw, [], 'the daemon was not fetched');
    } finally {
      server.close();
    }
  });

  // Found by review: loopback counted as the daemon only when AIRLOCK_URL itself named loopback.
  test('AIRLOCK_URL naming the host\'s address, listening on every interface, private URLs allowed: loopback on its port is the daemon', async () => {
    const { saw, server, port } = await daemonOn('0.0.0.0');
    try {
      const fetchOut = createOutboundFetch({ daemonUrl: `http://${ownV4}:${port}`, allow: { kind: 'private' } });
      for (const host of ['127.0.0.1', '127.0.0.2', 'localhost', '[::ffff:127.0.0.1]', '[::ffff:7f00:1]']) {
        await assert.rejects(fetchOut(`http://${host}:${port}/v1/unseal/status`), (e: unknown) => e instanceof ToolError && e.code === 'url_not_allowed' && /daemon/.test(e.message), host);
      }
      assert.deepEqual(saw, [], 'the daemon was not fetched');
    } finally {
      server.close();
    }
  });

  test('AIRLOCK_URL naming the host\'s address, private URLs allowed: its IPv6 spellings are still the daemon', async () => {
    const { saw, server, port } = await daemonOn(ownV4!);
    try {
      const fetchOut = createOutboundFetch({ daemonUrl: `http://${ownV4}:${port}`, allow: { kind: 'private' } });
      for (const spelling of spellings(ownV4!)) {
        await assert.rejects(fetchOut(`http://[${spelling}]:${port}/v1/unseal/status`), (e: unknown) => e instanceof ToolError && e.code === 'url_not_allowed', spelling);
      }
      assert.deepEqual(saw, [], 'the daemon was not fetched');
    } finally {
      server.close();
    }
  });
});
