// Streamable HTTP (MCP 2025-03-26 and later): POST /mcp carries requests, GET /mcp a server-to-client stream,
// DELETE /mcp ends a session. One McpServer per MCP session, all sharing the Airlock session this process holds.
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { BlockList, isIP, type AddressInfo } from 'node:net';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { McpConfigError } from './config.ts';

export const MCP_PATH = '/mcp';
const MAX_BODY_BYTES = 1_048_576;

/** An MCP session nobody used for this long is closed (its McpServer and transport freed). */
export const DEFAULT_SESSION_IDLE_SECONDS = 1800;
/** At most this many MCP sessions at once; an initialize beyond it is refused (503). */
export const DEFAULT_MAX_SESSIONS = 32;
export const SESSION_IDLE_ENV = 'AIRLOCK_MCP_SESSION_IDLE_SECONDS';
export const MAX_SESSIONS_ENV = 'AIRLOCK_MCP_MAX_SESSIONS';

export interface ServeHttpOptions {
  host: string;
  port: number;
  /** Idle time after which a session is closed. Default: $AIRLOCK_MCP_SESSION_IDLE_SECONDS, else 30 minutes. */
  sessionIdleMs?: number;
  /** Sessions open at once. Default: $AIRLOCK_MCP_MAX_SESSIONS, else 32. */
  maxSessions?: number;
  /** Where the defaults are read from. Default process.env. */
  env?: NodeJS.ProcessEnv;
}

export interface RunningMcpHttp {
  url: string;
  /** Open MCP sessions (for tests and status). */
  sessionCount(): number;
  close(): Promise<void>;
}

function positiveInteger(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new McpConfigError(`${name} must be a positive integer.`);
  return n;
}

interface Session {
  transport: StreamableHTTPServerTransport;
  server: McpServer;
  lastActive: number;
  /** Requests (and open GET streams) being served: a session with one is never idle. */
  inFlight: number;
}

/**
 * Loopback by address class, in any spelling: 127.0.0.0/8 and ::1, and IPv4-mapped 127/8 (::ffff:127.0.0.0/104,
 * which BlockList checks against the IPv4 rule). A fixed list of bind addresses left the Host check off for
 * 127.0.0.2 or ::ffff:127.0.0.1 (found by review).
 */
const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

function isLoopbackAddress(address: string): boolean {
  const family = isIP(address);
  return family !== 0 && LOOPBACK.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

/**
 * A Host header that names loopback: `localhost` or a loopback address (`[…]` for IPv6), with or without a port.
 * A DNS-rebinding page's Host is its own host name, never an address literal.
 */
function isLoopbackHost(host: string): boolean {
  const name = host.toLowerCase().replace(/:\d+$/, '');
  return name === 'localhost' || isLoopbackAddress(name.replace(/^\[(.*)\]$/, '$1'));
}

/**
 * Whoever reaches this endpoint acts as the agent, so it listens on loopback by default and, like Airlock
 * itself, refuses browsers: a web page could otherwise POST to localhost (any `Origin` header is refused), or
 * reach it through DNS rebinding (a `Host` other than a loopback name is refused when bound to loopback).
 */
function refusal(req: IncomingMessage, loopbackOnly: boolean): string | undefined {
  if (req.headers.origin !== undefined) return 'browser requests (an Origin header) are not accepted';
  if (loopbackOnly && !isLoopbackHost(req.headers.host ?? '')) return 'the Host header must name a loopback address';
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

export async function serveHttp(newServer: () => McpServer, opts: ServeHttpOptions): Promise<RunningMcpHttp> {
  const env = opts.env ?? process.env;
  const idleMs = opts.sessionIdleMs ?? positiveInteger(env, SESSION_IDLE_ENV, DEFAULT_SESSION_IDLE_SECONDS) * 1000;
  const maxSessions = opts.maxSessions ?? positiveInteger(env, MAX_SESSIONS_ENV, DEFAULT_MAX_SESSIONS);
  const sessions = new Map<string, Session>();
  /** Initializations under way: they count against the limit before they have a session id. */
  let starting = 0;
  // Decided from the address actually bound (a name such as `localhost` is resolved by listen); until then, checked.
  let loopbackOnly = true;

  const closeSession = async (session: Session): Promise<void> => {
    if (session.transport.sessionId) sessions.delete(session.transport.sessionId);
    await session.server.close().catch(() => {});
  };
  const sweep = () => {
    const now = Date.now();
    for (const session of sessions.values()) if (session.inFlight === 0 && now - session.lastActive >= idleMs) void closeSession(session);
  };
  const sweeper = setInterval(sweep, Math.max(10, Math.min(idleMs / 2, 60_000)));
  sweeper.unref();

  /** Marks `session` busy until `res` is done (a GET stream stays open as long as the client listens). */
  const serving = (session: Session, res: ServerResponse): void => {
    session.inFlight++;
    session.lastActive = Date.now();
    res.once('close', () => {
      session.inFlight--;
      session.lastActive = Date.now();
    });
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== MCP_PATH) return jsonRpcError(res, 404, `not found: the MCP endpoint is ${MCP_PATH}`);
    const refused = refusal(req, loopbackOnly);
    if (refused) return jsonRpcError(res, 403, refused);
    const sessionId = req.headers['mcp-session-id'];
    const existing = typeof sessionId === 'string' ? sessions.get(sessionId) : undefined;
    // An unknown (ended or expired) session is 404: the client then starts a new one (MCP Streamable HTTP).
    if (sessionId !== undefined && !existing) return jsonRpcError(res, 404, 'unknown mcp-session-id (the session ended or expired): start a new one with an initialize request');
    if (existing) serving(existing, res);
    if (req.method !== 'POST') {
      if (!existing) return jsonRpcError(res, 400, 'missing mcp-session-id');
      return existing.transport.handleRequest(req, res);
    }
    let body: unknown;
    try {
      body = await readJson(req);
    } catch {
      return jsonRpcError(res, 400, 'the body is not JSON (or is over 1 MiB)');
    }
    if (existing) return existing.transport.handleRequest(req, res, body);
    if (!isInitializeRequest(body)) return jsonRpcError(res, 400, 'missing mcp-session-id (start with an initialize request)');
    if (sessions.size + starting >= maxSessions) {
      res.setHeader('retry-after', String(Math.ceil(idleMs / 1000)));
      return jsonRpcError(res, 503, `too many MCP sessions (at most ${maxSessions}): end one (DELETE ${MCP_PATH} with its mcp-session-id) or wait until an idle one expires (after ${Math.ceil(idleMs / 1000)} s idle)`);
    }
    starting++;
    try {
      const server = newServer();
      const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: (id) => {
          const session: Session = { transport, server, lastActive: Date.now(), inFlight: 0 };
          sessions.set(id, session);
          serving(session, res);
        },
      });
      transport.onclose = () => {
        if (transport.sessionId) sessions.delete(transport.sessionId);
      };
      await server.connect(transport);
      await transport.handleRequest(req, res, body);
    } finally {
      starting--;
    }
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
  const { port, address } = http.address() as AddressInfo;
  loopbackOnly = isLoopbackAddress(address);
  const hostForUrl = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  return {
    url: `http://${hostForUrl}:${port}${MCP_PATH}`,
    sessionCount: () => sessions.size,
    async close() {
      clearInterval(sweeper);
      for (const session of [...sessions.values()]) await closeSession(session);
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}
