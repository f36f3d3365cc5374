import { AirlockError, canonicalJson, type AuditEntry, type AuditMatch, type NewWebhookDelivery, type WebhookAttempt, type WebhookDelivery, type WebhookDeliveryState, type WebhookEndpoint } from '@airlock/core';
import { auditEntryFromRow } from '../shared/rows.ts';
import { clampLimit } from '../shared/values.ts';
import { claimQuotas, inTurns, MAX_PER_ENDPOINT, type ClaimCandidate, webhookAttemptFromRow, webhookDeliveryFromRow, webhookEndpointFromRow, withAttemptLogs } from '../shared/webhook-rows.ts';
import type { Q } from './pg-query.ts';

export async function getWebhookEndpoint(q: Q, id: string): Promise<WebhookEndpoint | undefined> {
  const [row] = await q('SELECT * FROM webhook_endpoints WHERE id = $1', [id]);
  return row && webhookEndpointFromRow(row);
}

export async function listWebhookEndpoints(q: Q, filter: { includeRemoved?: boolean }): Promise<WebhookEndpoint[]> {
  const where = filter.includeRemoved ? '' : 'WHERE removed_at IS NULL';
  return (await q(`SELECT * FROM webhook_endpoints ${where} ORDER BY created_at, id`)).map(webhookEndpointFromRow);
}

/**
 * The cursor is the leaf counter as this statement reads it (no lock): entries of batches committing
 * meanwhile get leaf indexes at or above it, so the endpoint sees every entry appended after it exists.
 */
export async function createWebhookEndpoint(q: Q, e: Omit<WebhookEndpoint, 'cursor'>): Promise<WebhookEndpoint> {
  const [row] = await q(
    `INSERT INTO webhook_endpoints (id, url, events, description, secret_version, cursor, created_at, updated_at)
     VALUES ($1, $2, $3, $4, $5, (SELECT next_leaf FROM audit_leaf_counter), $6, $7) RETURNING *`,
    [e.id, e.url, canonicalJson(e.events), e.description ?? null, e.secretVersion, e.createdAt, e.updatedAt],
  );
  return webhookEndpointFromRow(row!);
}

export async function rotateWebhookSecret(q: Q, id: string, now: number): Promise<WebhookEndpoint> {
  const [row] = await q('UPDATE webhook_endpoints SET secret_version = secret_version + 1, updated_at = $1 WHERE id = $2 AND removed_at IS NULL RETURNING *', [now, id]);
  if (!row) throw new AirlockError('not_found', 'No such webhook endpoint.');
  return webhookEndpointFromRow(row);
}

export async function removeWebhookEndpoint(q: Q, id: string, now: number): Promise<WebhookEndpoint> {
  const [row] = await q('UPDATE webhook_endpoints SET removed_at = $1, updated_at = $1 WHERE id = $2 AND removed_at IS NULL RETURNING *', [now, id]);
  if (!row) throw new AirlockError('not_found', 'No such webhook endpoint.');
  await q("UPDATE webhook_deliveries SET state = 'cancelled', lease_until = 0, updated_at = $1 WHERE endpoint_id = $2 AND state = 'pending'", [now, id]);
  return webhookEndpointFromRow(row);
}

/** Prefixes are compared with left(), not LIKE: `_` and `%` in a type are ordinary characters. */
export async function scanAuditForWebhooks(q: Q, fromLeaf: number, toLeaf: number, match: AuditMatch, limit: number): Promise<AuditEntry[]> {
  const rows = await q(
    `SELECT * FROM audit_entries WHERE leaf_index >= $1 AND leaf_index < $2 AND (
       type = ANY($3::text[])
       OR EXISTS (SELECT 1 FROM unnest($4::text[]) AS p(prefix) WHERE left(type, length(p.prefix)) = p.prefix)
       OR decision = ANY($5::text[]))
     ORDER BY leaf_index LIMIT $6`,
    [fromLeaf, toLeaf, match.types, match.prefixes, match.decisions, clampLimit(limit)],
  );
  return rows.map(auditEntryFromRow);
}

export async function auditEntryAt(q: Q, leafIndex: number): Promise<AuditEntry | undefined> {
  const [row] = await q('SELECT * FROM audit_entries WHERE leaf_index = $1', [leafIndex]);
  return row && auditEntryFromRow(row);
}

/** One statement per part, in one transaction (the caller's). Deliveries of an endpoint removed meanwhile are not inserted. */
export async function enqueueWebhookDeliveries(q: Q, deliveries: readonly NewWebhookDelivery[], cursors: readonly { endpointId: string; cursor: number }[], now: number): Promise<void> {
  if (deliveries.length > 0) {
    await q(
      `INSERT INTO webhook_deliveries (event_id, endpoint_id, audit_seq, leaf_index, event_type, state, attempts, next_attempt_at, lease_until, created_at, updated_at)
       SELECT d.event_id, d.endpoint_id, d.audit_seq, d.leaf_index, d.event_type, 'pending', 0, $6, 0, $6, $6
       FROM unnest($1::text[], $2::text[], $3::int8[], $4::int8[], $5::text[]) AS d(event_id, endpoint_id, audit_seq, leaf_index, event_type)
       WHERE EXISTS (SELECT 1 FROM webhook_endpoints e WHERE e.id = d.endpoint_id AND e.removed_at IS NULL)
       ON CONFLICT DO NOTHING`,
      [deliveries.map((d) => d.eventId), deliveries.map((d) => d.endpointId), deliveries.map((d) => d.auditSeq), deliveries.map((d) => d.leafIndex), deliveries.map((d) => d.eventType), now],
    );
  }
  if (cursors.length > 0) {
    await q(
      `UPDATE webhook_endpoints e SET cursor = GREATEST(e.cursor, c.cursor) FROM unnest($1::text[], $2::int8[]) AS c(id, cursor) WHERE e.id = c.id`,
      [cursors.map((c) => c.endpointId), cursors.map((c) => c.cursor)],
    );
  }
}

