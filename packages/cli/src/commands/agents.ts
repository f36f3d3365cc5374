import type { Command } from '../context.ts';
import type { AirlockHttp } from '@airlock/sdk';
import { keyValue, need, positiveInt, usage } from '../args.ts';
import { printJson, table } from '../format.ts';
import { AGENT_DEPS_USAGE, agentDeps } from './agent-deps.ts';
import { NOSTR_EXPORT_USAGE, nostrExport, nostrExportOptions } from './nostr-export.ts';

interface AgentJson { id: string; name: string; accountIndex: number; address: string; status: string; createdAt: string }
const COLUMNS = ['id', 'name', 'status', 'accountIndex', 'address'];

export const agentCommand: Command = {
  name: 'agent',
  summary: 'create | list | show | freeze | unfreeze | retire agents; deps (what a key granted); nostr-export (offline key backup)',
  usage: [
    'airlock agent create [--name NAME]... [--count N] [--prefix P] [--label k=v]...',
    'airlock agent list [--status active|frozen|retired] [--limit N]',
    'airlock agent show <id|name>',
    'airlock agent freeze|unfreeze|retire <id|name>',
    AGENT_DEPS_USAGE,
    NOSTR_EXPORT_USAGE,
  ].join('\n'),
  options: { name: { type: 'string', multiple: true }, count: { type: 'string' }, prefix: { type: 'string' }, label: { type: 'string', multiple: true }, reconcile: { type: 'boolean' }, status: { type: 'string' }, limit: { type: 'string' }, ...nostrExportOptions },
  async run(ctx, { values, positionals }) {
    const [sub, target] = positionals;
    // Offline, with the vault passphrase: never through the daemon, so it needs no admin token.
    if (sub === 'nostr-export') return nostrExport(ctx, values, target);
    // Usage before credentials: a typo should print usage, not ask for a token.
    if (!['create', 'list', 'show', 'freeze', 'unfreeze', 'retire', 'deps'].includes(sub ?? '')) throw usage(this.usage);
    const http = ctx.admin();
    if (sub === 'deps') return agentDeps(http, need(target, 'agent'), values.reconcile === true, ctx.json);
    switch (sub) {
      case 'create': {
        const labels = Object.fromEntries(((values.label as string[]) ?? []).map((kv) => keyValue(kv, 'label')));
        const body = {
          ...(values.name ? { names: values.name } : {}),
          ...(values.count !== undefined ? { count: positiveInt(values.count, 'count') } : {}),
          ...(values.prefix ? { prefix: values.prefix } : {}),
          ...(Object.keys(labels).length ? { labels } : {}),
        };
        const { body: res } = await http.request<{ agents: AgentJson[] }>('POST', '/v1/agents', body);
        if (ctx.json) return printJson(res);
        console.log(res.agents.length > 20 ? `created ${res.agents.length} agents (first: ${res.agents[0]!.name}, last: ${res.agents.at(-1)!.name})` : table(res.agents as never, COLUMNS));
        return;
      }
      case 'list': {
        const agents = await listAgents(http, values.status as string | undefined, values.limit !== undefined ? positiveInt(values.limit, 'limit') : undefined);
        return ctx.json ? printJson({ agents }) : console.log(table(agents as never, COLUMNS));
      }
      case 'show': {
        const { body } = await http.request<AgentJson & { nostr: { pubkey: string; npub: string } }>('GET', `/v1/agents/${encodeURIComponent(need(target, 'agent'))}`);
        return ctx.json ? printJson(body) : console.log(table([{ ...body, npub: body.nostr.npub } as never], [...COLUMNS, 'createdAt', 'npub']));
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

const PAGE = 1000;

/** Every agent (or the first `limit`), following the server's `after` cursor page by page. */
async function listAgents(http: AirlockHttp, status: string | undefined, limit: number | undefined): Promise<AgentJson[]> {
  const agents: AgentJson[] = [];
  for (;;) {
    const want = Math.min(PAGE, limit === undefined ? PAGE : limit - agents.length);
    const q = new URLSearchParams({ ...(status ? { status } : {}), limit: String(want), ...(agents.length ? { after: agents.at(-1)!.id } : {}) });
    const { body } = await http.request<{ agents: AgentJson[] }>('GET', `/v1/agents?${q}`);
    agents.push(...body.agents);
    if (body.agents.length < want || agents.length === limit) return agents;
  }
}
