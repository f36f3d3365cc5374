import { createHash } from 'node:crypto';
import { AirlockError, type Clock, type KeyBackend, type Store, type WebhookAttempt, type WebhookDelivery, type WebhookDeliveryState, type WebhookEndpoint } from '@airlock/core';
import { checkWebhookUrl, webhookOrigin } from './endpoint-url.ts';
import { parseEventPatterns } from './event-patterns.ts';
import { webhookSecret } from './signature.ts';

export interface CreateWebhookInput {
  url: string;
  events?: string[];
  description?: string;
}

const MAX_DESCRIPTION = 200;

/**
 * The operator's side of webhooks: endpoints created, listed, removed and given a new secret, each change
 * committed with its audit entry (`webhook.created`, `webhook.removed`, `webhook.secret_rotated`). The secret
 * is returned by create and rotate only, and appears in no entry, listing, error or log line; audit entries
 * name the receiver by its origin and a hash of the URL (a URL's path can itself be a credential).
 */
export class WebhookService {
  private readonly deps: { store: Store; keys: KeyBackend; clock: Clock; randomId: (prefix: string) => string };

  constructor(deps: { store: Store; keys: KeyBackend; clock: Clock; randomId: (prefix: string) => string }) {
    this.deps = deps;
  }

  async create(input: CreateWebhookInput, actor: string): Promise<{ endpoint: WebhookEndpoint; secret: string }> {
    const url = checkWebhookUrl(input.url);
    const events = parseEventPatterns(input.events);
    const description = input.description?.trim();
    if (description !== undefined && (description.length > MAX_DESCRIPTION || /\p{Cc}/u.test(description))) {
      throw new AirlockError('invalid_request', `description: at most ${MAX_DESCRIPTION} characters, no control characters.`);
    }
    const id = this.deps.randomId('whk');
    const endpoint = await this.deps.store.transaction(async (tx) => {
      const now = this.deps.clock.now();
      const created = await tx.createWebhookEndpoint({ id, url, events, ...(description ? { description } : {}), secretVersion: 1, createdAt: now, updatedAt: now });
      await tx.appendAudit({ at: now, type: 'webhook.created', actor: 'operator', data: { endpointId: id, origin: webhookOrigin(url), urlHash: urlHash(url), events, by: actor } });
      return created;
    });
    return { endpoint, secret: await webhookSecret(this.deps.keys, endpoint.id, endpoint.secretVersion) };
  }

  list(options: { includeRemoved?: boolean } = {}): Promise<WebhookEndpoint[]> {
    return this.deps.store.listWebhookEndpoints(options);
  }

  async remove(id: string, actor: string): Promise<WebhookEndpoint> {
    return this.deps.store.transaction(async (tx) => {
      const now = this.deps.clock.now();
      const removed = await tx.removeWebhookEndpoint(id, now);
      await tx.appendAudit({ at: now, type: 'webhook.removed', actor: 'operator', data: { endpointId: id, origin: webhookOrigin(removed.url), by: actor } });
      return removed;
    });
  }

  /** A new secret at once: the next attempt of every pending delivery is signed with it, the old one is never produced again. */
  async rotateSecret(id: string, actor: string): Promise<{ endpoint: WebhookEndpoint; secret: string }> {
    const endpoint = await this.deps.store.transaction(async (tx) => {
      const now = this.deps.clock.now();
      const rotated = await tx.rotateWebhookSecret(id, now);
      await tx.appendAudit({ at: now, type: 'webhook.secret_rotated', actor: 'operator', data: { endpointId: id, secretVersion: rotated.secretVersion, by: actor } });
      return rotated;
    });
    return { endpoint, secret: await webhookSecret(this.deps.keys, endpoint.id, endpoint.secretVersion) };
  }

  /** The delivery log of an endpoint (removed ones included), newest entry first. */
  async deliveries(id: string, filter: { state?: WebhookDeliveryState; limit?: number } = {}): Promise<(WebhookDelivery & { log: WebhookAttempt[] })[]> {
    if (!(await this.deps.store.getWebhookEndpoint(id))) throw new AirlockError('not_found', 'No such webhook endpoint.');
    return this.deps.store.listWebhookDeliveries(id, filter);
  }
}

function urlHash(url: string): string {
  return createHash('sha256').update(url).digest('hex');
}