/**
 * Endpoint by endpoint, in one transaction (the caller's): the endpoints' leases still running, then each
 * endpoint's oldest due deliveries up to what it may still lease, locked as they are picked with rows another
 * instance is claiming right now skipped (SKIP LOCKED; once that claim commits, its lease keeps them out of every
 * later pick), up to what it may still lease (`claimQuotas`), taken in turns (`inTurns`); the rest are unlocked at
 * commit. Every read is a range of an index
 * (migration 023): the claim before sorted the whole due backlog, and with statistics taken while the table was
 * small PostgreSQL planned it as a nested loop that recomputed it per row (3.2 s for one claim at 4,000 due
 * rows; found by review).
 */
export async function claimWebhookDeliveries(q: Q, now: number, leaseUntil: number, limit: number, perEndpoint = MAX_PER_ENDPOINT): Promise<WebhookDelivery[]> {
  const quotas = claimQuotas(
    await q('SELECT id FROM webhook_endpoints WHERE removed_at IS NULL'),
    await q("SELECT endpoint_id, count(*)::int AS n FROM webhook_deliveries WHERE state = 'pending' AND lease_until > 0 AND lease_until > $1 GROUP BY endpoint_id", [now]),
    limit,
    perEndpoint,
  );
  const lists: ClaimCandidate[][] = [];
  // One endpoint after the other on the transaction's one connection.
  for (const { endpointId, quota } of quotas) {
    lists.push((await q(
      `SELECT event_id, next_attempt_at, leaf_index FROM webhook_deliveries
       WHERE endpoint_id = $1 AND state = 'pending' AND next_attempt_at <= $2 AND lease_until <= $2
       ORDER BY next_attempt_at, leaf_index LIMIT $3 FOR UPDATE SKIP LOCKED`,
      [endpointId, now, quota],
    )) as unknown as ClaimCandidate[]);
  }
  const chosen = inTurns(lists, clampLimit(limit));
  if (chosen.length === 0) return [];
  const rows = await q('UPDATE webhook_deliveries SET attempts = attempts + 1, lease_until = $2, updated_at = $1 WHERE event_id = ANY($3::text[]) RETURNING *', [now, leaseUntil, chosen]);
  return rows.map(webhookDeliveryFromRow).sort((a, b) => a.nextAttemptAt - b.nextAttemptAt || a.leafIndex - b.leafIndex);
}

export async function recordWebhookAttempt(q: Q, a: WebhookAttempt, next: { state: 'pending' | 'delivered' | 'failed'; nextAttemptAt: number }, now: number): Promise<void> {
  await q(
    `WITH logged AS (
       INSERT INTO webhook_attempts (event_id, attempt, outcome, http_status, error_class, started_at, finished_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
       ON CONFLICT DO NOTHING)
     UPDATE webhook_deliveries SET state = $8, next_attempt_at = $9, lease_until = 0, updated_at = $10 WHERE event_id = $1 AND attempts = $2 AND state = 'pending'`,
    [a.eventId, a.attempt, a.outcome, a.httpStatus ?? null, a.errorClass ?? null, a.startedAt, a.finishedAt, next.state, next.nextAttemptAt, now],
  );
}

export async function pruneWebhookDeliveries(q: Q, finishedBefore: number, limit: number): Promise<number> {
  // SKIP LOCKED: another instance pruning at the same time takes other rows instead of waiting for these. The
  // attempts go first in the same statement (their foreign key is checked at its end).
  const rows = await q(
    `WITH doomed AS (
       SELECT event_id FROM webhook_deliveries WHERE state <> 'pending' AND updated_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED
     ), attempts AS (
       DELETE FROM webhook_attempts a USING doomed d WHERE a.event_id = d.event_id
     )
     DELETE FROM webhook_deliveries w USING doomed d WHERE w.event_id = d.event_id RETURNING w.event_id`,
    [finishedBefore, clampLimit(limit)],
  );
  return rows.length;
}

export async function listWebhookDeliveries(q: Q, endpointId: string, filter: { state?: WebhookDeliveryState; limit?: number }): Promise<(WebhookDelivery & { log: WebhookAttempt[] })[]> {
  const params: unknown[] = [endpointId];
  if (filter.state !== undefined) params.push(filter.state);
  params.push(clampLimit(filter.limit));
  const deliveries = (await q(`SELECT * FROM webhook_deliveries WHERE endpoint_id = $1 ${filter.state !== undefined ? 'AND state = $2' : ''} ORDER BY leaf_index DESC LIMIT $${params.length}`, params)).map(webhookDeliveryFromRow);
  if (deliveries.length === 0) return [];
  const attempts = (await q('SELECT * FROM webhook_attempts WHERE event_id = ANY($1::text[]) ORDER BY event_id, attempt', [deliveries.map((d) => d.eventId)])).map(webhookAttemptFromRow);
  return withAttemptLogs(deliveries, attempts);
}
