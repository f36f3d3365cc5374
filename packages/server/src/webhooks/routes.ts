// Webhook endpoints and their delivery log, for operators (docs/operations.md, "Alerts and webhooks").
import { z } from 'zod';
import type { WebhookAttempt, WebhookDelivery, WebhookEndpoint } from '@airlock/core';
import { apiSchema } from '../http/api-schemas.ts';
import type { AirlockHolder } from '../http/holder.ts';
import type { RouteSpec } from '../http/route-table.ts';
import { iso } from '../http/schemas.ts';
import { DEFAULT_WEBHOOK_EVENTS, WEBHOOK_EVENT_FAMILIES } from './event-patterns.ts';

const OPERATOR = 'admin';
const isoOf = (ms: number) => new Date(ms).toISOString();

export const CreateWebhookRequest = apiSchema(
  'CreateWebhookRequest',
  z.strictObject({
    url: z.string().max(4096).describe('Where deliveries are POSTed: an absolute http:// or https:// URL (at most 2048 characters), without user name or password.'),
    events: z.array(z.string().max(100)).max(64).optional().describe(`Event patterns: \`family.*\` or \`family.name\`, family among ${WEBHOOK_EVENT_FAMILIES.join(', ')}. Default: ${DEFAULT_WEBHOOK_EVENTS.join(', ')}.`),
    description: z.string().max(1000).optional().describe('A note for operators (at most 200 characters).'),
  }),
);

export const WebhookEndpointSchema = apiSchema(
  'WebhookEndpoint',
  z.object({
    id: z.string(),
    url: z.string(),
    events: z.array(z.string()),
    description: z.string().optional(),
    secretVersion: z.number().int().describe('Bumped by each rotation; the secret itself is never shown again.'),
    createdAt: iso,
    updatedAt: iso,
    removedAt: iso.optional(),
  }),
);

export const WebhookWithSecretResponse = apiSchema(
  'WebhookWithSecret',
  z.object({
    endpoint: WebhookEndpointSchema,
    secret: z.string().describe('whsec_…: the HMAC key of the Airlock-Signature header. Shown here only; store it in the receiver.'),
  }),
);

export const WebhookListResponse = apiSchema('WebhookList', z.object({ endpoints: z.array(WebhookEndpointSchema) }));
export const WebhookRemovedResponse = apiSchema('WebhookRemoved', z.object({ endpoint: WebhookEndpointSchema }));

const WebhookAttemptSchema = apiSchema(
  'WebhookAttempt',
  z.object({
    attempt: z.number().int(),
    outcome: z.enum(['delivered', 'retry', 'failed']),
    httpStatus: z.number().int().optional().describe("The receiver's answer, when it gave one."),
    errorClass: z.string().optional().describe('http_status, timeout, connection_refused, dns, tls, network or aborted; key_unavailable (the secret could not be derived: retried), not_recorded (claimed too often without a recorded attempt: failed).'),
    startedAt: iso,
    finishedAt: iso,
    durationMs: z.number().int(),
  }),
);

export const WebhookDeliverySchema = apiSchema(
  'WebhookDelivery',
  z.object({
    eventId: z.string().describe('Airlock-Event-Id: the same on every attempt.'),
    eventType: z.string(),
    auditSeq: z.number().int(),
    leafIndex: z.number().int(),
    state: z.enum(['pending', 'delivered', 'failed', 'cancelled']),
    attempts: z.number().int(),
    nextAttemptAt: iso.describe('pending: when the next attempt may go out.'),
    createdAt: iso,
    updatedAt: iso,
    log: z.array(WebhookAttemptSchema).describe('Every attempt, oldest first.'),
  }),
);

export const WebhookDeliveriesResponse = apiSchema('WebhookDeliveries', z.object({ deliveries: z.array(WebhookDeliverySchema) }));

const ListWebhooksParams = z.object({ all: z.enum(['true', 'false']).optional().describe('true: removed endpoints too.') });
const ListDeliveriesParams = z.object({
  state: z.enum(['pending', 'delivered', 'failed', 'cancelled']).optional(),
  limit: z.coerce.number().int().min(1).max(1000).optional(),
});

