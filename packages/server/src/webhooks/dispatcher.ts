import type { Clock, KeyBackend, NewWebhookDelivery, Store, WebhookAttempt, WebhookDelivery, WebhookEndpoint } from '@airlock/core';
import { postDelivery, type PostResult } from './deliver.ts';
import { auditMatchFor, matchesEventPatterns, webhookEventType } from './event-patterns.ts';
import { webhookBody } from './payload.ts';
import { retryDelayMs, type RetrySchedule } from './retry-schedule.ts';
import { signatureHeader, webhookEventId, webhookSecret } from './signature.ts';

export interface WebhookDispatcherOptions extends RetrySchedule {
  /** How often the log is read and due deliveries are claimed. */
  pollIntervalMs: number;
  /** How long one request may take before it counts as failed (`timeout`). */
  timeoutMs: number;
  /** Requests in flight at once, per instance. */
  concurrency?: number;
  /**
   * Finished deliveries (delivered, failed, cancelled) last changed longer ago than this are deleted with their
   * attempt logs, checked at most once an hour; 0 (the default here) keeps them. The audit log keeps every event.
   */
  retentionMs?: number;
}

/**
 * A delivery claimed this many times maxAttempts is failed without another send (`not_recorded`): its attempts
 * were claimed and never recorded (the daemon stopped during them, or was shut down that often), and without a
 * bound a receiver whose answer ended the daemon every time would be sent it forever (found by review).
 */
const UNRECORDED_ATTEMPTS_FACTOR = 2;

/** Leaves read per scan; a tick scans at most SCANS_PER_TICK of them, the rest next tick. */
const SCAN_SPAN = 10_000;
const SCAN_PAGE = 500;
const SCANS_PER_TICK = 20;
/**
 * Under a backlog a finished send claims again after this pause, one claim for all the sends finished in it: each
 * claim and each record is a store write beside the signing path's, so a backlog to a receiver that fails at once
 * goes at most about 40 claims (320 deliveries) a second, not as fast as the store takes writes.
 */
const RECLAIM_PAUSE_MS = 25;
/** Retention runs at most this often, deleting up to PRUNE_PAGE x PRUNE_PAGES finished deliveries a run. */
const PRUNE_EVERY_MS = 3_600_000;
const PRUNE_PAGE = 1_000;
const PRUNE_PAGES = 20;
/** A claim outlives the request it covers by this much (a request is aborted at its timeout). */
const LEASE_MARGIN_MS = 30_000;

/**
 * Sends audit entries to webhook endpoints, off every request path (docs/operations.md, "Alerts and webhooks").
 *
 * Each tick, on a timer: (1) **enqueue**: read the log in leaf order from the endpoints' cursors up to the tree
 * size read first (every leaf below it is committed), record one delivery per (endpoint, matching entry) and move
 * the cursors, in one store transaction; (2) **claim** due deliveries under a lease (attempts + 1) and send each
 * in the background, signed, then record the attempt and the next state (delivered, retry at a backoff, failed).
 *
 * Nothing here is in a signing transaction, and no request waits for it: a slow or dead receiver only keeps its
 * own delivery pending. Delivery is at least once: a daemon that dies after the receiver answered and before the
 * attempt is recorded sends it again once the lease lapses, with the same Airlock-Event-Id. Instances on one
 * PostgreSQL enqueue the same event once (its id is the key) and claim it once (the lease).
 */
export class WebhookDispatcher {
  private readonly store: Store;
  private readonly keys: KeyBackend;
  private readonly clock: Clock;
  private readonly options: Required<WebhookDispatcherOptions>;
  private readonly log: (message: string) => void;
  private readonly random: () => number;
  private readonly stopping = new AbortController();
  private readonly inFlight = new Set<Promise<void>>();
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;
  /** When retention last ran (ms; -Infinity: not yet, so the first tick runs it). */
  private prunedAt = -Infinity;
  /** The claim running now: claims never overlap (each reads how many slots are free). */
  private claiming: Promise<void> = Promise.resolve();
  /** The last claim took something: more may be due, so a finished send claims again soon. */
  private moreDue = false;
  private reclaimTimer: NodeJS.Timeout | undefined;

  constructor(deps: { store: Store; keys: KeyBackend; clock: Clock; log: (message: string) => void; random?: () => number }, options: WebhookDispatcherOptions) {
    this.store = deps.store;
    this.keys = deps.keys;
    this.clock = deps.clock;
    this.log = deps.log;
    this.random = deps.random ?? Math.random;
    this.options = { concurrency: 8, retentionMs: 0, ...options };
  }

