import { AirlockError, canonicalJson, type AuditEntry, type AuditMatch, type NewWebhookDelivery, type WebhookAttempt, type WebhookDelivery, type WebhookDeliveryState, type WebhookEndpoint } from '@airlock/core';
import { auditEntryFromRow } from '../shared/rows.ts';
import { clampLimit } from '../shared/values.ts';
import { claimQuotas, inTurns, MAX_PER_ENDPOINT, type ClaimCandidate, webhookAttemptFromRow, webhookDeliveryFromRow, webhookEndpointFromRow, withAttemptLogs } from '../shared/webhook-rows.ts';
import type { SQLInputValue } from 'node:sqlite';
import type { SqliteDb } from './sqlite-db.ts';

export function getWebhookEndpoint(db: SqliteDb, id: string): WebhookEndpoint | undefined {
  const row = db.get('SELECT * FROM webhook_endpoints WHERE id = ?', id);
  return row && webhookEndpointFromRow(row);
}

export function listWebhookEndpoints(db: SqliteDb, filter: { includeRemoved?: boolean }): WebhookEndpoint[] {
  const where = filter.includeRemoved ? '' : 'WHERE removed_at IS NULL';
  return db.all(`SELECT * FROM webhook_endpoints ${where} ORDER BY created_at, id`).map(webhookEndpointFromRow);
}

/** Inside the write transaction: the cursor is the log's size at this point (the next leaf to be appended). */
export function createWebhookEndpoint(db: SqliteDb, e: Omit<WebhookEndpoint, 'cursor'>): WebhookEndpoint {
  const row = db.get(
    `INSERT INTO webhook_endpoints (id, url, events, description, secret_version, cursor, created_at, updated_at)
     VALUES (?, ?, ?, ?, ?, (SELECT coalesce(max(leaf_index) + 1, 0) FROM audit_entries), ?, ?) RETURNING *`,
    e.id, e.url, canonicalJson(e.events), e.description ?? null, e.secretVersion, e.createdAt, e.updatedAt,
  );
  return webhookEndpointFromRow(row!);
}

export function rotateWebhookSecret(db: SqliteDb, id: string, now: number): WebhookEndpoint {
  const row = db.get('UPDATE webhook_endpoints SET secret_version = secret_version + 1, updated_at = ? WHERE id = ? AND removed_at IS NULL RETURNING *', now, id);
  if (!row) throw new AirlockError('not_found', 'No such webhook endpoint.');
  return webhookEndpointFromRow(row);
}

export function removeWebhookEndpoint(db: SqliteDb, id: string, now: number): WebhookEndpoint {
  const row = db.get('UPDATE webhook_endpoints SET removed_at = ?, updated_at = ? WHERE id = ? AND removed_at IS NULL RETURNING *', now, now, id);
  if (!row) throw new AirlockError('not_found', 'No such webhook endpoint.');
  db.run("UPDATE webhook_deliveries SET state = 'cancelled', lease_until = 0, updated_at = ? WHERE endpoint_id = ? AND state = 'pending'", now, id);
  return webhookEndpointFromRow(row);
}

/**
 * Prefixes are compared with substr, not LIKE: `_` and `%` in a type are ordinary characters. Columns are
 * qualified: json_each has a `type` column of its own.
 */
export function scanAuditForWebhooks(db: SqliteDb, fromLeaf: number, toLeaf: number, match: AuditMatch, limit: number): AuditEntry[] {
  return db.all(
    `SELECT * FROM audit_entries a WHERE a.leaf_index >= ? AND a.leaf_index < ? AND (
       a.type IN (SELECT value FROM json_each(?))
       OR EXISTS (SELECT 1 FROM json_each(?) p WHERE substr(a.type, 1, length(p.value)) = p.value)
       OR a.decision IN (SELECT value FROM json_each(?)))
     ORDER BY leaf_index LIMIT ?`,
    fromLeaf, toLeaf, JSON.stringify(match.types), JSON.stringify(match.prefixes), JSON.stringify(match.decisions), clampLimit(limit),
  ).map(auditEntryFromRow);
}

export function auditEntryAt(db: SqliteDb, leafIndex: number): AuditEntry | undefined {
  const row = db.get('SELECT * FROM audit_entries WHERE leaf_index = ?', leafIndex);
  return row && auditEntryFromRow(row);
}

/** Inside the write transaction. Deliveries of an endpoint removed meanwhile are not inserted. */
export function enqueueWebhookDeliveries(db: SqliteDb, deliveries: readonly NewWebhookDelivery[], cursors: readonly { endpointId: string; cursor: number }[], now: number): void {
  for (const d of deliveries) {
    db.run(
      `INSERT INTO webhook_deliveries (event_id, endpoint_id, audit_seq, leaf_index, event_type, state, attempts, next_attempt_at, lease_until, created_at, updated_at)
       SELECT ?, ?, ?, ?, ?, 'pending', 0, ?, 0, ?, ? WHERE EXISTS (SELECT 1 FROM webhook_endpoints WHERE id = ? AND removed_at IS NULL)
       ON CONFLICT DO NOTHING`,
      d.eventId, d.endpointId, d.auditSeq, d.leafIndex, d.eventType, now, now, now, d.endpointId,
    );
  }
  for (const c of cursors) db.run('UPDATE webhook_endpoints SET cursor = max(cursor, ?) WHERE id = ?', c.cursor, c.endpointId);
}

