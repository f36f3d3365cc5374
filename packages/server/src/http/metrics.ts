import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { AirlockError, GROUP_COMMIT_SIZE_BOUNDS, type SignedTreeHead, type StoredAuditHead } from '@airlock/core';
import { allowedHostNames, hostAllowed } from './browser-guard.ts';
import type { AirlockHolder } from './holder.ts';
import type { Logger } from './request-log.ts';
import { budgetUtilisation, type BudgetUtilisation } from './budget-utilisation.ts';

/** Upper bound the pending-approvals gauge counts to (one list page of the store). */
export const PENDING_APPROVALS_CAP = 1000;

export interface MetricsOptions {
  /** Agents whose budget utilisation is exported: the N most used (default 10; 0 turns per-agent series off). */
  budgetTopAgents?: number;
  /** The daemon's logger: its dropped lines are counted (airlock_log_lines_dropped_total). */
  logger?: Logger;
}

/**
 * The daemon's Prometheus metrics. Request counters and histograms are updated in memory by the request
 * observer (no I/O on the signing path); everything read from the store (audit head, checkpoint age,
 * pending approvals, budget utilisation) is read when Prometheus scrapes, never per request.
 */
export class AirlockMetrics {
  readonly registry = new Registry();
  private readonly requestDuration: Histogram<'method' | 'route' | 'status'>;
  private readonly decisions: Counter<'outcome' | 'rule' | 'code'>;
  private readonly storeErrors: Counter<'source'>;
  readonly inFlight: Gauge;

  constructor(holder: AirlockHolder, options: MetricsOptions = {}) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'airlock_' });
    this.requestDuration = new Histogram({
      name: 'airlock_http_request_duration_seconds',
      help: 'HTTP request latency by route pattern (e.g. /v1/agents/:id, never the raw path), method and status.',
      labelNames: ['method', 'route', 'status'],
      // Signing answers in a few ms; an unseal (argon2id) takes about a second.
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.decisions = new Counter({
      name: 'airlock_decisions_total',
      help: 'Signing decisions by outcome (allow, deny, require_approval) and the first violation\'s rule and code (empty for allow).',
      labelNames: ['outcome', 'rule', 'code'],
      registers,
    });
    this.inFlight = new Gauge({ name: 'airlock_http_requests_in_flight', help: 'HTTP requests being served.', registers });
    const topAgents = options.budgetTopAgents ?? 10;
    // One set of store reads per scrape, shared by every gauge below (prom-client collects all metrics at once).
    let reading: Promise<StoreSnapshot | undefined> | undefined;
    const snapshot = () => (reading ??= readSnapshot().finally(() => (reading = undefined)));
    const readSnapshot = async (): Promise<StoreSnapshot | undefined> => {
      if (holder.sealed) return undefined;
      const airlock = holder.get();
      const { store, clock } = airlock.deps;
      try {
        const [head, sth, pending, budgets, lightning] = await Promise.all([
          store.auditHead(),
          store.lastTreeHead(),
          store.listApprovals({ state: 'pending', limit: PENDING_APPROVALS_CAP }),
          budgetUtilisation(airlock, { topAgents }),
          store.listLightningPayments({ state: 'in_flight', limit: PENDING_APPROVALS_CAP }),
        ]);
        const oldest = lightning.reduce((min, p) => Math.min(min, p.createdAt), Number.POSITIVE_INFINITY);
        return { head, sth, now: clock.now(), pendingApprovals: pending.length, budgets, lightningInFlight: lightning.length, lightningOldestInFlight: Number.isFinite(oldest) ? oldest : undefined };
      } catch {
        this.storeErrors.inc({ source: 'scrape' });
        return undefined;
      }
    };
    /** A gauge read from the store at scrape time; no sample while sealed or when the store read failed. */
    const scraped = (name: string, help: string, set: (gauge: Gauge<string>, s: StoreSnapshot) => void, labelNames: string[] = []) =>
      new Gauge({
        name, help, labelNames, registers,
        async collect() {
          this.reset();
          const s = await snapshot();
          if (s) set(this, s);
        },
      });
    new Gauge({
      name: 'airlock_sealed', help: '1 while the vault is sealed (nothing can be signed), 0 once unsealed.', registers,
      collect() {
        this.set(holder.sealed ? 1 : 0);
      },
    });
    scraped('airlock_audit_head_seq', 'Sequence number of the newest audit entry.', (g, s) => g.set(s.head.seq));
    scraped('airlock_audit_entries_unsigned', 'Audit leaves not yet covered by a signed tree head (drops to 0 at each checkpoint).', (g, s) => g.set(s.head.treeSize - (s.sth?.treeSize ?? 0)));
    scraped(
      'airlock_audit_checkpoint_age_seconds',
      'Seconds since the newest signed tree head (a head is written only when the log grew, so alert on age together with unsigned entries).',
      // NaN until the first signed tree head: there is no age, and no alert rule fires on NaN by accident.
      (g, s) => g.set(s.sth ? (s.now - s.sth.at) / 1000 : Number.NaN),
    );
    scraped('airlock_lightning_payments_in_flight', `Lightning payments in flight, their budget held until the backend answers (counted up to ${PENDING_APPROVALS_CAP}).`, (g, s) => g.set(s.lightningInFlight));
    scraped(
      'airlock_lightning_oldest_in_flight_seconds',
      'Age of the oldest Lightning payment in flight (0 when none): a hold the backend never answers for grows here.',
      (g, s) => g.set(s.lightningOldestInFlight === undefined ? 0 : (s.now - s.lightningOldestInFlight) / 1000),
    );
    scraped('airlock_approvals_pending', `Pending approvals (counted up to ${PENDING_APPROVALS_CAP}).`, (g, s) => g.set(s.pendingApprovals));
    scraped(
      'airlock_budget_utilisation_ratio',
      `Used / max of each budget rule over its window: every fleet-scope budget, and agent-scope budgets of the ${topAgents} most used agents only (bounded cardinality).`,
      (g, s) => {
        for (const r of s.budgets) g.set({ scope: r.scope, agent: r.agent ?? '', rule: r.rule, asset: r.asset }, r.ratio);
      },
      ['scope', 'agent', 'rule', 'asset'],
    );
    this.registry.registerMetric(groupCommitSizeHistogram(holder));
    const logger = options.logger;
    if (logger) {
      new Counter({
        name: 'airlock_log_lines_dropped_total',
        help: 'Log lines lost since start: dropped while the reader of the daemon\'s stdout had fallen AIRLOCK_LOG_QUEUE behind (until it took everything queued), or whose write failed (a closed pipe, a full disk).',
        registers,
        collect() {
          this.reset();
          // A logger of an embedding that predates droppedLines counts nothing rather than failing the scrape.
          this.inc(logger.droppedLines?.() ?? 0);
        },
      });
    }
    this.registry.registerMetric(keyProcessDroppedLines(holder));
    this.storeErrors = new Counter({
      name: 'airlock_store_errors_total',
      help: 'Store failures: requests answered 503 store_unavailable, and scrapes whose store reads failed.',
      labelNames: ['source'],
      registers,
      // Waits for this scrape's store reads, so a failure shows in the same scrape.
      async collect() {
        await snapshot();
      },
    });
  }

  /** One answered request. `decision` only for signing outcomes. */
  observeRequest(method: string, route: string, status: number, seconds: number, decisions: readonly DecisionLabels[] = [], errorCode?: string): void {
    this.requestDuration.observe({ method, route, status: String(status) }, seconds);
    for (const decision of decisions) this.decisions.inc({ outcome: decision.outcome, rule: decision.rule, code: decision.code });
    if (errorCode === 'store_unavailable') this.storeErrors.inc({ source: 'request' });
  }
}

