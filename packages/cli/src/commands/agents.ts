import type { Command } from '../context.ts';
import type { AirlockHttp } from '@airlock/sdk';
import { keyValue, need, positiveInt, usage, UsageError } from '../args.ts';
import { printJson, table } from '../format.ts';
import { AGENT_DEPS_USAGE, agentDeps } from './agent-deps.ts';
import { AGENT_REVOKE_ALL_USAGE, agentRevokeAll, revokeAllTimeout } from './agent-revoke-all.ts';
import { NOSTR_EXPORT_USAGE, nostrExport, nostrExportOptions } from './nostr-export.ts';
import { AGENT_NOSTR_THRESHOLD_USAGE, agentNostrThreshold, nostrThresholdOptions } from './agent-nostr-threshold.ts';

interface AgentJson { id: string; name: string; accountIndex: number; keyIndex: number; address: string; status: string; createdAt: string }
interface AgentKeyJson { keyIndex: number; address: string; state: string; createdAt: string; rotatedAt?: string; retiredAt?: string }
interface RotationJson { agent: AgentJson; previous: { keyIndex: number; address: string }; current: { keyIndex: number; address: string }; deniedApprovals: string[]; sweep: { jobs: SweepJobJson[]; skipped: unknown[] } | { error: { code: string; message: string } } }
const COLUMNS = ['id', 'name', 'status', 'accountIndex', 'address'];
interface SweepJobJson { id: string; kind: string; asset?: string; amount: string; recipient?: string; state: string; transactionHash: string }
const SWEEP_COLUMNS = ['id', 'kind', 'asset', 'amount', 'recipient', 'state', 'transactionHash'];

function nonNegativeInt(text: string): number {
  if (!/^\d{1,9}$/.test(text)) throw new UsageError('--key-index must be a non-negative integer');
  return Number(text);
}

const KEY_COLUMNS = ['keyIndex', 'address', 'state', 'createdAt', 'rotatedAt', 'retiredAt'];

