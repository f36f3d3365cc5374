import type { Command } from '../context.ts';
import { printJson, table } from '../format.ts';

interface AgentJson { id: string; name: string; accountIndex: number; address: string; status: string; createdAt: string }
const COLUMNS = ['id', 'name', 'status', 'accountIndex', 'address'];

export const agentCommand: Command = {
  name: 'agent',
  summary: 'create | list | show | freeze | unfreeze | retire agents',
  usage: [
    'airlock agent create [--name NAME]... [--count N] [--prefix P] [--label k=v]...',
    'airlock agent list [--status active|frozen|retired] [--limit N]',
    'airlock agent show <id|name>',
    'airlock agent freeze|unfreeze|retire <id|name>',
  ].join('\n'),
  options: { name: { type: 'string', multiple: true }, count: { type: 'string' }, prefix: { type: 'string' }, label: { type: 'string', multiple: true }, status: { type: 'string' }, limit: { type: 'string' } },
  async run(ctx, { values, positionals }) {
    const [sub, target] = positionals;
    const http = ctx.admin();
    switch (sub) {
      case 'create': {
        const labels = Object.fromEntries(((values.label as string[]) ?? []).map((kv) => kv.split('=', 2) as [string, string]));
        const body = {
          ...(values.name ? { names: values.name } : {}),
          ...(values.count ? { count: Number(values.count) } : {}),
          ...(values.prefix ? { prefix: values.prefix } : {}),
          ...(Object.keys(labels).length ? { labels } : {}),
        };
        const { body: res } = await http.request<{ agents: AgentJson[] }>('POST', '/v1/agents', body);
        if (ctx.json) return printJson(res);
        console.log(res.agents.length > 20 ? `created ${res.agents.length} agents (first: ${res.agents[0]!.name}, last: ${res.agents.at(-1)!.name})` : table(res.agents as never, COLUMNS));
        return;
      }
      case 'list': {
        const q = new URLSearchParams({ ...(values.status ? { status: String(values.status) } : {}), limit: String(values.limit ?? 1000) });
        const { body: res } = await http.request<{ agents: AgentJson[] }>('GET', `/v1/agents?${q}`);
        return ctx.json ? printJson(res) : console.log(table(res.agents as never, COLUMNS));
      }
      case 'show': {
        const { body } = await http.request<AgentJson>('GET', `/v1/agents/${encodeURIComponent(need(target, 'agent'))}`);
        return ctx.json ? printJson(body) : console.log(table([body as never], [...COLUMNS, 'createdAt']));
      }
      case 'freeze':
      case 'unfreeze':
      case 'retire': {
        const { body } = await http.request<AgentJson>('POST', `/v1/agents/${encodeURIComponent(need(target, 'agent'))}/${sub}`);
        return ctx.json ? printJson(body) : console.log(`${body.name}: ${body.status}`);
      }
      default:
        throw usage(this.usage);
    }
  },
};

export function need(v: string | undefined, what: string): string {
  if (!v) throw new UsageError(`missing <${what}>`);
  return v;
}

export class UsageError extends Error {}
export function usage(text: string): UsageError {
  return new UsageError(`usage:\n${text}`);
}