/**
 * `airlock_store_group_commit_size`: how many write transactions shared each commit, read from the store's
 * cumulative counts at scrape time (nothing on the signing path). prom-client's Histogram only takes one
 * observation at a time, so this is a metric object of the shape its Registry reads (`get()` returning the
 * bucket, sum and count values) rather than a Histogram fed per commit. No sample while sealed (no store).
 */
function groupCommitSizeHistogram(holder: AirlockHolder) {
  const name = 'airlock_store_group_commit_size';
  return readAtScrape(name, 'histogram', 'Write transactions (signatures, operator changes, ...) carried by each commit of the store\'s group committer: _count is commits, _sum is transactions.', () => {
    const stats = holder.sealed ? undefined : holder.get().deps.store.groupCommitStats?.();
    if (!stats) return [];
    const values: ScrapedValue[] = [
      ...GROUP_COMMIT_SIZE_BOUNDS.map((le, i) => ({ metricName: `${name}_bucket`, labels: { le }, value: stats.atMost[i]! })),
      { metricName: `${name}_bucket`, labels: { le: '+Inf' }, value: stats.commits },
      { metricName: `${name}_sum`, labels: {}, value: stats.transactions },
      { metricName: `${name}_count`, labels: {}, value: stats.commits },
    ];
    return values;
  }) as unknown as Histogram;
}

/** How long a scrape waits for the key process's answer before it leaves its sample out. */
const KEY_PROCESS_SCRAPE_TIMEOUT_MS = 2000;

/**
 * The key process's lost log lines, as its `hello` reports them at scrape time. No sample without a key process,
 * while it does not answer, or from a key process too old to report them: a missing series, never a false 0.
 */
function keyProcessDroppedLines(holder: AirlockHolder) {
  const name = 'airlock_key_process_log_lines_dropped_total';
  return readAtScrape(name, 'counter', 'Log lines the key process (AIRLOCK_KEY_PROCESS_SOCKET) lost since it started: dropped while the reader of its stderr had fallen AIRLOCK_LOG_QUEUE behind, or whose write failed. Read from the key process at each scrape; no sample while it does not answer.', async () => {
    const keyProcess = holder.sealed ? undefined : holder.get().keyProcess;
    let dropped: number | undefined;
    try {
      dropped = keyProcess ? (await keyProcess.hello(KEY_PROCESS_SCRAPE_TIMEOUT_MS)).logLinesDropped : undefined;
    } catch {
      dropped = undefined; // not answering: health and readiness say so (key_process_unavailable)
    }
    return dropped === undefined ? [] : [{ metricName: name, labels: {}, value: dropped }];
  }) as unknown as Counter;
}

