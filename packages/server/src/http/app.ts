import { Hono, type Context, type MiddlewareHandler } from 'hono';
import { AirlockError, parseUntrustedJson, rejectedRequestEntry, type AuditEntryInput } from '@airlock/core';
import { AttemptLimiter } from './attempt-limiter.ts';
import { accessPrincipal, authenticate, type AuthEdge, type Principal } from './auth.ts';
import { browserGuard } from './browser-guard.ts';
import { CONSOLE_PATH, consoleAssets, serveConsole } from './console-assets.ts';
import { ConsoleSessions, type ConsoleSessionOptions } from './console-sessions.ts';
import { clientAddress } from './client-address.ts';
import { drainGuard } from './drain-guard.ts';
import { errorResponse, toAirlockError } from './errors.ts';
import type { AirlockHolder } from './holder.ts';
import { JSON_RPC_PATH, jsonRpcEndpoint, jsonRpcTransportError } from './json-rpc.ts';
import { buildOpenApi } from './openapi.ts';
import { RefusalTally } from './refusal-tally.ts';
import { readBodyBytes } from './request-body.ts';
import { requestObserver, type RequestObserverOptions } from './request-log.ts';
import { buildRoutes } from './routes.ts';
import { SessionAncestry, SessionRateLimiter } from './session-rate-limiter.ts';

/** `/v1/rpc/`: the JSON-RPC endpoint's paths. */
const JSON_RPC_PREFIX = JSON_RPC_PATH.slice(0, JSON_RPC_PATH.indexOf(':'));

export interface AppOptions {
  bodyLimitBytes?: number;
  /** Where unexpected failures are reported (stack only; request bodies are never logged). */
  logInternalError?: (err: AirlockError) => void;
  /** Browser origins whose requests are served (default none: any `Origin` header is refused). */
  allowedOrigins?: readonly string[];
  /** Host names served besides IP literals and `localhost`. Default: none. */
  allowedHosts?: readonly string[];
  /** `browser` for a Unix socket: only requests with an `Origin` must name a served host (browser-guard.ts). */
  hostCheck?: 'all' | 'browser';
  /** Per-session token bucket (default 50/s, burst 100; `perSecond: 0` turns it off). */
  sessionRate?: { perSecond: number; burst: number };
  /** Aggregated refusal counts; the daemon passes its own to flush on a timer and at shutdown. */
  refusals?: RefusalTally;
  /** Request log and metrics (request-log.ts); none by default (in-process tests). */
  observer?: RequestObserverOptions;
  /** Operator console session lifetimes (console-sessions.ts); defaults otherwise. */
  consoleSessions?: ConsoleSessionOptions;
  /** True once the daemon is shutting down: new requests are refused with `503 shutting_down` (serve.ts). */
  draining?: () => boolean;
}

/** Authentication failures allowed per (remote address, credential id) per minute before `429`. */
export const AUTH_FAILURES_PER_MINUTE = 30;

const defaultLog = (err: AirlockError) => {
  const cause = err.cause instanceof Error ? (err.cause.stack ?? err.cause.message) : String(err.cause);
  console.error(`[airlock] internal error: ${cause}`);
};

/**
 * Writes aggregated refusal entries to the audit log of the unsealed runtime. A failed write is reported and
 * dropped: it must not fail the unrelated request that happened to close the window.
 */
export function refusalTallyFor(holder: AirlockHolder, windowMs?: number): RefusalTally {
  const write = async (entry: AuditEntryInput) => {
    if (holder.sealed) return;
    await holder
      .get()
      .audit.append(entry)
      .catch((e: unknown) => console.error(`[airlock] could not write a ${entry.type} audit entry: ${e instanceof Error ? e.message : String(e)}`));
  };
  return new RefusalTally(write, windowMs);
}

