import type { Command } from '../context.ts';
import { printJson, table } from '../format.ts';
import { need, usage } from '../args.ts';

interface ApprovalJson { id: string; agentId: string; action: string; state: string; expiresAt: string; summary: { intent?: { summary?: string }; violations?: { rule: string }[] } }

export const approvalsCommand: Command = {
  name: 'approvals',
  summary: 'list | approve | deny requests waiting for a human',
  usage: ['airlock approvals list [--state pending|approved|denied|expired|all] [--agent A]', 'airlock approvals approve <id>', 'airlock approvals deny <id> [--reason TEXT]'].join('\n'),
  options: { state: { type: 'string' }, agent: { type: 'string' }, reason: { type: 'string' } },
  async run(ctx, { values, positionals }) {
    const [sub, id] = positionals;
    // Usage before credentials: a typo should print usage, not ask for a token.
    if (!['list', 'approve', 'deny'].includes(sub ?? '')) throw usage(this.usage);
    const http = ctx.admin();
    switch (sub) {
      case 'list': {
        const q = new URLSearchParams({ ...(values.state ? { state: String(values.state) } : {}), ...(values.agent ? { agent: String(values.agent) } : {}) });
        const { body } = await http.request<{ approvals: ApprovalJson[] }>('GET', `/v1/approvals?${q}`);
        if (ctx.json) return printJson(body);
        return console.log(table(body.approvals.map((a) => ({ ...a, request: a.summary.intent?.summary, rule: a.summary.violations?.map((v) => v.rule).join(',') })), ['id', 'agentId', 'state', 'request', 'rule', 'expiresAt']));
      }
      case 'approve':
      case 'deny': {
        const { body } = await http.request<ApprovalJson>('POST', `/v1/approvals/${encodeURIComponent(need(id, 'id'))}/${sub}`, sub === 'deny' && values.reason ? { reason: values.reason } : {});
        return ctx.json ? printJson(body) : console.log(`${body.id}: ${body.state}`);
      }
      default:
        throw usage(this.usage);
    }
  },
};