  /** Ticks every pollIntervalMs until stop(); a tick never overlaps the previous one. */
  start(): void {
    if (this.timer || this.stopping.signal.aborted) return;
    const schedule = () => {
      this.timer = setTimeout(() => {
        this.ticking = this.tick()
          .catch((e: unknown) => this.log(`webhook dispatcher: ${e instanceof Error ? e.message : String(e)}`))
          .finally(() => {
            this.ticking = undefined;
            if (!this.stopping.signal.aborted) schedule();
          });
      }, this.options.pollIntervalMs);
      this.timer.unref();
    };
    schedule();
  }

  /** Stops ticking, aborts requests in flight (recorded as `aborted`, sent again on the next start) and waits for their records. */
  async stop(): Promise<void> {
    this.stopping.abort();
    clearTimeout(this.timer);
    clearTimeout(this.reclaimTimer);
    await this.ticking;
    // A claim started by a finished send may still be running; what it claimed is in flight after it.
    await this.claiming;
    await Promise.allSettled([...this.inFlight]);
  }

  /** One round: enqueue what the log holds for the endpoints, then send what is due. Exposed for tests and operators' tools. */
  async tick(): Promise<void> {
    await this.enqueue();
    await this.claimAndSend();
    if (this.options.retentionMs > 0 && this.clock.now() - this.prunedAt >= PRUNE_EVERY_MS) await this.prune();
  }

  /**
   * Deletes finished deliveries older than the retention (the delivery log would otherwise grow with every event
   * for ever): the number deleted. Pages of PRUNE_PAGE, each its own short transaction, so signing never waits long
   * behind it; what is left waits for the next run. Exposed for tests and operators' tools.
   */
  async prune(): Promise<number> {
    const now = this.clock.now();
    this.prunedAt = now;
    let deleted = 0;
    for (let page = 0; page < PRUNE_PAGES && !this.stopping.signal.aborted; page++) {
      const n = await this.store.pruneWebhookDeliveries(now - this.options.retentionMs, PRUNE_PAGE);
      deleted += n;
      if (n < PRUNE_PAGE) break;
    }
    return deleted;
  }