const DUE = `d.state = 'pending' AND d.next_attempt_at <= ? AND d.lease_until <= ?
  AND EXISTS (SELECT 1 FROM webhook_endpoints e WHERE e.id = d.endpoint_id AND e.removed_at IS NULL)`;

/** A read first, so an idle dispatcher does not take SQLite's write lock every tick. */
export function anyDueWebhookDelivery(db: SqliteDb, now: number): boolean {
  return db.get(`SELECT 1 FROM webhook_deliveries d WHERE ${DUE} LIMIT 1`, now, now) !== undefined;
}

/**
 * Endpoint by endpoint, in the caller's write transaction (one writer: nobody else can claim between the reads and
 * the update): the endpoints' leases still running, then each endpoint's oldest due deliveries up to what it may
 * still lease (`claimQuotas`), taken in turns (`inTurns`). Every read is a range of an index (migration 022), so a
 * claim costs the same with 100,000 deliveries due as with 10.
 */
export function claimWebhookDeliveries(db: SqliteDb, now: number, leaseUntil: number, limit: number, perEndpoint = MAX_PER_ENDPOINT): WebhookDelivery[] {
  const quotas = claimQuotas(
    db.all('SELECT id FROM webhook_endpoints WHERE removed_at IS NULL'),
    db.all("SELECT endpoint_id, count(*) AS n FROM webhook_deliveries WHERE state = 'pending' AND lease_until > 0 AND lease_until > ? GROUP BY endpoint_id", now),
    limit,
    perEndpoint,
  );
  const lists = quotas.map(({ endpointId, quota }) => db.all(
    `SELECT event_id, next_attempt_at, leaf_index FROM webhook_deliveries
     WHERE endpoint_id = ? AND state = 'pending' AND next_attempt_at <= ? AND lease_until <= ?
     ORDER BY next_attempt_at, leaf_index LIMIT ?`,
    endpointId, now, now, quota,
  ) as unknown as ClaimCandidate[]);
  const chosen = inTurns(lists, clampLimit(limit));
  if (chosen.length === 0) return [];
  return db
    .all(`UPDATE webhook_deliveries SET attempts = attempts + 1, lease_until = ?, updated_at = ? WHERE event_id IN (${chosen.map(() => '?').join(', ')}) RETURNING *`, leaseUntil, now, ...chosen)
    .map(webhookDeliveryFromRow)
    .sort((a, b) => a.nextAttemptAt - b.nextAttemptAt || a.leafIndex - b.leafIndex);
}

export function recordWebhookAttempt(db: SqliteDb, a: WebhookAttempt, next: { state: 'pending' | 'delivered' | 'failed'; nextAttemptAt: number }, now: number): void {
  db.run(
    `INSERT INTO webhook_attempts (event_id, attempt, outcome, http_status, error_class, started_at, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT DO NOTHING`,
    a.eventId, a.attempt, a.outcome, a.httpStatus ?? null, a.errorClass ?? null, a.startedAt, a.finishedAt,
  );
  db.run(
    "UPDATE webhook_deliveries SET state = ?, next_attempt_at = ?, lease_until = 0, updated_at = ? WHERE event_id = ? AND attempts = ? AND state = 'pending'",
    next.state, next.nextAttemptAt, now, a.eventId, a.attempt,
  );
}

export function pruneWebhookDeliveries(db: SqliteDb, finishedBefore: number, limit: number): number {
  const ids = JSON.stringify(
    db.all("SELECT event_id FROM webhook_deliveries WHERE state <> 'pending' AND updated_at < ? LIMIT ?", finishedBefore, clampLimit(limit)).map((r) => r.event_id),
  );
  db.run('DELETE FROM webhook_attempts WHERE event_id IN (SELECT value FROM json_each(?))', ids);
  return db.run('DELETE FROM webhook_deliveries WHERE event_id IN (SELECT value FROM json_each(?))', ids);
}

export function listWebhookDeliveries(db: SqliteDb, endpointId: string, filter: { state?: WebhookDeliveryState; limit?: number }): (WebhookDelivery & { log: WebhookAttempt[] })[] {
  const params: SQLInputValue[] = [endpointId];
  if (filter.state !== undefined) params.push(filter.state);
  params.push(clampLimit(filter.limit));
  const deliveries = db
    .all(`SELECT * FROM webhook_deliveries WHERE endpoint_id = ? ${filter.state !== undefined ? 'AND state = ?' : ''} ORDER BY leaf_index DESC LIMIT ?`, ...params)
    .map(webhookDeliveryFromRow);
  if (deliveries.length === 0) return [];
  const attempts = db
    .all('SELECT * FROM webhook_attempts WHERE event_id IN (SELECT value FROM json_each(?)) ORDER BY event_id, attempt', JSON.stringify(deliveries.map((d) => d.eventId)))
    .map(webhookAttemptFromRow);
  return withAttemptLogs(deliveries, attempts);
}
