import { approverClient, type ApprovalView } from '@airlock/sdk/approvals';
import type { Command } from '../context.ts';
import { printJson, table } from '../format.ts';
import { need, usage, UsageError } from '../args.ts';
import { readApproverKey } from './approvers.ts';
import { escapedJson } from '../escaped-json.ts';

interface ApprovalJson { id: string; agentId: string; action: string; state: string; expiresAt: string; summary: { intent?: { summary?: string }; violations?: { rule: string }[] }; quorum?: Requirement[] }

/**
 * One requirement of a quorum approval. `operator` marks the operator's own: a tier the operator decides that no
 * quorum of its layer or a more trusted one stands in for, or a tripped breaker; no vote counts for it, only the
 * admin token's approve (docs/api.md "Approvals by quorum").
 */
type Requirement = NonNullable<ApprovalView['quorum']>[number] & { operator?: { approvedBy?: string } };

export const approvalsCommand: Command = {
  name: 'approvals',
  summary: 'list | approve | deny requests waiting for a human; view | vote as an approver',
  usage: [
    'airlock approvals list [--state pending|approved|denied|expired|all] [--agent A]',
    'airlock approvals approve <id>',
    'airlock approvals deny <id> [--reason TEXT]',
    'airlock approvals view <id> --key FILE                      (an approver: what the request asks, the quorum, the votes)',
    'airlock approvals vote <id> approve|reject --key FILE [--digest HEX] [--comment TEXT]',
    '    signs the vote with the approver key file (no admin token); --digest: vote on exactly the digest you reviewed',
  ].join('\n'),
  options: { state: { type: 'string' }, agent: { type: 'string' }, reason: { type: 'string' }, key: { type: 'string' }, digest: { type: 'string' }, comment: { type: 'string' } },
  async run(ctx, { values, positionals }) {
    const [sub, id, decision] = positionals;
    // Usage before credentials: a typo should print usage, not ask for a token.
    if (!['list', 'approve', 'deny', 'view', 'vote'].includes(sub ?? '')) throw usage(this.usage);
    if (sub === 'view' || sub === 'vote') {
      // An approver acts with their own key, never the admin token.
      const approvalId = need(id, 'id');
      if (sub === 'vote' && decision !== 'approve' && decision !== 'reject') throw new UsageError('vote: approve or reject');
      if (!values.key) throw new UsageError('--key: the approver key file `airlock approver add` wrote');
      const key = readApproverKey(String(values.key));
      const client = approverClient({ url: ctx.url, approver: key.approver, secretKey: key.secretKey });
      const answer = sub === 'view'
        ? await client.view(approvalId)
        : await client.vote(approvalId, decision as 'approve' | 'reject', { ...(values.digest ? { digest: String(values.digest).toLowerCase() } : {}), ...(values.comment ? { comment: String(values.comment) } : {}) });
      return ctx.json ? printJson(answer) : console.log(describeApproval(answer));
    }
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
        if (ctx.json) return printJson(body);
        // An approve still pending was the operator's part of a quorum approval: recorded, the votes still to come.
        const waiting = sub === 'approve' && body.state === 'pending' ? ` (the operator's approval is recorded; waiting for ${body.quorum?.filter((q) => !q.operator).map(describeRequirement).join(' and ')})` : '';
        return console.log(`${body.id}: ${body.state}${waiting}`);
      }
      default:
        throw usage(this.usage);
    }
  },
};

/** One approval as an approver reads it: what it asks, where it stands, who voted. */
export function describeApproval(a: ApprovalView): string {
  const needs = (a.quorum ?? []).map(describeRequirement).join(' and ');
  const votes = (a.votes ?? []).map((v) => `${v.approver} ${v.decision}${v.comment ? ` (${v.comment})` : ''}`).join(', ');
  return [
    `${a.id}: ${a.state}${a.approvers?.length ? ` by ${a.approvers.join(', ')}` : ''}`,
    `  request: ${a.summary.intent?.summary ?? a.action} (agent ${a.agentId})`,
    ...nostrEventLines(a),
    `  digest:  ${a.digest}`,
    ...(needs ? [`  needs:   ${needs}`] : []),
    `  votes:   ${votes || '(none)'}`,
    ...(a.state === 'pending' ? [`  expires: ${a.expiresAt}`] : []),
  ].join('\n');
}

/** "2 of treasury/risk", or "the operator" (approved by whom, once given) for the operator's requirement. */
function describeRequirement(q: Requirement): string {
  if (!q.operator) return `${q.min} of ${q.groups.join('/')}`;
  return q.operator.approvedBy === undefined ? 'the operator' : `the operator (approved by ${q.operator.approvedBy})`;
}

/** A held Nostr event's content and tags, which its summary leaves out and a human must read before voting. */
function nostrEventLines(a: ApprovalView): string[] {
  const event = a.request as { content?: unknown; tags?: unknown } | undefined;
  if (!a.action.startsWith('nostr.') || !event || typeof event !== 'object') return [];
  // Escaped JSON: a control or format character in the content cannot forge or reorder lines of this view.
  return [`  content: ${escapedJson(event.content ?? '')}`, `  tags:    ${escapedJson(event.tags ?? [])}`];
}