  /** Resolves when every request started so far has been recorded. */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.inFlight]);
  }

  private async enqueue(): Promise<void> {
    for (let scans = 0; scans < SCANS_PER_TICK && !this.stopping.signal.aborted; scans++) {
      const endpoints = await this.store.listWebhookEndpoints();
      if (endpoints.length === 0) return;
      const treeSize = (await this.store.auditHead()).treeSize;
      const behind = endpoints.filter((e) => e.cursor < treeSize);
      if (behind.length === 0) return;
      const from = Math.min(...behind.map((e) => e.cursor));
      let to = Math.min(treeSize, from + SCAN_SPAN);
      const wanting = behind.filter((e) => e.cursor < to);
      const entries = await this.store.scanAuditForWebhooks(from, to, auditMatchFor(wanting.map((e) => e.events)), SCAN_PAGE);
      // A full page may stop short of `to`: the cursors move only past what was read.
      if (entries.length === SCAN_PAGE) to = entries[entries.length - 1]!.leafIndex! + 1;
      const deliveries: NewWebhookDelivery[] = [];
      for (const entry of entries) {
        const eventType = webhookEventType(entry);
        for (const endpoint of wanting) {
          if (entry.leafIndex! < endpoint.cursor || !matchesEventPatterns(endpoint.events, eventType)) continue;
          deliveries.push({ eventId: webhookEventId(endpoint.id, entry.leafIndex!), endpointId: endpoint.id, auditSeq: entry.seq, leafIndex: entry.leafIndex!, eventType });
        }
      }
      await this.store.enqueueWebhookDeliveries(deliveries, wanting.map((e) => ({ endpointId: e.id, cursor: to })), this.clock.now());
    }
  }

  private claimAndSend(): Promise<void> {
    const next = this.claiming.then(() => this.claimOnce());
    this.claiming = next.catch(() => undefined);
    return next;
  }

  /**
   * Claims what fits in the free slots, endpoints taking turns and none holding more than half of them (a
   * receiver that hangs until the timeout keeps the rest free for the others). Under a backlog finished sends
   * claim again within RECLAIM_PAUSE_MS instead of waiting for the next tick: one tick's claim was the ceiling
   * (8 a second with the defaults), and an agent flooding held requests delayed every endpoint's alerts by
   * minutes (found by review).
   */
  private async claimOnce(): Promise<void> {
    const free = this.options.concurrency - this.inFlight.size;
    if (free <= 0 || this.stopping.signal.aborted) return;
    const now = this.clock.now();
    const perEndpoint = Math.max(1, Math.ceil(this.options.concurrency / 2));
    const claimed = await this.store.claimWebhookDeliveries(now, now + this.options.timeoutMs + LEASE_MARGIN_MS, free, perEndpoint);
    // Anything claimed: more may be due (one endpoint alone can never fill every slot: it may lease only half).
    this.moreDue = claimed.length > 0;
    for (const delivery of claimed) {
      const sending: Promise<void> = this.send(delivery)
        .catch((e: unknown) => this.log(`webhook delivery ${delivery.eventId} (attempt ${delivery.attempts}) could not be recorded: ${e instanceof Error ? e.message : String(e)}`))
        .finally(() => {
          this.inFlight.delete(sending);
          if (this.moreDue && !this.stopping.signal.aborted && !this.reclaimTimer) {
            this.reclaimTimer = setTimeout(() => {
              this.reclaimTimer = undefined;
              this.claimAndSend().catch((e: unknown) => this.log(`webhook dispatcher: ${e instanceof Error ? e.message : String(e)}`));
            }, RECLAIM_PAUSE_MS);
            this.reclaimTimer.unref();
          }
        });
      this.inFlight.add(sending);
    }
  }

  /** One attempt of a claimed delivery; its lease covers it. */
  private async send(delivery: WebhookDelivery): Promise<void> {
    const endpoint = await this.store.getWebhookEndpoint(delivery.endpointId);
    // Removed since the claim: the removal cancelled the delivery; nothing to send, nothing to record.
    if (!endpoint || endpoint.removedAt !== undefined) return;
    if (delivery.attempts > UNRECORDED_ATTEMPTS_FACTOR * this.options.maxAttempts) {
      const at = this.clock.now();
      this.log(`webhook delivery ${delivery.eventId} to ${endpoint.id} (${delivery.eventType}), attempt ${delivery.attempts}: not_recorded (claimed ${delivery.attempts} times, never recorded); giving up`);
      await this.store.recordWebhookAttempt({ eventId: delivery.eventId, attempt: delivery.attempts, outcome: 'failed', errorClass: 'not_recorded', startedAt: at, finishedAt: at }, { state: 'failed', nextAttemptAt: at }, at);
      return;
    }
    const entry = await this.store.auditEntryAt(delivery.leafIndex);
    if (!entry) throw new Error(`no audit entry at leaf ${delivery.leafIndex}`);
    const startedAt = this.clock.now();
    const result = await this.post(endpoint, delivery, webhookBody(delivery.eventId, delivery.eventType, entry), startedAt);
    const finishedAt = this.clock.now();
    const attempt: WebhookAttempt = { eventId: delivery.eventId, attempt: delivery.attempts, outcome: 'retry', startedAt, finishedAt };
    if ('httpStatus' in result) attempt.httpStatus = result.httpStatus;
    const ok = 'httpStatus' in result && result.httpStatus >= 200 && result.httpStatus < 300;
    if (!ok) attempt.errorClass = 'errorClass' in result ? result.errorClass : 'http_status';
    if (ok) {
      attempt.outcome = 'delivered';
      await this.store.recordWebhookAttempt(attempt, { state: 'delivered', nextAttemptAt: finishedAt }, finishedAt);
      return;
    }
    // A shutdown is not the receiver's fault: sent again as soon as an instance runs, whatever the count.
    if (attempt.errorClass === 'aborted') {
      await this.store.recordWebhookAttempt(attempt, { state: 'pending', nextAttemptAt: finishedAt }, finishedAt);
      return;
    }
    // The key backend busy or down is not the receiver's failure: retried at the first backoff, never given up on
    // for it (the bound on unrecorded claims still holds); a backlog to a healthy receiver could otherwise spend
    // its attempts on the key process's rate limit.
    const last = delivery.attempts >= this.options.maxAttempts && attempt.errorClass !== 'key_unavailable';
    attempt.outcome = last ? 'failed' : 'retry';
    this.log(`webhook delivery ${delivery.eventId} to ${endpoint.id} (${delivery.eventType}), attempt ${delivery.attempts}: ${attempt.errorClass}${attempt.httpStatus !== undefined ? ` ${attempt.httpStatus}` : ''}${last ? '; giving up' : ''}`);
    const nextAttemptAt = last ? finishedAt : finishedAt + retryDelayMs(attempt.errorClass === 'key_unavailable' ? 1 : delivery.attempts, this.options, this.random);
    await this.store.recordWebhookAttempt(attempt, { state: last ? 'failed' : 'pending', nextAttemptAt }, finishedAt);
  }

  private async post(endpoint: WebhookEndpoint, delivery: WebhookDelivery, body: string, now: number): Promise<PostResult> {
    // Derived for this request and dropped with it: the secret is never kept in memory longer, logged or stored.
    let secret: string;
    try {
      secret = await webhookSecret(this.keys, endpoint.id, endpoint.secretVersion);
    } catch {
      // The key process down or busy: a recorded attempt (retried at the first backoff, see `send`), not one left
      // unrecorded. Its message is not kept: it is the key backend's, not the receiver's.
      return { errorClass: 'key_unavailable' };
    }
    const signature = signatureHeader(secret, Math.floor(now / 1000), body);
    return postDelivery({ url: endpoint.url, body, eventId: delivery.eventId, eventType: delivery.eventType, signature }, this.options.timeoutMs, this.stopping.signal);
  }
}