export const agentCommand: Command = {
  name: 'agent',
  summary: 'create | list | show | freeze | unfreeze | retire | sweep | rotate agents, their keys; deps (what a key granted); revoke-all (the incident button); nostr-export (offline key backup); nostr-threshold (Nostr key held by a FROST cluster)',
  usage: [
    'airlock agent create [--name NAME]... [--count N] [--prefix P] [--label k=v]...',
    'airlock agent list [--status active|frozen|retired] [--limit N] [--address 0x...]',
    'airlock agent show <id|name>',
    'airlock agent freeze|unfreeze <id|name>',
    'airlock agent retire <id|name> [--no-sweep]     (sweeps residual balances to the treasury unless --no-sweep)',
    'airlock agent sweep <id|name> [--key-index N] [--to treasury|current] [--reason R]',
    'airlock agent rotate <id|name>          (a new EVM key; prints the old and new address)',
    'airlock agent keys <id|name>            (every EVM key it ever had)',
    AGENT_DEPS_USAGE,
    AGENT_REVOKE_ALL_USAGE,
    NOSTR_EXPORT_USAGE,
    AGENT_NOSTR_THRESHOLD_USAGE,
  ].join('\n'),
  options: { 'no-sweep': { type: 'boolean' }, 'key-index': { type: 'string' }, to: { type: 'string' }, reason: { type: 'string' }, name: { type: 'string', multiple: true }, count: { type: 'string' }, prefix: { type: 'string' }, label: { type: 'string', multiple: true }, reconcile: { type: 'boolean' }, wait: { type: 'boolean' }, timeout: { type: 'string' }, status: { type: 'string' }, limit: { type: 'string' }, address: { type: 'string' }, ...nostrExportOptions, ...nostrThresholdOptions },
  async run(ctx, { values, positionals }) {
    const [sub, target] = positionals;
    // Offline, with the vault passphrase: never through the daemon, so it needs no admin token.
    if (sub === 'nostr-export') return nostrExport(ctx, values, target);
    // Usage before credentials: a typo should print usage, not ask for a token.
    if (!['create', 'list', 'show', 'freeze', 'unfreeze', 'retire', 'sweep', 'deps', 'rotate', 'keys', 'revoke-all', 'nostr-threshold'].includes(sub ?? '')) throw usage(this.usage);
    const http = ctx.admin();
    if (sub === 'nostr-threshold') return agentNostrThreshold(http, need(target, 'agent'), values, ctx.json);
    if (sub === 'deps') return agentDeps(http, need(target, 'agent'), values.reconcile === true, ctx.json);
    if (sub === 'revoke-all') return agentRevokeAll(http, need(target, 'agent'), { wait: values.wait === true, timeoutSeconds: revokeAllTimeout(values.timeout), json: ctx.json });
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
        if (values.address !== undefined) {
          const { body } = await http.request<{ agents: AgentJson[] }>('GET', `/v1/agents?${new URLSearchParams({ address: values.address as string, ...(values.status ? { status: values.status as string } : {}) })}`);
          return ctx.json ? printJson(body) : console.log(body.agents.length ? table(body.agents as never, COLUMNS) : 'no agent ever had this address');
        }
        const agents = await listAgents(http, values.status as string | undefined, values.limit !== undefined ? positiveInt(values.limit, 'limit') : undefined);
        return ctx.json ? printJson({ agents }) : console.log(table(agents as never, COLUMNS));
      }
      case 'show': {
        const agentPath = `/v1/agents/${encodeURIComponent(need(target, 'agent'))}`;
        const { body } = await http.request<AgentJson & { nostr: { pubkey: string; npub: string } }>('GET', agentPath);
        const { body: keys } = await http.request<{ keys: AgentKeyJson[] }>('GET', `${agentPath}/keys`);
        if (ctx.json) return printJson({ ...body, keys: keys.keys });
        console.log(table([{ ...body, npub: body.nostr.npub } as never], [...COLUMNS, 'createdAt', 'npub']));
        // After a rotation: every key, the earlier addresses too (they stay its own; funds or allowances may sit there).
        if (keys.keys.length > 1) console.log(`\nkeys:\n${table(keys.keys as never, KEY_COLUMNS)}`);
        return;
      }
      case 'keys': {
        const { body } = await http.request<{ agent: { id: string; name: string }; keys: AgentKeyJson[] }>('GET', `/v1/agents/${encodeURIComponent(need(target, 'agent'))}/keys`);
        return ctx.json ? printJson(body) : console.log(table(body.keys as never, KEY_COLUMNS));
      }
      case 'rotate': {
        const { body } = await http.request<RotationJson>('POST', `/v1/agents/${encodeURIComponent(need(target, 'agent'))}/rotate`);
        if (ctx.json) return printJson(body);
        console.log(`${body.agent.name}: key ${body.previous.keyIndex} -> ${body.current.keyIndex}`);
        console.log(`old address  ${body.previous.address}  (rotated: requests naming it are refused key_rotated)`);
        console.log(`new address  ${body.current.address}`);
        if (body.deniedApprovals.length) console.log(`denied pending approvals: ${body.deniedApprovals.join(', ')}`);
        const sweep = body.sweep;
        if ('error' in sweep) console.log(`old address not swept [${sweep.error.code}]: ${sweep.error.message} (retry: airlock agent sweep ${body.agent.name} --key-index ${body.previous.keyIndex} --to current)`);
        else if (sweep.jobs.length) console.log(`sweeping the old address to the new one (tracked until mined: airlock lifecycle jobs --agent ${body.agent.name}):\n${table(sweep.jobs as never, SWEEP_COLUMNS)}`);
        else console.log('old address: nothing to sweep');
        return;
      }
      case 'retire': {
        const sweep = values['no-sweep'] ? '?sweep=false' : '';
        const { body } = await http.request<AgentJson & { lifecycle: { keyState: string }; sweep: { jobs: SweepJobJson[]; skipped: { chain: string; asset: string; reason: string }[] } }>('POST', `/v1/agents/${encodeURIComponent(need(target, 'agent'))}/retire${sweep}`);
        if (ctx.json) return printJson(body);
        console.log(`${body.name}: ${body.status}; key ${body.lifecycle.keyState}`);
        if (body.sweep.jobs.length) console.log(table(body.sweep.jobs as never, SWEEP_COLUMNS));
        return;
      }
      case 'sweep': {
        const to = values.to as string | undefined;
        if (to !== undefined && to !== 'treasury' && to !== 'current') throw usage(this.usage);
        const body = {
          ...(values['key-index'] !== undefined ? { keyIndex: nonNegativeInt(values['key-index'] as string) } : {}),
          ...(to ? { to } : {}),
          ...(values.reason ? { reason: values.reason } : {}),
        };
        const { body: res } = await http.request<{ jobs: SweepJobJson[]; skipped: { chain: string; asset: string; reason: string }[] }>('POST', `/v1/agents/${encodeURIComponent(need(target, 'agent'))}/sweep`, body);
        if (ctx.json) return printJson(res);
        if (res.jobs.length) console.log(table(res.jobs as never, SWEEP_COLUMNS));
        for (const s of res.skipped) console.log(`skipped ${s.asset}: ${s.reason}`);
        if (!res.jobs.length && !res.skipped.length) console.log('nothing to sweep');
        return;
      }
      case 'freeze':
      case 'unfreeze': {
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
