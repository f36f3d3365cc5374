import { AirlockError, type WebhookAttempt, type WebhookDelivery, type WebhookEndpoint } from '@airlock/core';
import type { Row } from './rows.ts';
import { clampLimit, fromJson, MAX_LIST_LIMIT, toInt, toOptionalInt, toOptionalString } from './values.ts';

export function webhookEndpointFromRow(r: Row): WebhookEndpoint {
  const e: WebhookEndpoint = {
    id: String(r.id),
    url: String(r.url),
    events: fromJson(r.events) as string[],
    secretVersion: toInt(r.secret_version),
    cursor: toInt(r.cursor),
    createdAt: toInt(r.created_at),
    updatedAt: toInt(r.updated_at),
  };
  const description = toOptionalString(r.description);
  if (description !== undefined) e.description = description;
  const removedAt = toOptionalInt(r.removed_at);
  if (removedAt !== undefined) e.removedAt = removedAt;
  return e;
}

export function webhookDeliveryFromRow(r: Row): WebhookDelivery {
  return {
    eventId: String(r.event_id),
    endpointId: String(r.endpoint_id),
    auditSeq: toInt(r.audit_seq),
    leafIndex: toInt(r.leaf_index),
    eventType: String(r.event_type),
    state: String(r.state) as WebhookDelivery['state'],
    attempts: toInt(r.attempts),
    nextAttemptAt: toInt(r.next_attempt_at),
    leaseUntil: toInt(r.lease_until),
    createdAt: toInt(r.created_at),
    updatedAt: toInt(r.updated_at),
  };
}

export function webhookAttemptFromRow(r: Row): WebhookAttempt {
  const a: WebhookAttempt = {
    eventId: String(r.event_id),
    attempt: toInt(r.attempt),
    outcome: String(r.outcome) as WebhookAttempt['outcome'],
    startedAt: toInt(r.started_at),
    finishedAt: toInt(r.finished_at),
  };
  const httpStatus = toOptionalInt(r.http_status);
  if (httpStatus !== undefined) a.httpStatus = httpStatus;
  const errorClass = toOptionalString(r.error_class);
  if (errorClass !== undefined) a.errorClass = errorClass;
  return a;
}

/** Deliveries with their attempts, in the deliveries' order (attempts oldest first). */
export function withAttemptLogs(deliveries: WebhookDelivery[], attempts: WebhookAttempt[]): (WebhookDelivery & { log: WebhookAttempt[] })[] {
  const byEvent = new Map<string, WebhookAttempt[]>();
  for (const a of attempts) byEvent.set(a.eventId, [...(byEvent.get(a.eventId) ?? []), a]);
  return deliveries.map((d) => ({ ...d, log: (byEvent.get(d.eventId) ?? []).sort((x, y) => x.attempt - y.attempt) }));
}

/** `claimWebhookDeliveries` without a per-endpoint bound: any one endpoint may take every slot asked for. */
export const MAX_PER_ENDPOINT = MAX_LIST_LIMIT;

function clampPerEndpoint(perEndpoint: number): number {
  if (!Number.isInteger(perEndpoint) || perEndpoint < 1) throw new AirlockError('invalid_request', 'perEndpoint must be a positive integer');
  return Math.min(perEndpoint, MAX_PER_ENDPOINT);
}

/**
 * What a claim may take from each active endpoint (`endpoints`: their ids): `perEndpoint` less its deliveries
 * still under a lease (`leased`: rows of endpoint_id and n), at most `limit`; endpoints with nothing left to take
 * are left out. Both stores' claims read these quotas, then each endpoint's oldest due deliveries, then `inTurns`.
 */
export function claimQuotas(endpoints: readonly Row[], leased: readonly Row[], limit: number, perEndpoint: number): { endpointId: string; quota: number }[] {
  const cap = clampPerEndpoint(perEndpoint);
  const max = clampLimit(limit);
  const busy = new Map(leased.map((r) => [String(r.endpoint_id), Number(r.n)]));
  return endpoints
    .map((e) => ({ endpointId: String(e.id), quota: Math.min(cap - (busy.get(String(e.id)) ?? 0), max) }))
    .filter((e) => e.quota > 0);
}

/** A due delivery as a claim's per-endpoint read returns it. */
export interface ClaimCandidate {
  event_id: unknown;
  next_attempt_at: unknown;
  leaf_index: unknown;
}

/**
 * The deliveries a claim takes, endpoints taking turns: every endpoint's first (oldest due) candidate, then every
 * one's second, and so on, oldest due first within a turn; at most `limit`. Each list is one endpoint's candidates,
 * oldest first, already cut to what that endpoint may still lease.
 */
export function inTurns(lists: readonly (readonly ClaimCandidate[])[], limit: number): string[] {
  const ranked = lists.flatMap((list) => list.map((c, turn) => ({ id: String(c.event_id), turn, at: Number(c.next_attempt_at), leaf: Number(c.leaf_index) })));
  ranked.sort((a, b) => a.turn - b.turn || a.at - b.at || a.leaf - b.leaf);
  return ranked.slice(0, limit).map((c) => c.id);
}