/** The HTTP API. Usable in-process (`app.request(...)`) and behind @hono/node-server. */
export function createApp(holder: AirlockHolder, options: AppOptions = {}): Hono {
  const app = new Hono();
  const limit = options.bodyLimitBytes ?? 256 * 1024;
  const edge: AuthEdge = {
    holder,
    failures: new AttemptLimiter(AUTH_FAILURES_PER_MINUTE),
    sessions: new SessionRateLimiter(options.sessionRate ?? { perSecond: 50, burst: 100 }),
    ancestry: new SessionAncestry(),
    refusals: options.refusals ?? refusalTallyFor(holder),
    console: new ConsoleSessions(options.consoleSessions),
    // The runtime's clock once unsealed, so tests with a manual clock control every window.
    now: () => (holder.sealed ? Date.now() : holder.get().deps.clock.now()),
  };
  let openapi: Record<string, unknown> | undefined;
  const routes = buildRoutes(holder, () => (openapi ??= buildOpenApi(routes)), edge);

  const log = options.logInternalError ?? defaultLog;
  app.onError((err, c) => {
    // The JSON-RPC endpoint answers in JSON-RPC, the refusals of the guards in front of it (Host, Origin, shutdown) too.
    if (c.req.path.startsWith(JSON_RPC_PREFIX)) return jsonRpcTransportError(c, toAirlockError(err), log);
    return errorResponse(c, err, log);
  });
  app.notFound((c) => errorResponse(c, new AirlockError('not_found', 'No such endpoint.')));

  if (options.observer) app.use('*', requestObserver(options.observer));
  if (options.draining) app.use('*', drainGuard(options.draining));

  // Every API answer is about now and this caller: no cache keeps it (an authenticated GET in a shared browser's
  // cache), and no browser sniffs it into something else than JSON.
  app.use('/v1/*', async (c, next) => {
    await next();
    if (!c.res.headers.has('cache-control')) c.res.headers.set('cache-control', 'no-store');
    c.res.headers.set('x-content-type-options', 'nosniff');
  });

  app.use(
    '*',
    browserGuard({ allowedOrigins: options.allowedOrigins ?? [], allowedHosts: options.allowedHosts ?? [], ...(options.hostCheck ? { hostCheck: options.hostCheck } : {}) }, (c, code) => {
      edge.refusals.count('auth.failures', clientAddress(c), code, edge.now());
    }),
  );

  for (const r of routes) {
    const route = `${r.method.toUpperCase()} ${r.path}`;
    const auth: MiddlewareHandler = r.auth === 'none' ? (_c, next) => next() : authenticate(edge, r.auth, route, r.rechecksCredentials === true);
    app.on(r.method.toUpperCase(), r.path, auth, async (c) => {
      let body: unknown;
      let query: Record<string, unknown>;
      try {
        body = r.body ? r.body.parse(await readJson(c, limit)) : undefined;
        query = r.query ? r.query.parse(c.req.query()) : {};
      } catch (e) {
        await auditRejection(c, route, e);
        throw e;
      }
      return r.handler(c, { body, query });
    });
  }
  // The operator console (docs/console.md): static files with a strict CSP; it speaks to the routes above.
  consoleAssets();
  app.get(CONSOLE_PATH, serveConsole);
  app.get(`${CONSOLE_PATH}/*`, serveConsole);
  // The Ethereum JSON-RPC signer (json-rpc.ts): one POST whose body names the method, so not in the REST route table.
  app.post(JSON_RPC_PATH, jsonRpcEndpoint({ holder, edge, bodyLimitBytes: limit, logInternalError: log }));
  return app;

  /** An authenticated request refused for its shape is recorded (code and route; never the body). */
  async function auditRejection(c: Context, route: string, e: unknown): Promise<void> {
    const principal = c.get('principal') as Principal | undefined;
    const code = toAirlockError(e).code;
    if (!principal || code === 'internal') return;
    await holder.get().audit.append(rejectedRequestEntry(edge.now(), accessPrincipal(principal), route, code));
  }
}

/**
 * Reads a JSON body with a hard size limit (checked on the bytes, not only the header; request-body.ts), then
 * refuses prototype keys and excess nesting before any route, schema or hash sees it.
 */
async function readJson(c: Context, limit: number): Promise<unknown> {
  const text = (await readBodyBytes(c, limit)).toString('utf8');
  if (!text.trim()) return {};
  return parseUntrustedJson(text);
}
