// Approvers and their signed votes on quorum approvals (docs/api.md "Approvals by quorum").
import type { AirlockHolder } from './holder.ts';
import type { RouteSpec } from './route-table.ts';
import type { ApprovalWaiters } from './approval-waiters.ts';
import * as S from './schemas.ts';
import { approvalJson, approverJson } from './serialize.ts';
import { AirlockError, isAirlockError, type AddApproverInput, type ErrorCode, type ViewInput, type VoteInput } from '@airlock/core';
import type { Context } from 'hono';
import type { AuthEdge } from './auth.ts';
import { clientAddress } from './client-address.ts';

const OPERATOR = 'admin';

/** Refusals of a signed post before its signature verified (approver-service.ts): the post proved nothing. */
const UNVERIFIED: ReadonlySet<ErrorCode> = new Set(['not_found', 'approver_unknown', 'vote_signature_invalid']);

/**
 * A signed vote or view takes no bearer token, so its failures are limited as a wrong token's are (auth.ts): per
 * remote address, in the app's failure limiter (AUTH_FAILURES_PER_MINUTE, then `429 rate_limited`), consulted only
 * after the post failed, so a vote whose signature verifies always passes. Nothing is written for a failed post.
 * `edge` is absent only when the routes are built for the OpenAPI document.
 */
async function limitedUnverified<T>(edge: AuthEdge | undefined, c: Context, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (e) {
    if (!edge || !isAirlockError(e) || !UNVERIFIED.has(e.code)) throw e;
    const now = edge.now();
    const key = `${clientAddress(c)} approver-signature`;
    const wait = edge.failures.retryAfterMs(key, now);
    if (wait > 0) throw new AirlockError('rate_limited', 'Too many signed posts that did not verify from this address; wait.', { details: { retryAfterSeconds: Math.ceil(wait / 1000) } });
    edge.failures.record(key, now);
    throw e;
  }
}

export function buildApproverRoutes(holder: AirlockHolder, waiters: ApprovalWaiters, edge?: AuthEdge): RouteSpec[] {
  const A = () => holder.get();
  return [
    {
      method: 'post', path: '/v1/approvers', operationId: 'createApprover', summary: 'Register an approver: a name, groups and the public key of their own Ed25519 key pair', tag: 'approvals', auth: 'admin', body: S.CreateApproverRequest,
      responses: { 201: S.ApproverSchema }, errors: [404, 409],
      handler: async (c, { body }) => c.json(approverJson(await A().approvers.addApprover(body as AddApproverInput, OPERATOR)), 201),
    },
    {
      method: 'get', path: '/v1/approvers', operationId: 'listApprovers', summary: 'List approvers (public keys only)', tag: 'approvals', auth: 'admin',
      responses: { 200: S.ApproverListResponse },
      handler: async (c) => c.json({ approvers: (await A().approvers.listApprovers()).map(approverJson) }),
    },
    {
      method: 'post', path: '/v1/approvers/:id/disable', operationId: 'disableApprover', summary: 'Disable an approver: their key stops working and their uncounted-yet votes stop counting', tag: 'approvals', auth: 'admin',
      responses: { 200: S.ApproverSchema }, errors: [404],
      handler: async (c) => c.json(approverJson(await A().approvers.disableApprover(c.req.param('id')!, OPERATOR))),
    },
    {
      // No bearer token: the vote's Ed25519 signature is the credential (an approver's CLI, the console, or a
      // webhook callback from the approver's own system can post it).
      method: 'post', path: '/v1/approvals/:id/votes', operationId: 'voteOnApproval', summary: "An approver's signed vote; the vote that meets the quorum grants and signs", tag: 'approvals', auth: 'none', body: S.VoteRequest,
      responses: { 200: S.ApprovalSchema }, errors: [400, 401, 403, 404, 409, 429],
      handler: async (c, { body }) => {
        const id = c.req.param('id')!;
        try {
          return c.json(approvalJson(await limitedUnverified(edge, c, () => A().approvers.castVote(id, body as VoteInput))));
        } finally {
          waiters.notify(id);
        }
      },
    },
    {
      method: 'post', path: '/v1/approvals/:id/view', operationId: 'viewApprovalAsApprover', summary: 'An eligible approver reads an approval before voting (signed read, no bearer token)', tag: 'approvals', auth: 'none', body: S.ViewApprovalRequest,
      responses: { 200: S.ApprovalSchema }, errors: [400, 401, 403, 404, 409, 429],
      handler: async (c, { body }) => c.json(approvalJson(await limitedUnverified(edge, c, () => A().approvers.viewApproval(c.req.param('id')!, body as ViewInput)))),
    },
  ];
}