export function webhookEndpointJson(e: WebhookEndpoint): z.output<typeof WebhookEndpointSchema> {
  return {
    id: e.id, url: e.url, events: e.events, ...(e.description !== undefined ? { description: e.description } : {}), secretVersion: e.secretVersion,
    createdAt: isoOf(e.createdAt), updatedAt: isoOf(e.updatedAt), ...(e.removedAt !== undefined ? { removedAt: isoOf(e.removedAt) } : {}),
  };
}

function deliveryJson(d: WebhookDelivery & { log: WebhookAttempt[] }): z.output<typeof WebhookDeliverySchema> {
  return {
    eventId: d.eventId, eventType: d.eventType, auditSeq: d.auditSeq, leafIndex: d.leafIndex, state: d.state, attempts: d.attempts,
    nextAttemptAt: isoOf(d.nextAttemptAt), createdAt: isoOf(d.createdAt), updatedAt: isoOf(d.updatedAt),
    log: d.log.map((a) => ({
      attempt: a.attempt, outcome: a.outcome, ...(a.httpStatus !== undefined ? { httpStatus: a.httpStatus } : {}), ...(a.errorClass !== undefined ? { errorClass: a.errorClass } : {}),
      startedAt: isoOf(a.startedAt), finishedAt: isoOf(a.finishedAt), durationMs: a.finishedAt - a.startedAt,
    })),
  };
}

export function buildWebhookRoutes(holder: AirlockHolder): RouteSpec[] {
  const W = () => holder.get().webhooks;
  return [
    {
      method: 'post', path: '/v1/webhooks', operationId: 'createWebhook', summary: 'Add a webhook endpoint for alerts, approvals and breaker trips (the signing secret is shown once)', tag: 'webhooks', auth: 'admin',
      body: CreateWebhookRequest, responses: { 201: WebhookWithSecretResponse },
      handler: async (c, { body }) => {
        const { endpoint, secret } = await W().create(body as z.output<typeof CreateWebhookRequest>, OPERATOR);
        return c.json({ endpoint: webhookEndpointJson(endpoint), secret }, 201);
      },
    },
    {
      method: 'get', path: '/v1/webhooks', operationId: 'listWebhooks', summary: 'List webhook endpoints (removed ones with all=true); never their secrets', tag: 'webhooks', auth: 'admin',
      query: ListWebhooksParams, responses: { 200: WebhookListResponse },
      handler: async (c, { query }) => c.json({ endpoints: (await W().list({ includeRemoved: (query as { all?: string }).all === 'true' })).map(webhookEndpointJson) }),
    },
    {
      method: 'delete', path: '/v1/webhooks/:id', operationId: 'removeWebhook', summary: 'Remove a webhook endpoint: nothing more is sent to it, pending deliveries are cancelled', tag: 'webhooks', auth: 'admin',
      responses: { 200: WebhookRemovedResponse }, errors: [404],
      handler: async (c) => c.json({ endpoint: webhookEndpointJson(await W().remove(c.req.param('id')!, OPERATOR)) }),
    },
    {
      method: 'post', path: '/v1/webhooks/:id/rotate-secret', operationId: 'rotateWebhookSecret', summary: 'Give a webhook endpoint a new signing secret (shown once); the old one stops at once', tag: 'webhooks', auth: 'admin',
      responses: { 200: WebhookWithSecretResponse }, errors: [404],
      handler: async (c) => {
        const { endpoint, secret } = await W().rotateSecret(c.req.param('id')!, OPERATOR);
        return c.json({ endpoint: webhookEndpointJson(endpoint), secret });
      },
    },
    {
      method: 'get', path: '/v1/webhooks/:id/deliveries', operationId: 'listWebhookDeliveries', summary: 'The delivery log of a webhook endpoint: each event, its state and every attempt', tag: 'webhooks', auth: 'admin',
      query: ListDeliveriesParams, responses: { 200: WebhookDeliveriesResponse }, errors: [404],
      handler: async (c, { query }) => {
        const q = query as z.output<typeof ListDeliveriesParams>;
        const deliveries = await W().deliveries(c.req.param('id')!, { ...(q.state ? { state: q.state } : {}), limit: q.limit ?? 100 });
        return c.json({ deliveries: deliveries.map(deliveryJson) });
      },
    },
  ];
}
