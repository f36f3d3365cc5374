// The HTTP transport's DNS-rebinding guard: bound to loopback, a request whose Host is not a loopback name is
// refused. Loopback is decided by the address bound, by class (found by review: a fixed list of bind addresses
// left the check off for 127.0.0.2 and ::ffff:127.0.0.1).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { serveHttp } from './index.ts';

const INITIALIZE = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-03-26', capabilities: {}, clientInfo: { name: 't', version: '1' } } });

/** POSTs an initialize to `url` with the given Host header; the status and body. */
function initializeWithHost(url: string, host: string): Promise<{ status: number; body: string }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request(
      { hostname: u.hostname.replace(/^\[|\]$/g, ''), port: u.port, path: u.pathname, method: 'POST', headers: { host, 'content-type': 'application/json', accept: 'application/json, text/event-stream' } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      },
    );
    req.on('error', reject);
    req.end(INITIALIZE);
  });
}

const newServer = () => new McpServer({ name: 's', version: '1' });

test('bound to any loopback address (127/8, ::1, IPv4-mapped, by name): a rebinding Host is 403; the server\'s own URL works', async () => {
  for (const bind of ['127.0.0.1', '127.0.0.2', '::ffff:127.0.0.1', '::1', 'localhost']) {
    const running = await serveHttp(newServer, { host: bind, port: 0, env: {} });
    try {
      for (const host of ['attacker.example', 'attacker.example:80', '127.0.0.1.attacker.example']) {
        const refused = await initializeWithHost(running.url, host);
        assert.equal(refused.status, 403, `bind ${bind}, Host ${host}`);
        assert.match(refused.body, /the Host header must name a loopback address/);
      }
      assert.equal(running.sessionCount(), 0, `bind ${bind}: no session was opened`);
      // The URL it prints (its Host is the bind address), and loopback names, are accepted.
      const client = new Client({ name: 't', version: '1' });
      await client.connect(new StreamableHTTPClientTransport(new URL(running.url)));
      assert.equal(client.getServerVersion()?.name, 's', `bind ${bind}: its own URL`);
      await client.close();
      const port = new URL(running.url).port;
      for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`]) {
        assert.equal((await initializeWithHost(running.url, host)).status, 200, `bind ${bind}, Host ${host}`);
      }
    } finally {
      await running.close();
    }
  }
});

test('bound to the unspecified address, the Host is not checked (the docs say: put it behind something that authenticates)', async () => {
  const running = await serveHttp(newServer, { host: '0.0.0.0', port: 0, env: {} });
  try {
    assert.equal((await initializeWithHost(running.url.replace('0.0.0.0', '127.0.0.1'), 'mcp.example')).status, 200);
  } finally {
    await running.close();
  }
});
