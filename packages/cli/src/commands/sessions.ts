import { ACTIONS } from '@airlock/core';
import type { Command } from '../context.ts';
import { printJson, table } from '../format.ts';
import { need, usage, UsageError } from '../args.ts';
import { escapedJson } from '../escaped-json.ts';

interface SessionJson { id: string; agentId: string; scope: { actions: string[]; chains: string[] }; expiresAt: string; revokedAt?: string; label?: string; parentId?: string }

export const sessionCommand: Command = {
  name: 'session',
  summary: 'issue | list | tree | revoke agent session credentials',
  usage: [
    'airlock session issue <agent> --ttl 1h --actions evm.transaction[,evm.typed_data,…] [--chains eip155:8453,…] [--budget <asset>:<max>:<window>]... [--label L]',
    `  --actions: one or more of ${ACTIONS.join(', ')} (a smart account's owner needs evm.user_operation, and evm.authorization to delegate)`,
    'airlock session list [--agent A] [--all]',
    'airlock session tree <agent> [--all]          the agent\'s sessions with the child sessions derived from each',
    'airlock session revoke <session-id>           (revokes every session derived from it too)',
  ].join('\n'),
  options: { ttl: { type: 'string' }, actions: { type: 'string' }, chains: { type: 'string' }, budget: { type: 'string', multiple: true }, label: { type: 'string' }, agent: { type: 'string' }, all: { type: 'boolean' } },
  async run(ctx, { values, positionals }) {
    const [sub, target] = positionals;
    // Usage before credentials: a typo should print usage, not ask for a token.
    if (!['issue', 'list', 'tree', 'revoke'].includes(sub ?? '')) throw usage(this.usage);
    const http = ctx.admin();
    switch (sub) {
      case 'issue': {
        const budgets = ((values.budget as string[]) ?? []).map(parseBudget);
        const body = {
          ttl: values.ttl ?? '1h',
          actions: String(values.actions ?? 'evm.transaction').split(','),
          ...(values.chains ? { chains: String(values.chains).split(',') } : {}),
          ...(budgets.length ? { budgets } : {}),
          ...(values.label ? { label: values.label } : {}),
        };
        const { body: res } = await http.request<{ session: SessionJson; token: string }>('POST', `/v1/agents/${encodeURIComponent(need(target, 'agent'))}/sessions`, body);
        if (ctx.json) return printJson(res);
        console.log(`session ${res.session.id} for ${target}, expires ${res.session.expiresAt}`);
        console.log('TOKEN (shown once):');
        console.log(`  ${res.token}`);
        return;
      }
      case 'list': {
        const q = new URLSearchParams({ ...(values.agent ? { agent: String(values.agent) } : {}), ...(values.all ? { all: 'true' } : {}) });
        const { body } = await http.request<{ sessions: SessionJson[] }>('GET', `/v1/sessions?${q}`);
        if (ctx.json) return printJson(body);
        return console.log(table(body.sessions.map((s) => ({ ...s, actions: s.scope.actions.join(','), chains: s.scope.chains.join(',') || '*' })), ['id', 'agentId', 'actions', 'chains', 'expiresAt', 'revokedAt']));
      }
      case 'tree': {
        const q = new URLSearchParams({ agent: need(target, 'agent'), ...(values.all ? { all: 'true' } : {}) });
        const { body } = await http.request<{ sessions: SessionJson[] }>('GET', `/v1/sessions?${q}`);
        if (ctx.json) return printJson(body);
        return console.log(sessionTree(body.sessions).join('\n'));
      }
      case 'revoke': {
        const { body } = await http.request<SessionJson>('POST', `/v1/sessions/${encodeURIComponent(need(target, 'session-id'))}/revoke`);
        return ctx.json ? printJson(body) : console.log(`${body.id}: revoked at ${body.revokedAt}`);
      }
      default:
        throw usage(this.usage);
    }
  },
};

/** `--budget <asset>:<max>:<window>`. Asset ids contain ':' themselves, so max and window are the last two fields. */
function parseBudget(spec: string): { asset: string; max: string; window: string } {
  const parts = spec.split(':');
  const window = parts.pop();
  const max = parts.pop();
  const asset = parts.join(':');
  if (!asset || !max || !/^\d+$/.test(max) || !window) throw new UsageError(`--budget: expected <asset>:<max base units>:<window>, e.g. eip155:8453/erc20:0x…:5000000:24h`);
  return { asset, max, window };
}

/**
 * Sessions as a tree: each operator-issued session with the sessions derived from it indented below. A session
 * whose parent is not in the list (not active, without --all) starts its own tree and names its parent.
 */
export function sessionTree(sessions: SessionJson[]): string[] {
  const ids = new Set(sessions.map((s) => s.id));
  const children = new Map<string, SessionJson[]>();
  for (const s of sessions) if (s.parentId !== undefined && ids.has(s.parentId)) (children.get(s.parentId) ?? children.set(s.parentId, []).get(s.parentId)!).push(s);
  const describe = (s: SessionJson) => [
    s.id, s.scope.actions.join(','), s.scope.chains.join(',') || '*', `expires ${s.expiresAt}`,
    // Quoted and escaped: an agent writes its child sessions' labels, and a control character or a line break in
    // one (stored before labels were checked) cannot redraw this line or forge another.
    ...(s.revokedAt ? [`revoked ${s.revokedAt}`] : []), ...(s.label ? [quoted(s.label)] : []),
  ].join('  ');
  const lines: string[] = [];
  const walk = (s: SessionJson, prefix: string, last: boolean, root: boolean) => {
    const orphan = root && s.parentId !== undefined ? `  (derived from ${s.parentId})` : '';
    lines.push(root ? describe(s) + orphan : `${prefix}${last ? '└─ ' : '├─ '}${describe(s)}`);
    const below = children.get(s.id) ?? [];
    below.forEach((c, i) => walk(c, root ? '' : prefix + (last ? '   ' : '│  '), i === below.length - 1, false));
  };
  for (const s of sessions) if (s.parentId === undefined || !ids.has(s.parentId)) walk(s, '', true, true);
  return lines.length ? lines : ['(no sessions)'];
}

/** A string an agent wrote, as a JSON string literal with every control or format character escaped (escapedJson). */
export function quoted(text: string): string {
  return escapedJson(text);
}
