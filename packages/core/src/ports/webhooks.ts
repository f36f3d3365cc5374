import type { AuditEntry } from '../audit/types.ts';

/**
 * Webhooks for alerts (docs/operations.md, "Alerts and webhooks"). The event source is the audit log: a
 * dispatcher in the daemon reads it in leaf order from each endpoint's durable cursor and records one delivery
 * per (endpoint, entry) it matches; sending happens later, on timers, off every request path. Nothing here is
 * written by a signing transaction.
 */
export interface WebhookEndpoint {
  id: string; // `whk_` + 16 hex
  /** http(s), no credentials (checked when created). */
  url: string;
  /** Event patterns: an event type (`approval.denied`) or a family with a trailing `*` (`alert.*`). */
  events: string[];
  description?: string;
  /**
   * The signing secret is derived from the vault for (id, secretVersion) and never stored; a rotation bumps
   * the version, so the old secret is no longer produced.
   */
  secretVersion: number;
  /** The next audit leaf index this endpoint has not looked at (set by the store at creation: the log's size then). */
  cursor: number;
  createdAt: number; // ms
  updatedAt: number;
  /** Set once removed: nothing new is enqueued and pending deliveries are cancelled. Kept for its delivery log. */
  removedAt?: number;
}

export type WebhookDeliveryState = 'pending' | 'delivered' | 'failed' | 'cancelled';

/** One audit entry for one endpoint, retried until delivered or out of attempts. */
export interface WebhookDelivery {
  /** A function of (endpoint, leaf index): the same on every retry and every instance (`Airlock-Event-Id`). */
  eventId: string;
  endpointId: string;
  auditSeq: number;
  leafIndex: number;
  /** The type sent: the entry's type, or `approval.requested` for a decision held for a human. */
  eventType: string;
  state: WebhookDeliveryState;
  /** Attempts started: a claim counts one before the request goes out. Also the lease's fencing token. */
  attempts: number;
  nextAttemptAt: number; // ms
  /** A claimed delivery belongs to the claiming instance until then (ms); 0 when not claimed. */
  leaseUntil: number;
  createdAt: number;
  updatedAt: number;
}

export type WebhookAttemptOutcome = 'delivered' | 'retry' | 'failed';

/** One line of the delivery log: what one attempt got. Never a body, a header, a URL or a secret. */
export interface WebhookAttempt {
  eventId: string;
  attempt: number;
  outcome: WebhookAttemptOutcome;
  /** The receiver's status, when it answered. */
  httpStatus?: number;
  /** `http_status`, `timeout`, `connection_refused`, `dns`, `tls`, `network`, `aborted`, `key_unavailable`, `not_recorded` (never a message: it could quote the URL). */
  errorClass?: string;
  startedAt: number; // ms
  finishedAt: number;
}

export interface NewWebhookDelivery {
  eventId: string;
  endpointId: string;
  auditSeq: number;
  leafIndex: number;
  eventType: string;
}

/** Which entries a scan returns: exact types, type prefixes (`alert.`, matched literally) or decisions. */
export interface AuditMatch {
  types: readonly string[];
  prefixes: readonly string[];
  decisions: readonly string[];
}

/** Webhook state outside transactions: the operator's listings and the dispatcher's reads, claims and outcomes. */
export interface WebhookStore {
  getWebhookEndpoint(id: string): Promise<WebhookEndpoint | undefined>;
  /** Oldest first; removed ones only with `includeRemoved`. */
  listWebhookEndpoints(filter?: { includeRemoved?: boolean }): Promise<WebhookEndpoint[]>;
  /**
   * Entries with `fromLeaf <= leafIndex < toLeaf` that match, in leaf order, with their data, at most `limit`.
   * `toLeaf` is a tree size read before: every leaf below it is committed (the visible leaves are a gap-free
   * prefix on both stores), so a cursor moved up to `toLeaf` never steps over an entry still to commit.
   */
  scanAuditForWebhooks(fromLeaf: number, toLeaf: number, match: AuditMatch, limit: number): Promise<AuditEntry[]>;
  /** The entry at a leaf index, with its data. */
  auditEntryAt(leafIndex: number): Promise<AuditEntry | undefined>;
  /**
   * Inserts deliveries (an event id already present is kept as it is: instances reading the same page agree)
   * and moves each named endpoint's cursor up to its `cursor` (never back), in one transaction.
   */
  enqueueWebhookDeliveries(deliveries: readonly NewWebhookDelivery[], cursors: readonly { endpointId: string; cursor: number }[], now: number): Promise<void>;
  /**
   * Claims up to `limit` pending deliveries due at `now` whose lease has lapsed (or never existed): attempts + 1
   * and a lease until `leaseUntil`, so no other instance claims them while it runs (PostgreSQL: locked rows
   * are skipped, not waited for). Endpoints take turns: each endpoint's oldest due delivery first, then each
   * one's second, and so on (oldest due first within a turn), and no endpoint gets more than `perEndpoint`
   * deliveries under a lease at once (counting those leased before and still running), so a receiver that
   * hangs holds at most that many of the dispatcher's slots and a flood of one endpoint's events does not
   * hold back another's. Instances claiming at the same moment on PostgreSQL may together exceed it by the
   * few rows each picked.
   */
  claimWebhookDeliveries(now: number, leaseUntil: number, limit: number, perEndpoint?: number): Promise<WebhookDelivery[]>;
  /**
   * Logs an attempt and moves its delivery on (delivered, failed, or pending again at `nextAttemptAt`), dropping
   * the lease. The delivery changes only while it is pending at that attempt number (a lease that lapsed and was
   * claimed again has a higher one); the log line is written either way: the attempt happened.
   */
  recordWebhookAttempt(attempt: WebhookAttempt, next: { state: 'pending' | 'delivered' | 'failed'; nextAttemptAt: number }, now: number): Promise<void>;
  /** Newest entry first, each with its attempts (oldest first). */
  listWebhookDeliveries(endpointId: string, filter?: { state?: WebhookDeliveryState; limit?: number }): Promise<(WebhookDelivery & { log: WebhookAttempt[] })[]>;
  /**
   * Deletes up to `limit` finished deliveries (delivered, failed or cancelled; never pending) last changed before
   * `finishedBefore` (ms), with their attempt logs, in one transaction: the count deleted. The audit log keeps every
   * event; this is the delivery log's retention.
   */
  pruneWebhookDeliveries(finishedBefore: number, limit: number): Promise<number>;
}

/** Endpoint changes inside `Store.transaction`, so each commits together with its audit entry. */
export interface WebhookStoreTx {
  /** Inserts the endpoint with its cursor at the log's size: it gets the entries appended after it exists. */
  createWebhookEndpoint(endpoint: Omit<WebhookEndpoint, 'cursor'>): Promise<WebhookEndpoint>;
  getWebhookEndpoint(id: string): Promise<WebhookEndpoint | undefined>;
  /** secretVersion + 1 on an active endpoint (`not_found` otherwise). */
  rotateWebhookSecret(id: string, now: number): Promise<WebhookEndpoint>;
  /** Active -> removed, its pending deliveries cancelled (`not_found` for an unknown or removed one). */
  removeWebhookEndpoint(id: string, now: number): Promise<WebhookEndpoint>;
}
