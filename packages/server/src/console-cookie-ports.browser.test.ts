// Cookies are scoped to a host, not a port (RFC 6265 section 8.5): the browser sends the console's session
// cookie to every server on the console's host. Here, in Chromium, a server on another port of 127.0.0.1 (an
// agent's, say) gets the cookie through a page any site can send the operator to, and replays it from outside
// the browser with every header the console sends forged. Before the session's proof (console-sessions.ts) that
// replay was the operator: it approved a held payment and rewrote the agent's policy (found by review). Now it
// is refused, nothing changes, and the console itself, which holds the proof in its own origin's sessionStorage,
// keeps working.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { loadConfig } from './config.ts';
import { initAirlock } from './runtime.ts';
import { serveAirlock, type RunningServer } from './serve.ts';
import { ALICE, MALLORY, TEST_PASSPHRASE, TEST_VAULT, usdcPolicy, usdcTransfer } from './testing/harness.ts';
import { CHROMIUM, chromiumSkip, jsonApi, logInThroughForm } from './testing/browser.ts';

const skip = chromiumSkip;

describe('the console cookie on another port of the console\'s host (Chromium)', { skip }, () => {
  let dir: string;
  let server: RunningServer;
  let adminToken: string;
  let browser: Browser;
  let sibling: Server;
  let siblingPort = 0;
  const seen: { path: string; cookie?: string }[] = [];
  const api = jsonApi(() => server.url);

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'airlock-console-ports-'));
    const config = loadConfig({ dataDir: join(dir, 'data'), host: '127.0.0.1', port: 0 }, {});
    adminToken = (await initAirlock(config, TEST_PASSPHRASE, TEST_VAULT)).adminToken;
    server = await serveAirlock(config, TEST_PASSPHRASE, { vault: TEST_VAULT, timers: false });
    // The other server on the host: logs what the browser sends it, and serves a page that fetches itself.
    sibling = createServer((req, res) => {
      seen.push({ path: req.url ?? '', ...(req.headers.cookie ? { cookie: req.headers.cookie } : {}) });
      if (req.url === '/start') return res.writeHead(200, { 'content-type': 'text/html' }).end(`<script>location.href='http://127.0.0.1:${siblingPort}/land'</script>`);
      if (req.url === '/land') return res.writeHead(200, { 'content-type': 'text/html' }).end(`<script>fetch('/collect')</script>landed`);
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    });
    await new Promise<void>((resolve) => sibling.listen(0, '127.0.0.1', () => resolve()));
    siblingPort = (sibling.address() as { port: number }).port;
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  });
  after(async () => {
    await browser?.close();
    sibling?.close();
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('the cookie reaches the other port, but replayed with every console header forged it approves nothing and changes no policy', async () => {
    assert.equal((await api('POST', '/v1/agents', { token: adminToken, body: { names: ['payments-bot'] } })).status, 201);
    assert.equal((await api('PUT', '/v1/policies/payments-bot', { token: adminToken, body: { document: usdcPolicy({ daily: '400000000', approvalAbove: '50000000' }) } })).status, 200);
    const agentToken = (await api('POST', '/v1/agents/payments-bot/sessions', { token: adminToken, body: { ttl: '1h', actions: ['evm.transaction'] } })).body.token;
    const held = await api('POST', '/v1/sign/transaction', { token: agentToken, body: usdcTransfer(ALICE, 90_000_000n, 0) });
    assert.equal(held.status, 202, JSON.stringify(held.body));

    const context = await browser.newContext();
    const page = await context.newPage();
    await logInThroughForm(page, server.url, adminToken);

    // Any site can send the operator to the other port (localhost is another site than 127.0.0.1); that page's
    // request to itself is same-site and carries the cookie.
    const other = await context.newPage();
    await other.goto(`http://localhost:${siblingPort}/start`);
    await other.waitForURL(`http://127.0.0.1:${siblingPort}/land`);
    await other.getByText('landed').waitFor();
    const deadline = Date.now() + 5000;
    while (!seen.some((s) => s.path === '/collect') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const stolen = seen.map((s) => /airlock_console=(cs_[A-Za-z0-9_-]{43})/.exec(s.cookie ?? '')?.[1]).find(Boolean);
    assert.ok(stolen, `the browser sent the console cookie to the other port (what it saw: ${JSON.stringify(seen.map((s) => s.path))})`);

    // Outside the browser, every header the console sends is the attacker's to set; only the proof is missing.
    const forged = { cookie: `airlock_console=${stolen}`, 'x-airlock-console': '1', origin: server.url, 'sec-fetch-site': 'same-origin' };
    const approve = await api('POST', `/v1/approvals/${held.body.approvalId}/approve`, { headers: forged });
    assert.deepEqual([approve.status, approve.body.error?.code], [401, 'unauthenticated'], JSON.stringify(approve.body));
    const policy = await api('PUT', '/v1/policies/payments-bot', { headers: forged, body: { document: { ...usdcPolicy({ perRequest: '999999999999', daily: '999999999999' }), sets: { partners: [ALICE, MALLORY] } } } });
    assert.deepEqual([policy.status, policy.body.error?.code], [401, 'unauthenticated']);
    assert.equal((await api('GET', '/v1/agents', { headers: forged })).status, 401);

    // Nothing changed: the approval is pending, the policy the operator set holds.
    assert.equal((await api('GET', `/v1/approvals/${held.body.approvalId}`, { token: adminToken })).body.state, 'pending');
    const drain = await api('POST', '/v1/sign/transaction', { token: agentToken, body: usdcTransfer(MALLORY, 5_000_000_000n, 1) });
    assert.equal(drain.status, 403, JSON.stringify(drain.body));

    // The console, with its proof, is still the operator: it approves the held payment.
    await page.goto(`${server.url}/console/#/approvals`);
    await page.getByRole('button', { name: 'Approve', exact: true }).click();
    await page.getByRole('button', { name: 'Confirm approve' }).click();
    await page.getByRole('status').filter({ hasText: 'Approved' }).waitFor();
    assert.equal((await api('GET', `/v1/approvals/${held.body.approvalId}`, { token: adminToken })).body.state, 'approved');
    await context.close();
  });
});
