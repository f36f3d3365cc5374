// Streamable HTTP (MCP 2025-03-26 and later): POST /mcp carries requests, GET /mcp a server-to-client stream,
// DELETE /mcp ends a session. One McpServer per MCP session, all sharing the Airlock session this process holds.
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';

export const MCP_PATH = '/mcp';
const MAX_BODY_BYTES = 1_048_576;

export interface RunningMcpHttp {
  url: string;
  close(): Promise<void>;
}

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

/**
 * Whoever reaches this endpoint acts as the agent, so it listens on loopback by default and, like Airlock
 * itself, refuses browsers: a web page could otherwise POST to localhost (any `Origin` header is refused), or
 * reach it through DNS rebinding (a `Host` other than a loopback name is refused when bound to loopback).
 */
function refusal(req: IncomingMessage, loopbackOnly: boolean): string | undefined {
  if (req.headers.origin !== undefined) return 'browser requests (an Origin header) are not accepted';
  const host = (req.headers.host ?? '').replace(/:\d+$/, '');
  if (loopbackOnly && !LOOPBACK_HOSTS.has(host)) return 'the Host header must name a loopback address';
  return undefined;
}

function jsonRpcError(res: ServerResponse, status: number, message: string): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32000, message }, id: null }));
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new Error('body too large');
    chunks.push(chunk as Buffer);
  }
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

export async function serveHttp(newServer: () => McpServer, opts: { host: string; port: number }): Promise<RunningMcpHttp> {
  const sessions = new Map<string, StreamableHTTPServerTransport>();
  const loopbackOnly = LOOPBACK_HOSTS.has(opts.host) || opts.host === '::1';

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== MCP_PATH) return jsonRpcError(res, 404, `not found: the MCP endpoint is ${MCP_PATH}`);
    const refused = refusal(req, loopbackOnly);
    if (refused) return jsonRpcError(res, 403, refused);
    const sessionId = req.headers['mcp-session-id'];
    const existing = typeof sessionId === 'string' ? sessions.get(sessionId) : undefined;
    if (req.method !== 'POST') {
      if (!existing) return jsonRpcError(res, 400, 'missing or unknown mcp-session-id');
      return existing.handleRequest(req, res);
    }
    let body: unknown;
    try {
      body = await readJson(req);
    } catch {
      return jsonRpcError(res, 400, 'the body is not JSON (or is over 1 MiB)');
    }
    if (existing) return existing.handleRequest(req, res, body);
    if (sessionId !== undefined || !isInitializeRequest(body)) return jsonRpcError(res, 400, 'missing or unknown mcp-session-id (start with an initialize request)');
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => void sessions.set(id, transport),
    });
    transport.onclose = () => {
      if (transport.sessionId) sessions.delete(transport.sessionId);
    };
    await newServer().connect(transport);
    await transport.handleRequest(req, res, body);
  };

  const http: Server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) jsonRpcError(res, 500, 'internal error');
      else res.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(opts.port, opts.host, () => resolve());
  });
  const { port } = http.address() as AddressInfo;
  const hostForUrl = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  return {
    url: `http://${hostForUrl}:${port}${MCP_PATH}`,
    async close() {
      for (const transport of sessions.values()) await transport.close().catch(() => {});
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}
