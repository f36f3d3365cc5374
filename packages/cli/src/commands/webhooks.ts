import type { Command } from '../context.ts';
import { printJson, table } from '../format.ts';
import { need, positiveInt, usage } from '../args.ts';

interface EndpointJson { id: string; url: string; events: string[]; description?: string; secretVersion: number; createdAt: string; removedAt?: string }
interface AttemptJson { attempt: number; outcome: string; httpStatus?: number; errorClass?: string; startedAt: string; durationMs: number }
interface DeliveryJson { eventId: string; eventType: string; auditSeq: number; state: string; attempts: number; nextAttemptAt: string; log: AttemptJson[] }

export const webhookCommand: Command = {
  name: 'webhook',
  summary: 'add | list | remove | rotate | deliveries: signed alerts to your receivers',
  usage: [
    'airlock webhook add <url> [--events alert.*,approval.*,breaker.*] [--description TEXT]',
    'airlock webhook list [--all]',
    'airlock webhook remove <id>',
    'airlock webhook rotate <id>',
    'airlock webhook deliveries <id> [--state pending|delivered|failed|cancelled] [--limit N]',
  ].join('\n'),
  options: { events: { type: 'string' }, description: { type: 'string' }, all: { type: 'boolean' }, state: { type: 'string' }, limit: { type: 'string' } },
  async run(ctx, { values, positionals }) {
    const [sub, target] = positionals;
    // Usage before credentials: a typo should print usage, not ask for a token.
    if (!['add', 'list', 'remove', 'rotate', 'deliveries'].includes(sub ?? '')) throw usage(this.usage);
    const http = ctx.admin();
    const printSecret = (res: { endpoint: EndpointJson; secret: string }, what: string) => {
      if (ctx.json) return printJson(res);
      console.log(`${what} ${res.endpoint.id} (${res.endpoint.events.join(', ')}), secret version ${res.endpoint.secretVersion}`);
      console.log('SECRET (shown once; the receiver verifies Airlock-Signature with it):');
      console.log(`  ${res.secret}`);
    };
    switch (sub) {
      case 'add': {
        const body = {
          url: need(target, 'url'),
          ...(values.events ? { events: String(values.events).split(',').map((e) => e.trim()).filter(Boolean) } : {}),
          ...(values.description ? { description: String(values.description) } : {}),
        };
        const { body: res } = await http.request<{ endpoint: EndpointJson; secret: string }>('POST', '/v1/webhooks', body);
        return printSecret(res, 'webhook');
      }
      case 'list': {
        const { body } = await http.request<{ endpoints: EndpointJson[] }>('GET', `/v1/webhooks${values.all ? '?all=true' : ''}`);
        if (ctx.json) return printJson(body);
        return console.log(table(body.endpoints.map((e) => ({ ...e, events: e.events.join(',') })), ['id', 'url', 'events', 'secretVersion', 'createdAt', 'removedAt', 'description']));
      }
      case 'remove': {
        const { body } = await http.request<{ endpoint: EndpointJson }>('DELETE', `/v1/webhooks/${encodeURIComponent(need(target, 'id'))}`);
        return ctx.json ? printJson(body) : console.log(`${body.endpoint.id}: removed at ${body.endpoint.removedAt}`);
      }
      case 'rotate': {
        const { body } = await http.request<{ endpoint: EndpointJson; secret: string }>('POST', `/v1/webhooks/${encodeURIComponent(need(target, 'id'))}/rotate-secret`);
        return printSecret(body, 'new secret for');
      }
      case 'deliveries': {
        const q = new URLSearchParams({ ...(values.state ? { state: String(values.state) } : {}), ...(values.limit ? { limit: String(positiveInt(values.limit, 'limit')) } : {}) });
        const { body } = await http.request<{ deliveries: DeliveryJson[] }>('GET', `/v1/webhooks/${encodeURIComponent(need(target, 'id'))}/deliveries?${q}`);
        if (ctx.json) return printJson(body);
        return console.log(table(body.deliveries.map((d) => {
          const last = d.log.at(-1);
          return { ...d, last: last ? `${last.outcome} ${last.httpStatus ?? last.errorClass ?? ''} (${last.durationMs} ms)`.trim() : '-', next: d.state === 'pending' ? d.nextAttemptAt : undefined };
        }), ['eventId', 'eventType', 'auditSeq', 'state', 'attempts', 'last', 'next']));
      }
      default:
        throw usage(this.usage);
    }
  },
};
