import { randomFillSync } from 'node:crypto';
import type { Context, MiddlewareHandler } from 'hono';
import { AirlockError } from '@airlock/core';
import type { Principal } from './auth.ts';
import type { AirlockMetrics, DecisionLabels } from './metrics.ts';

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/**
 * One JSON object per line. Callers pass fields, never request bodies, headers or credentials: the request
 * line below is built from an allow-list (route pattern, agent name, decision, status, latency).
 */
export interface Logger {
  readonly level: LogLevel;
  log(level: Exclude<LogLevel, 'silent'>, msg: string, fields?: Record<string, unknown>): void;
}

export function parseLogLevel(value: string | undefined): LogLevel {
  const level = (value ?? '').trim().toLowerCase() || 'info';
  if (!(LOG_LEVELS as readonly string[]).includes(level)) throw new AirlockError('invalid_request', `AIRLOCK_LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}.`);
  return level as LogLevel;
}

export function createLogger(level: LogLevel, write: (line: string) => void = (line) => process.stdout.write(`${line}\n`)): Logger {
  const threshold = LOG_LEVELS.indexOf(level);
  return {
    level,
    log(at, msg, fields = {}) {
      if (LOG_LEVELS.indexOf(at) < threshold) return;
      write(JSON.stringify({ time: new Date().toISOString(), level: at, msg, ...fields }));
    },
  };
}

/** A client's own request id is kept only if it is short and plain; anything else gets a fresh one. */
const CLIENT_REQUEST_ID = /^[A-Za-z0-9._:-]{1,64}$/;

export const REQUEST_ID_HEADER = 'x-request-id';

// Fresh ids come from a pool of random bytes refilled 256 ids at a time: one call into the system's random
// source per request was about 1% of a signature's CPU. An id is a label, not a secret.
const ID_BYTES = 8;
const idPool = Buffer.alloc(ID_BYTES * 256);
let idAt = idPool.length;

/** 16 random hex digits. */
export function freshRequestId(): string {
  if (idAt === idPool.length) {
    randomFillSync(idPool);
    idAt = 0;
  }
  idAt += ID_BYTES;
  return idPool.toString('hex', idAt - ID_BYTES, idAt);
}

export interface RequestObserverOptions {
  logger?: Logger;
  metrics?: AirlockMetrics;
}

/**
 * First middleware of the app: gives every request an id (echoed as `X-Request-Id`), then after the answer
 * writes one log line and feeds the metrics, all from memory. The decision is taken from the JSON object
 * the handler (or the error handler) answered with, captured as it is handed to `c.json`: no body is read
 * back, re-parsed or logged.
 */
export function requestObserver(options: RequestObserverOptions): MiddlewareHandler {
  const { logger, metrics } = options;
  return async (c, next) => {
    const started = performance.now();
    const given = c.req.header(REQUEST_ID_HEADER);
    const requestId = given && CLIENT_REQUEST_ID.test(given) ? given : freshRequestId();
    c.header(REQUEST_ID_HEADER, requestId);
    let answered: unknown;
    const json = c.json;
    c.json = ((object: unknown, ...rest: unknown[]) => {
      answered = object;
      return (json as (...args: unknown[]) => Response)(object, ...rest);
    }) as typeof c.json;
    metrics?.inFlight.inc();
    try {
      await next();
    } finally {
      metrics?.inFlight.dec();
    }
    const seconds = (performance.now() - started) / 1000;
    const route = routePattern(c);
    const status = c.res.status;
    const decision = decisionOf(answered);
    const errorCode = errorCodeOf(answered);
    metrics?.observeRequest(c.req.method, route, status, seconds, decision, errorCode);
    if (!logger) return;
    const principal = c.get('principal') as Principal | undefined;
    logger.log(status >= 500 ? 'error' : 'info', 'request', {
      requestId,
      method: c.req.method,
      route,
      status,
      latencyMs: Math.round(seconds * 1e6) / 1e3,
      ...(principal ? { principal: principal.kind, ...(principal.kind === 'agent' ? { agent: principal.auth.agent.name } : {}) } : {}),
      ...(decision ? { decision: decision.outcome, ...(decision.rule ? { rule: decision.rule, code: decision.code } : {}) } : {}),
      ...(errorCode && !decision ? { error: errorCode } : {}),
    });
  };
}

/** The registered path (`/v1/agents/:id`), never the raw one: bounded metric labels, no ids in logs. */
function routePattern(c: Context): string {
  const matched = c.req.matchedRoutes.filter((r) => r.method !== 'ALL');
  return matched.at(-1)?.path ?? 'unmatched';
}

type Answer = { decision?: unknown; violations?: { rule?: string; code?: string }[]; error?: { code?: unknown; violations?: { rule?: string; code?: string }[] } };

/** A signing outcome, from the body of a sign or x402 pay answer (deny bodies name their violations). */
function decisionOf(answered: unknown): DecisionLabels | undefined {
  if (typeof answered !== 'object' || answered === null) return undefined;
  const a = answered as Answer;
  const outcome = a.decision ?? (a.error?.code === 'policy_denied' ? 'deny' : undefined);
  if (outcome !== 'allow' && outcome !== 'deny' && outcome !== 'require_approval') return undefined;
  const first = outcome === 'allow' ? undefined : (a.error?.violations ?? a.violations)?.[0];
  return { outcome, rule: first?.rule ?? '', code: first?.code ?? '' };
}

function errorCodeOf(answered: unknown): string | undefined {
  const code = (answered as Answer | undefined)?.error?.code;
  return typeof code === 'string' ? code : undefined;
}