type ScrapedValue = { metricName: string; labels: Record<string, string | number>; value: number };

/**
 * A metric whose samples are computed when Prometheus scrapes, in the shape prom-client's Registry reads (name,
 * help, type, aggregator and get()); none of its classes can take a set of values made elsewhere. The caller
 * casts it to the class of its type, for the Registry's typing.
 */
function readAtScrape(name: string, type: 'counter' | 'histogram', help: string, values: () => ScrapedValue[] | Promise<ScrapedValue[]>) {
  return {
    name, help, type, aggregator: 'sum', labelNames: [],
    reset() {},
    async get() {
      return { name, help, type, values: await values(), aggregator: 'sum' };
    },
  };
}

interface StoreSnapshot {
  head: StoredAuditHead;
  sth: SignedTreeHead | undefined;
  now: number;
  pendingApprovals: number;
  budgets: BudgetUtilisation[];
  lightningInFlight: number;
  /** ms; undefined when nothing is in flight. */
  lightningOldestInFlight: number | undefined;
}

export interface DecisionLabels {
  outcome: 'allow' | 'deny' | 'require_approval';
  rule: string;
  code: string;
}

export interface MetricsServer {
  url: string;
  close(): Promise<void>;
}

export interface MetricsListenerOptions {
  /** Host names served besides IP literals and `localhost` (AIRLOCK_ALLOWED_HOSTS, as on the API port). */
  allowedHosts?: readonly string[];
}

/** Every answer of the metrics listener: about now (no cache keeps it) and plain text (no browser sniffs it). */
const METRICS_HEADERS = { 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' } as const;

/**
 * `/metrics` on its own listener (AIRLOCK_METRICS_LISTEN), never on the API port: Prometheus needs no
 * admin token (which could freeze agents and approve payments), and the operator decides who can reach it
 * by the address it binds. It answers GET /metrics and nothing else.
 *
 * Web pages are kept away as on the API port (browser-guard.ts): a `Host` that is neither an IP literal,
 * `localhost`, nor a listed name is refused (421 host_not_allowed), so a page that rebinds its own name to this
 * address cannot read agent names, rule names and budgets; and any request with an `Origin` (a browser's;
 * Prometheus never sends one) is refused (403 origin_not_allowed).
 */
export async function serveMetrics(metrics: AirlockMetrics, listen: { host: string; port: number }, options: MetricsListenerOptions = {}): Promise<MetricsServer> {
  const hosts = allowedHostNames(options.allowedHosts ?? []);
  const refuse = (res: ServerResponse, status: number, text: string) => res.writeHead(status, { ...METRICS_HEADERS, 'content-type': 'text/plain' }).end(text);
  const server: Server = createServer((req, res) => {
    // No Host at all (HTTP/1.0) cannot come from a browser; one that is sent must be served.
    if (req.headers.host !== undefined && !hostAllowed(req.headers.host, hosts)) {
      refuse(res, 421, 'host_not_allowed: use 127.0.0.1, localhost, or a name listed in AIRLOCK_ALLOWED_HOSTS\n');
      return;
    }
    if (req.headers.origin !== undefined) {
      refuse(res, 403, 'origin_not_allowed: requests from web pages are refused\n');
      return;
    }
    const path = (req.url ?? '').split('?')[0];
    if (req.method !== 'GET' || path !== '/metrics') {
      refuse(res, 404, 'not found: GET /metrics\n');
      return;
    }
    metrics.registry.metrics().then(
      (text) => res.writeHead(200, { ...METRICS_HEADERS, 'content-type': metrics.registry.contentType }).end(text),
      () => refuse(res, 500, 'metrics collection failed\n'),
    );
  });
  await listenOrExplain(server, listen.port, listen.host, 'AIRLOCK_METRICS_LISTEN');
  const addr = server.address() as AddressInfo;
  return {
    url: `http://${addr.address.includes(':') ? `[${addr.address}]` : addr.address}:${addr.port}/metrics`,
    close: () => new Promise<void>((done) => {
      server.close(() => done());
      server.closeAllConnections();
    }),
  };
}

/** listen(), with a port already taken turned into `address_in_use` and a hint instead of a stack trace. */
export function listenOrExplain(server: Server, port: number | string, host: string | undefined, setting: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EADDRINUSE') {
        const where = typeof port === 'string' ? port : `${host}:${port}`;
        reject(new AirlockError('address_in_use', `${where} is already in use.`, {
          hints: [`Another process listens there (another Airlock?): stop it, or choose another address with ${setting}.`, typeof port === 'number' ? `Find it: ss -ltnp 'sport = :${port}'` : 'A stale socket file is removed at start; a live one belongs to a running process.'],
        }));
      } else reject(e);
    });
    if (typeof port === 'string') server.listen(port, resolve);
    else server.listen(port, host, resolve);
  });
}
