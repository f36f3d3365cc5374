// `pay_l402` through the official MCP client, as an LLM host drives it: the real `airlock mcp` process over
// stdio, a real Airlock (in process, paying through the simulated Lightning network's backend port) and the
// paid API double of testing/l402-server, which answers as Aperture does with real macaroons. What reached the
// network is read from the network itself. Apart from mcp.test.ts because that one runs on the x402 testbed
// (anvil, facilitator) with an EVM-only session; none of that is needed here.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { decodeBolt11 } from '@airlock/chains';
import { initAirlock, loadConfig, serveAirlock, type RunningServer } from '@airlock/server';
import { createAirlockHttp } from '@airlock/sdk';
// The harness's fast-KDF vault options: test-only, so imported by path rather than from the package.
import { TEST_PASSPHRASE, TEST_VAULT } from '../../server/src/testing/harness.ts';
import { LightningNetwork, SimulatedBackend } from '../../../testing/lightning-network.ts';
import { startL402Server, type L402TestServer } from '../../../testing/l402-server/server.ts';
import { payeeOnlyPolicy } from '../../../testing/lightning-policies.ts';
import { NODE, REPO_ROOT, RUN_TS } from '../../cli/src/testing/cli-process.ts';

const PRICE_SAT = 21n;

interface ToolAnswer {
  isError?: boolean;
  structuredContent?: any;
  content: { type: string; text?: string }[];
}

/**
 * A paid API that echoes the request's Authorization header in its 200 body (as httpbin-style APIs echo headers):
 * a proxy in front of `api` that passes its 402 challenges through unchanged.
 */
async function startEchoingProxy(api: L402TestServer): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    void (async () => {
      // `/moved/...`: the same resource, whose paid answer is a redirect echoing the header in Location and Content-Type.
      const moved = req.url!.startsWith('/moved/');
      const upstream = await fetch(`${api.url}${moved ? req.url!.slice('/moved'.length) : req.url}`, { headers: req.headers.authorization ? { authorization: req.headers.authorization } : {} });
      const text = await upstream.text();
      if (upstream.status !== 200) {
        res.writeHead(upstream.status, Object.fromEntries(upstream.headers)).end(text);
        return;
      }
      if (moved) {
        const auth = req.headers.authorization ?? '';
        res.writeHead(302, { location: `/next?auth=${encodeURIComponent(auth)}`, 'content-type': `text/plain; echo="${auth}"` }).end('moved');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ upstream: JSON.parse(text), youSent: { authorization: req.headers.authorization } }));
    })().catch((e: unknown) => res.writeHead(500).end(String(e)));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

