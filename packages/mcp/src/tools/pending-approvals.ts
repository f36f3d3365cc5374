// The agent's approvals as Airlock lists them for its session (GET /v1/approvals), marked with the tool call
// that asked for them when it was one of this server's.
import { z } from 'zod';
import { AirlockApiError } from '@airlock/sdk';
import { defineTool } from './tool.ts';

interface ApprovalAnswer {
  id: string;
  action: string;
  state: string;
  expiresAt: string;
  decidedAt?: string;
  summary?: { intent?: { summary?: string }; violations?: { rule: string; code: string; limit?: string; requested?: string }[] };
  result?: { signature?: string; transactionHash?: string };
}

export const pendingApprovalsTool = defineTool({
  name: 'list_pending_approvals',
  title: 'My pending approvals',
  description:
    'Requests of yours that wait for a human to approve them (a transfer, signature or payment above an approval threshold), with their state. Lists every approval of your own, however it was requested, plus any approvalIds you pass. Set includeDecided to also see approved, denied and expired ones (an approved one carries its signature).',
  input: {
    approvalIds: z.array(z.string().regex(/^apr_[0-9a-f]{16}$/, 'an approval id like apr_0123456789abcdef')).max(100).optional().describe('Other approval ids to check (from an earlier approval_required error).'),
    includeDecided: z.boolean().default(false).describe('Also list approvals that are no longer pending. Default false.'),
  },
  annotations: { readOnlyHint: true, openWorldHint: false },
  async run(ctx, args) {
    // Airlock lists an agent's own approvals (GET /v1/approvals with the session token; never another agent's).
    const { body } = await ctx.http.request<{ approvals: ApprovalAnswer[] }>('GET', `/v1/approvals?state=${args.includeDecided ? 'all' : 'pending'}`);
    const listed = new Map(body.approvals.map((a) => [a.id, a]));
    // Ids the model passes that the list does not hold: read one by one (an old one past the list's limit), or unknown.
    const unknown: string[] = [];
    for (const id of new Set(args.approvalIds ?? [])) {
      if (listed.has(id)) continue;
      try {
        const { body: a } = await ctx.http.request<ApprovalAnswer>('GET', `/v1/approvals/${id}`);
        if (a.state === 'pending' || args.includeDecided) listed.set(a.id, a);
      } catch (e) {
        if (e instanceof AirlockApiError && e.code === 'not_found') unknown.push(id);
        else throw e;
      }
    }
    const approvals = [...listed.values()].map((a) => ({
      id: a.id,
      state: a.state,
      action: a.action,
      ...(ctx.approvals.get(a.id) ? { requestedBy: ctx.approvals.get(a.id)!.tool, requestedAt: ctx.approvals.get(a.id)!.requestedAt } : {}),
      ...(a.summary?.intent?.summary ? { request: a.summary.intent.summary } : {}),
      thresholds: (a.summary?.violations ?? []).map((v) => ({ rule: v.rule, code: v.code, ...(v.limit ? { limit: v.limit } : {}), ...(v.requested ? { requested: v.requested } : {}) })),
      expiresAt: a.expiresAt,
      ...(a.decidedAt ? { decidedAt: a.decidedAt } : {}),
      ...(a.result ? { result: { ...(a.result.signature ? { signature: a.result.signature } : {}), ...(a.result.transactionHash ? { transactionHash: a.result.transactionHash } : {}) } } : {}),
    }));
    return { approvals, ...(unknown.length ? { unknownIds: unknown } : {}) };
  },
});
