import type { Command } from '../context.ts';
import { printJson, table } from '../format.ts';
import { need, positiveInt, usage } from '../args.ts';

interface JobJson { id: string; agentId: string; keyIndex: number; kind: string; purpose: string; asset?: string; amount: string; state: string; transactionHash?: string; createdAt: string }
interface OrphanJson { agentId: string; name: string; status: string; reason: string; lastActivityAt: string; balances: { keyIndex: number; asset: string; amount: string }[] }

/** `airlock lifecycle`: the jobs of the lifecycle path and orphaned wallets (docs/operations.md, "Retire, sweep, orphans"). */
export const lifecycleCommand: Command = {
  name: 'lifecycle',
  summary: 'jobs (sweeps and revocations signed on the lifecycle path) | orphans [--sweep]',
  usage: [
    'airlock lifecycle jobs [--agent A] [--state planned|signed|submitted|mined|failed|open] [--limit N]',
    'airlock lifecycle job <id>',
    'airlock lifecycle orphans [--sweep]     (--sweep: report them and sweep their balances to the treasury)',
  ].join('\n'),
  options: { agent: { type: 'string' }, state: { type: 'string' }, limit: { type: 'string' }, sweep: { type: 'boolean' } },
  async run(ctx, { values, positionals }) {
    const [sub, id] = positionals;
    if (!['jobs', 'job', 'orphans'].includes(sub ?? '')) throw usage(this.usage);
    const http = ctx.admin();
    switch (sub) {
      case 'jobs': {
        const q = new URLSearchParams({
          ...(values.agent ? { agent: String(values.agent) } : {}),
          ...(values.state ? { state: String(values.state) } : {}),
          ...(values.limit !== undefined ? { limit: String(positiveInt(values.limit, 'limit')) } : {}),
        });
        const { body } = await http.request<{ jobs: JobJson[] }>('GET', `/v1/lifecycle/jobs?${q}`);
        if (ctx.json) return printJson(body);
        return console.log(table(body.jobs as never, ['id', 'agentId', 'keyIndex', 'kind', 'purpose', 'asset', 'amount', 'state', 'transactionHash']));
      }
      case 'job': {
        const { body } = await http.request<JobJson>('GET', `/v1/lifecycle/jobs/${encodeURIComponent(need(id, 'id'))}`);
        return printJson(body);
      }
      case 'orphans': {
        type Answer = { orphans: OrphanJson[]; reported?: string[]; sweeps?: { agentId: string; jobIds: string[]; error?: string }[] };
        const { body } = values.sweep ? await http.request<Answer>('POST', '/v1/lifecycle/orphans/sweep', {}) : await http.request<Answer>('GET', '/v1/lifecycle/orphans');
        if (ctx.json) return printJson(body);
        const rows = body.orphans.map((o) => ({ ...o, balances: o.balances.map((b) => `${b.amount} ${b.asset} (key ${b.keyIndex})`).join('; ') || '-' }));
        console.log(table(rows as never, ['agentId', 'name', 'status', 'reason', 'lastActivityAt', 'balances']));
        for (const s of body.sweeps ?? []) console.log(`${s.agentId}: ${s.error ? `not swept (${s.error})` : `jobs ${s.jobIds.join(', ') || '(nothing to sweep)'}`}`);
        return;
      }
      default:
        throw usage(this.usage);
    }
  },
};