describe('pay_l402 through the official MCP client', () => {
  let ln: LightningNetwork;
  let airlock: RunningServer;
  let dataDir: string;
  let api: L402TestServer;
  let stranger: L402TestServer;
  let echo: { url: string; server: Server };
  let client: Client;
  let mcpStderr = '';
  /** Everything the MCP server sent back and printed, for the secret check. */
  const seen: string[] = [];

  async function call(name: string, args: Record<string, unknown> = {}): Promise<ToolAnswer> {
    const result = (await client.callTool({ name, arguments: args })) as ToolAnswer;
    seen.push(JSON.stringify(result));
    if (result.structuredContent !== undefined) assert.deepEqual(JSON.parse(result.content[0]!.text!), result.structuredContent, `${name}: text and structuredContent agree`);
    return result;
  }

  /** Preimages the network revealed for invoices `server` issued: each is the secret half of a credential. */
  const preimagesOf = (server: L402TestServer): string[] =>
    server.issued.flatMap((c) => {
      const outcome = ln.outcome(c.invoicePaymentHash);
      return outcome?.status === 'succeeded' ? [outcome.preimage] : [];
    });

  before(async () => {
    ln = new LightningNetwork();
    ln.feeBaseMsat = 10n; // within Airlock's default fee limit (1 %, at least 1000 msat)
    dataDir = mkdtempSync(join(tmpdir(), 'airlock-mcp-l402-'));
    const config = loadConfig({ dataDir, host: '127.0.0.1', port: 0 }, {});
    const { adminToken } = await initAirlock(config, TEST_PASSPHRASE, TEST_VAULT);
    airlock = await serveAirlock(config, TEST_PASSPHRASE, { vault: TEST_VAULT, lightningBackend: new SimulatedBackend(ln) });
    const admin = createAirlockHttp({ url: airlock.url, token: adminToken });

    api = await startL402Server({ network: ln, routes: { '/weather': { priceSat: PRICE_SAT, body: { forecast: 'sunny' } } }, service: 'weather' });
    stranger = await startL402Server({ network: ln, routes: { '/weather': { priceSat: PRICE_SAT } }, service: 'weather' });
    echo = await startEchoingProxy(api);
    // The API's node id, read from one challenge's invoice as a payer would.
    await (await fetch(`${api.url}/weather`)).text();
    const payee = decodeBolt11(api.issued[0]!.invoice, { now: Date.now(), network: 'regtest' }).payee;

    const created = await admin.request<{ agents: { name: string }[] }>('POST', '/v1/agents', { names: ['mcp-l402-bot'] });
    const name = created.body.agents[0]!.name;
    await admin.request('PUT', `/v1/policies/${name}`, { document: payeeOnlyPolicy(payee) });
    const issued = await admin.request<{ token: string }>('POST', `/v1/agents/${name}/sessions`, { ttl: '1h', actions: ['lightning.pay'] });

    const transport = new StdioClientTransport({ command: NODE, args: [RUN_TS, 'mcp'], cwd: REPO_ROOT, env: { AIRLOCK_URL: airlock.url, AIRLOCK_SESSION: issued.body.token, AIRLOCK_MCP_ALLOW_PRIVATE_URLS: '1' }, stderr: 'pipe' });
    transport.stderr?.on('data', (d: Buffer) => (mcpStderr += d));
    client = new Client({ name: 'airlock-mcp-l402-test', version: '1.0.0' });
    await client.connect(transport);
  });
  after(async () => {
    await client?.close();
    echo?.server.close();
    await Promise.all([api?.close(), stranger?.close()]);
    await airlock?.close().catch(() => {});
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  test('pay_l402 is listed with a description and its input schema', async () => {
    const { tools } = await client.listTools();
    const tool = tools.find((t) => t.name === 'pay_l402');
    assert.ok(tool, 'pay_l402 is listed');
    assert.match(tool.description!, /Lightning/);
    assert.deepEqual(tool.inputSchema.required, ['url']);
    assert.equal(tool.annotations?.destructiveHint, true);
  });

  test('a paid L402 resource: Airlock pays the invoice once and the resource comes back with what it cost', async () => {
    const attempts = ln.attempts.length;
    const r = await call('pay_l402', { url: `${api.url}/weather` });
    assert.ok(!r.isError, JSON.stringify(r));
    assert.equal(r.structuredContent.status, 200);
    assert.deepEqual(JSON.parse(r.structuredContent.body), { forecast: 'sunny' });
    assert.equal(r.structuredContent.paid, true);
    const priceMsat = PRICE_SAT * 1000n;
    assert.equal(r.structuredContent.payment.amountMsat, priceMsat.toString());
    assert.equal(r.structuredContent.payment.feeMsat, ln.feeFor(priceMsat).toString(), 'the fee the network charged');
    assert.match(r.structuredContent.payment.paymentId, /./);
    assert.equal(ln.attempts.length, attempts + 1, 'one payment reached the network');
    assert.equal(preimagesOf(api).length, 1, 'the API was paid');
    assert.equal(api.stats.paidRequests, 1);
  });

  test('a second call reuses the credential: 200, nothing paid', async () => {
    const attempts = ln.attempts.length;
    const r = await call('pay_l402', { url: `${api.url}/weather` });
    assert.ok(!r.isError, JSON.stringify(r));
    assert.equal(r.structuredContent.status, 200);
    assert.equal(r.structuredContent.paid, false);
    assert.equal(r.structuredContent.payment, null);
    assert.equal(ln.attempts.length, attempts, 'no payment reached the network');
    assert.equal(api.stats.paidRequests, 2);
    assert.equal(api.stats.distinctTokens, 1, 'the same token served both');
  });

  test('a payee outside the policy: a tool error naming the rule, nothing paid', async () => {
    const attempts = ln.attempts.length;
    const r = await call('pay_l402', { url: `${stranger.url}/weather` });
    assert.equal(r.isError, true);
    assert.equal(r.structuredContent.error.code, 'policy_denied');
    assert.ok(r.structuredContent.error.violations.some((v: any) => v.rule === 'agent/only-apis' && v.code === 'destination_not_allowed'), JSON.stringify(r.structuredContent));
    assert.equal(ln.attempts.length, attempts, 'no payment reached the network');
    assert.deepEqual(preimagesOf(stranger), []);
  });

  test('an API that echoes the Authorization header: the credential\'s preimage is cut from the body', async () => {
    const r = await call('pay_l402', { url: `${echo.url}/weather` });
    assert.ok(!r.isError, JSON.stringify(r));
    assert.equal(r.structuredContent.status, 200);
    const echoed = JSON.parse(r.structuredContent.body);
    assert.deepEqual(echoed.upstream, { forecast: 'sunny' }, 'the API accepted the credential');
    assert.match(echoed.youSent.authorization, /^L402 \S+:\[l402 preimage\]$/, 'the credential reached the API, its secret half cut here');
  });

  // Found by review: only the body went through the redaction.
  test('an API that echoes the credential in Location and Content-Type: the preimage is cut from those too', async () => {
    const r = await call('pay_l402', { url: `${echo.url}/moved/weather` });
    assert.ok(!r.isError, JSON.stringify(r));
    assert.equal(r.structuredContent.status, 302);
    const location = new URL(r.structuredContent.location);
    assert.equal(location.pathname, '/next');
    assert.match(location.searchParams.get('auth')!, /^L402 \S+:\[l402 preimage\]$/, 'the credential reached the API; its secret half is cut from the Location');
    assert.match(r.structuredContent.contentType, /^text\/plain; echo="L402 \S+:\[l402 preimage\]"$/);
  });

  test('no tool result or log line carries a preimage', () => {
    seen.push(mcpStderr);
    const preimages = [...preimagesOf(api), ...preimagesOf(stranger)];
    assert.ok(preimages.length >= 2, 'the check covers the payments made');
    for (const text of seen) for (const preimage of preimages) assert.ok(!text.includes(preimage), 'a preimage leaked');
  });
});
