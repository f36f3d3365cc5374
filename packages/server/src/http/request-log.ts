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
  /** Lines lost since start: dropped for a reader that had fallen behind, or whose write failed (createLogger; metrics). */
  droppedLines?(): number;
}

/** Log text that may wait for a reader that has stopped taking it (AIRLOCK_LOG_QUEUE), in characters (bytes for ASCII). */
export const DEFAULT_LOG_QUEUE_BYTES = 8 * 1024 * 1024;
/** The smallest queue allowed: the high-water mark of Node 24's stdout and stderr on a pipe (64 KiB). */
export const MIN_LOG_QUEUE_BYTES = 64 * 1024;

/** Where lines go: process.stdout, process.stderr, or any Writable. */
export type LineStream = Pick<NodeJS.WritableStream, 'once' | 'on'> & {
  write(chunk: string, callback: (error?: Error | null) => void): boolean;
  readonly writableLength: number;
  readonly writableHighWaterMark?: number;
};

export function parseLogLevel(value: string | undefined): LogLevel {
  const level = (value ?? '').trim().toLowerCase() || 'info';
  if (!(LOG_LEVELS as readonly string[]).includes(level)) throw new AirlockError('invalid_request', `AIRLOCK_LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}.`);
  return level as LogLevel;
}

/** One log line: a JSON object with the time, level and message first, then the fields, and a newline. */
const lineOf = (level: string, msg: string, fields: Record<string, unknown>) => `${JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields })}\n`;

/** Whether a stream has failed for good; one per stream, however many loggers write to it. */
const failedStreams = new WeakMap<LineStream, { failed: boolean }>();

/**
 * One 'error' listener per stream. A reader that goes away for good (the pipe closed: EPIPE; a full disk:
 * ENOSPC) would otherwise be an unhandled 'error' that ends the daemon in the middle of its requests. It is
 * taken here instead: the stream is marked failed, and one line on stderr says so; a logger on stderr itself
 * has nowhere to say it.
 */
function outputStateOf(stream: LineStream): { failed: boolean } {
  let state = failedStreams.get(stream);
  if (state) return state;
  const created = { failed: false };
  failedStreams.set(stream, created);
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (created.failed) return;
    created.failed = true;
    if (stream !== process.stderr) {
      console.error(lineOf('error', 'log output failed', { code: e.code ?? 'unknown', next: 'log lines are dropped and counted in airlock_log_lines_dropped_total' }).trimEnd());
    }
  });
  return created;
}

/**
 * A logger writing to `stream` (stdout by default). Writing never waits for a pipe's reader: lines it has not
 * taken yet queue in memory, up to `queueBytes` (or the stream's high-water mark, if larger). Once the queue is
 * full, lines are dropped and counted, not queued, until the reader has taken everything (the stream's 'drain'):
 * a log shipper that stops or falls behind cannot make the signer run out of memory, and each gap ends with one
 * error line saying how many lines it lost and since when. Lines whose write fails (the queue when the pipe
 * breaks, the line that meets a full disk) are counted too, and after such a failure every line is dropped and
 * counted: `droppedLines()` (airlock_log_lines_dropped_total) is every line lost since start.
 */
export function createLogger(level: LogLevel, stream: LineStream = process.stdout, queueBytes = DEFAULT_LOG_QUEUE_BYTES): Logger & { droppedLines(): number } {
  if (!(queueBytes >= MIN_LOG_QUEUE_BYTES)) throw new AirlockError('invalid_request', `the log queue must be at least ${MIN_LOG_QUEUE_BYTES} bytes`);
  // 'drain' comes only after a write has returned false, which needs the high-water mark reached: a queue below
  // it could fill without a 'drain' ever ending the gap.
  const bound = Math.max(queueBytes, stream.writableHighWaterMark ?? 0);
  const threshold = LOG_LEVELS.indexOf(level);
  const output = outputStateOf(stream);
  // stderr gets its listener too, whatever this logger writes to. console.error swallows only the first failed
  // write of a closed stderr (`2>&1 | shipper` closes both streams at once): the next stderr line (an internal
  // error, the notice above, a shutdown message) would be thrown out of the event loop and end the daemon.
  outputStateOf(process.stderr);
  let dropped = 0;
  let droppedInGap = 0;
  let gapSince: string | undefined;
  // One callback for every write: a failed stream fails every write still queued, and each is a lost line.
  const written = (error?: Error | null) => {
    if (error) dropped++;
  };
  const endGap = () => {
    stream.write(lineOf('error', 'log lines dropped', { dropped: droppedInGap, since: gapSince, queueBytes: bound }), written);
    droppedInGap = 0;
    gapSince = undefined;
  };
  return {
    level,
    log(at, msg, fields = {}) {
      if (LOG_LEVELS.indexOf(at) < threshold) return;
      if (output.failed) {
        dropped++;
        return;
      }
      if (gapSince === undefined && stream.writableLength < bound) {
        stream.write(lineOf(at, msg, fields), written);
        return;
      }
      dropped++;
      droppedInGap++;
      if (gapSince !== undefined) return;
      // Dropping goes on until the reader has taken everything, so a reader only slightly slower than the lines
      // gets whole gaps, each with its notice, not lines missing here and there without one. The notice bypasses
      // the level: any level but silent (which writes nothing, so never drops) shows it.
      gapSince = new Date().toISOString();
      stream.once('drain', endGap);
    },
    droppedLines: () => dropped,
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
    // A route that decides inside its answer (JSON-RPC: 200 with a JSON-RPC error, one decision per signing call of
    // a batch) notes its decisions itself; the REST signing routes' answers carry theirs.
    const noted = c.get(DECISIONS_NOTED) as DecisionLabels[] | undefined;
    const answeredDecision = decisionOf(answered);
    const decisions = noted ?? (answeredDecision ? [answeredDecision] : []);
    const decision = decisions.find((d) => d.outcome === 'deny') ?? decisions.find((d) => d.outcome === 'require_approval') ?? decisions[0];
    const errorCode = errorCodeOf(answered);
    metrics?.observeRequest(c.req.method, route, status, seconds, decisions, errorCode);
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

/** The context key under which a route notes the signing decisions it made (`noteDecision`). */
const DECISIONS_NOTED = 'signingDecisions';

/**
 * Notes the decision of one signing call answered inside a route's own answer shape (JSON-RPC), from the signing
 * answer's body, so the request log and `airlock_decisions_total` count it as they count a REST signing route's
 * (found by review: policy denials through /v1/rpc/:chainId were counted nowhere, so an agent probing there stayed
 * under any deny-rate alert).
 */
export function noteDecision(c: Context, signingAnswer: unknown): void {
  const decision = decisionOf(signingAnswer);
  if (!decision) return;
  const noted = (c.get(DECISIONS_NOTED) as DecisionLabels[] | undefined) ?? [];
  noted.push(decision);
  c.set(DECISIONS_NOTED, noted);
}

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
