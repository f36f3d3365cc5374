// Airlock lists approvals for operators only (GET /v1/approvals is admin); an agent can read one approval it
// knows the id of (GET /v1/approvals/{id}). So this server remembers the ids from the 202 answers its own tool
// calls got, and the model may add ids it learnt elsewhere.
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
    'Requests of yours that wait for a human to approve them (a transfer, signature or payment above an approval threshold), with their state. Lists those requested through this server since it started, plus any approvalIds you pass. Set includeDecided to also see approved, denied and expired ones (an approved one carries its signature).',
  input: {
    approvalIds: z.array(z.string().regex(/^apr_[0-9a-f]{16}$/, 'an approval id like apr_0123456789abcdef')).max(100).optional().describe('Other approval ids to check (from an earlier approval_required error).'),
    includeDecided: z.boolean().default(false).describe('Also list approvals that are no longer pending. Default false.'),
  },
  annotations: { readOnlyHint: true, openWorldHint: false },
  async run(ctx, args) {
    const ids = [...new Set([...ctx.approvals.keys(), ...(args.approvalIds ?? [])])];
    const approvals = [];
    const unknown: string[] = [];
    for (const id of ids) {
      try {
        const { body: a } = await ctx.http.request<ApprovalAnswer>('GET', `/v1/approvals/${id}`);
        if (a.state !== 'pending' && !args.includeDecided) continue;
        approvals.push({
          id: a.id,
          state: a.state,
          action: a.action,
          ...(ctx.approvals.get(id) ? { requestedBy: ctx.approvals.get(id)!.tool, requestedAt: ctx.approvals.get(id)!.requestedAt } : {}),
          ...(a.summary?.intent?.summary ? { request: a.summary.intent.summary } : {}),
          thresholds: (a.summary?.violations ?? []).map((v) => ({ rule: v.rule, code: v.code, ...(v.limit ? { limit: v.limit } : {}), ...(v.requested ? { requested: v.requested } : {}) })),
          expiresAt: a.expiresAt,
          ...(a.decidedAt ? { decidedAt: a.decidedAt } : {}),
          ...(a.result ? { result: { ...(a.result.signature ? { signature: a.result.signature } : {}), ...(a.result.transactionHash ? { transactionHash: a.result.transactionHash } : {}) } } : {}),
        });
      } catch (e) {
        if (e instanceof AirlockApiError && e.code === 'not_found') unknown.push(id);
        else throw e;
      }
    }
    return {
      approvals,
      ...(unknown.length ? { unknownIds: unknown } : {}),
      scope: 'Approvals requested through this MCP server since it started, plus the ids given; Airlock offers agents no list of their own.',
    };
  },
});
