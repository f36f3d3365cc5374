import type { Command } from '../context.ts';
import { printJson, table } from '../format.ts';
import { need, usage } from '../args.ts';

interface BreakerJson { id: string; detector: string; action: string; scope: string; state: string; message: string; agents: string[]; trippedAt: string; figures: { observed: string; threshold: string; baseline?: string } }

/** `airlock breaker`: what the detectors tripped (docs/operations.md, "A circuit breaker tripped"), and re-opening. */
export const breakerCommand: Command = {
  name: 'breaker',
  summary: 'list | show | reset circuit breakers tripped by policy detectors',
  usage: ['airlock breaker list [--state tripped|reset|all]', 'airlock breaker show <id>', 'airlock breaker reset <id>     (audited; unfreezes what the breaker froze)'].join('\n'),
  options: { state: { type: 'string' } },
  async run(ctx, { values, positionals }) {
    const [sub, id] = positionals;
    // Usage before credentials: a typo should print usage, not ask for a token.
    if (!['list', 'show', 'reset'].includes(sub ?? '')) throw usage(this.usage);
    const http = ctx.admin();
    switch (sub) {
      case 'list': {
        const q = new URLSearchParams(values.state ? { state: String(values.state) } : {});
        const { body } = await http.request<{ breakers: BreakerJson[] }>('GET', `/v1/breakers?${q}`);
        if (ctx.json) return printJson(body);
        return console.log(table(body.breakers.map((b) => ({ ...b, agents: b.agents.length, observed: b.figures.observed, threshold: b.figures.threshold })), ['id', 'detector', 'action', 'scope', 'state', 'agents', 'observed', 'threshold', 'trippedAt']));
      }
      case 'show': {
        const { body } = await http.request<BreakerJson>('GET', `/v1/breakers/${encodeURIComponent(need(id, 'id'))}`);
        return printJson(body);
      }
      case 'reset': {
        const { body } = await http.request<BreakerJson & { unfrozen: string[]; keptFrozen?: { agentId: string; operatorFreeze: boolean; breakers: string[] }[] }>('POST', `/v1/breakers/${encodeURIComponent(need(id, 'id'))}/reset`, {});
        if (ctx.json) return printJson(body);
        const kept = (body.keptFrozen ?? []).map((k) => `${k.agentId} (${[k.operatorFreeze ? 'frozen by the operator' : '', ...k.breakers].filter(Boolean).join(', ')})`);
        return console.log(`${body.id}: ${body.state}${body.unfrozen.length ? `; unfrozen: ${body.unfrozen.join(', ')}` : ''}${kept.length ? `; still frozen: ${kept.join('; ')}` : ''}`);
      }
      default:
        throw usage(this.usage);
    }
  },
};
