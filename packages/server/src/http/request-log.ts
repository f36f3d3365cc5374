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
  /** Lines dropped since start because the reader had stopped taking them (createLogger; metrics). */
  droppedLines(): number;
}

/** Bytes of log lines that may wait for a reader that has stopped taking them (AIRLOCK_LOG_QUEUE). */
export const DEFAULT_LOG_QUEUE_BYTES = 8 * 1024 * 1024;
/** The smallest queue allowed: above a stream's default high-water mark (16 KiB), so a full queue always ends in 'drain'. */
export const MIN_LOG_QUEUE_BYTES = 64 * 1024;

/** Where lines go: process.stdout, process.stderr, or any Writable. */
export type LineStream = Pick<NodeJS.WritableStream, 'write' | 'once' | 'on'> & { readonly writableLength: number };

export function parseLogLevel(value: string | undefined): LogLevel {
  const level = (value ?? '').trim().toLowerCase() || 'info';
  if (!(LOG_LEVELS as readonly string[]).includes(level)) throw new AirlockError('invalid_request', `AIRLOCK_LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}.`);
  return level as LogLevel;
}

/**
 * A logger writing to `stream` (stdout by default). Writing never waits: to a pipe, lines the reader has not
 * taken yet queue in memory, up to `queueBytes`. Past that, lines are dropped and counted, not queued, so a log
 * shipper that stops reading cannot make the signer run out of memory; once the reader has caught up (the
 * stream's 'drain'), one error line says how many were lost and since when. The count since start is
 * `droppedLines()` (airlock_log_lines_dropped_total).
 *
 * A reader that goes away for good (the pipe closed: EPIPE) would otherwise be an unhandled 'error' that stops
 * the daemon in the middle of its requests. The logger takes the error instead: every later line is dropped and
 * counted, and one line on stderr (through console.error, which ignores a broken stderr in turn) says so.
 */
export function createLogger(level: LogLevel, stream: LineStream = process.stdout, queueBytes = DEFAULT_LOG_QUEUE_BYTES): Logger {
  if (!(queueBytes >= MIN_LOG_QUEUE_BYTES)) throw new AirlockError('invalid_request', `the log queue must be at least ${MIN_LOG_QUEUE_BYTES} bytes`);
  const threshold = LOG_LEVELS.indexOf(level);
  const lineOf = (at: string, msg: string, fields: Record<string, unknown>) => `${JSON.stringify({ time: new Date().toISOString(), level: at, msg, ...fields })}\n`;
  let droppedSinceStart = 0;
  let droppedInStall = 0;
  let stalledSince = '';
  let broken = false;
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (broken) return;
    broken = true;
    if (stream !== process.stderr) console.error(lineOf('error', 'log output failed', { code: e.code ?? 'unknown', next: 'log lines are dropped and counted in airlock_log_lines_dropped_total' }).trimEnd());
  });
  return {
    level,
    log(at, msg, fields = {}) {
      if (LOG_LEVELS.indexOf(at) < threshold) return;
      if (broken) {
        droppedSinceStart++;
        return;
      }
      if (stream.writableLength < queueBytes) {
        stream.write(lineOf(at, msg, fields));
        return;
      }
      droppedSinceStart++;
      if (droppedInStall++ > 0) return;
      stalledSince = new Date().toISOString();
      // The queue is past the stream's high-water mark, so the write that filled it returned false and 'drain'
      // follows once the reader has taken everything. The notice bypasses the level: any level but silent
      // (which writes nothing, so never drops) shows it.
      stream.once('drain', () => {
        stream.write(lineOf('error', 'log lines dropped', { dropped: droppedInStall, since: stalledSince, queueBytes }));
        droppedInStall = 0;
      });
    },
    droppedLines: () => droppedSinceStart,
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
