// Child sessions: an agent derives narrower sessions for its sub-agents from its own (docs/api.md, "Child sessions").
import { z } from 'zod';
import { ACTIONS, CHILD_LIST_DEFAULT_LIMIT, CHILD_LIST_MAX_LIMIT, type DeriveSessionInput } from '@airlock/core';
import { apiSchema } from './api-schemas.ts';
import type { AirlockHolder } from './holder.ts';
import { agentOf } from './request-context.ts';
import type { RouteSpec } from './route-table.ts';
import { IssuedSessionResponse, SessionSchema, iso, sessionBudget, sessionChainId } from './schemas.ts';
import { sessionJson } from './serialize.ts';

export const DeriveChildSessionRequest = apiSchema(
  'DeriveChildSessionRequest',
  z.strictObject({
    actions: z.array(z.enum(ACTIONS)).min(1).optional().describe("A subset of this session's actions. Default: all of them."),
    chains: z.array(sessionChainId).optional().describe("A subset of this session's chains (any chains when this session has none). Default: this session's."),
    budgets: z.array(sessionBudget).optional().describe("The child's own sub-budgets, each at most what this session (and every session above it) has left in that asset. Its spending is charged to this session's budgets too."),
    ttlSeconds: z.number().int().positive().optional().describe("Lifetime from now; or expiresAt. Default: this session's expiry, which the child can never outlive."),
    expiresAt: iso.optional(),
    label: z.string().max(200).optional(),
  }),
);

const SessionBudgetUseSchema = z.object({
  sessionId: z.string().describe('This session, or a session above it (its parent, ...)'),
  asset: z.string(),
  window: z.string(),
  max: z.string(),
  used: z.string().describe('Charged in the window, held amounts included, by this session and every session derived from it'),
  remaining: z.string(),
});
export const ListChildSessionsParams = z.object({
  includeInactive: z.enum(['true', 'false']).optional().describe('true: revoked and expired sessions too (default: live ones only)'),
  after: z.string().max(200).optional().describe('The `next` of the previous page'),
  limit: z.coerce.number().int().min(1).max(CHILD_LIST_MAX_LIMIT).optional().describe(`Sessions per page (default ${CHILD_LIST_DEFAULT_LIMIT})`),
});
export const ChildSessionPageResponse = apiSchema(
  'ChildSessionPage',
  z.object({ sessions: z.array(SessionSchema), next: z.string().optional().describe('Present when there may be more: pass as `after` for the next page') }),
);

export const SessionBudgetsResponse = apiSchema('SessionBudgets', z.object({ budgets: z.array(SessionBudgetUseSchema) }));

export function buildChildSessionRoutes(holder: AirlockHolder): RouteSpec[] {
  const A = () => holder.get();
  return [
    {
      method: 'post', path: '/v1/session/children', operationId: 'deriveChildSession', summary: 'Derive a narrower session for a sub-agent from this one (the token is shown once)', tag: 'agent', auth: 'agent',
      body: DeriveChildSessionRequest, responses: { 201: IssuedSessionResponse }, errors: [403],
      handler: async (c, { body }) => {
        const b = body as z.infer<typeof DeriveChildSessionRequest>;
        const input: DeriveSessionInput = {
          ...(b.actions !== undefined ? { actions: b.actions } : {}),
          ...(b.chains !== undefined ? { chains: b.chains } : {}),
          ...(b.budgets !== undefined ? { budgets: b.budgets } : {}),
          ...(b.ttlSeconds !== undefined ? { ttlSeconds: b.ttlSeconds } : {}),
          ...(b.expiresAt !== undefined ? { expiresAt: isoTime(b.expiresAt) } : {}),
          ...(b.label !== undefined ? { label: b.label } : {}),
        };
        const { session, token } = await A().childSessions.derive(agentOf(c), input);
        return c.json({ session: sessionJson(session), token }, 201);
      },
    },
    {
      method: 'get', path: '/v1/session/children', operationId: 'listChildSessions', summary: 'Sessions derived from this one, at any depth, oldest first, paged (live ones unless includeInactive=true)', tag: 'agent', auth: 'agent',
      query: ListChildSessionsParams, responses: { 200: ChildSessionPageResponse },
      handler: async (c, { query }) => {
        const q = query as z.infer<typeof ListChildSessionsParams>;
        const page = await A().childSessions.list(agentOf(c), {
          includeInactive: q.includeInactive === 'true',
          ...(q.after !== undefined ? { after: q.after } : {}),
          ...(q.limit !== undefined ? { limit: q.limit } : {}),
        });
        return c.json({ sessions: page.sessions.map(sessionJson), ...(page.next !== undefined ? { next: page.next } : {}) });
      },
    },
    {
      method: 'post', path: '/v1/session/children/:id/revoke', operationId: 'revokeChildSession', summary: 'Revoke a session derived from this one, and every session derived from it', tag: 'agent', auth: 'agent',
      responses: { 200: SessionSchema }, errors: [404],
      handler: async (c) => c.json(sessionJson(await A().childSessions.revoke(agentOf(c), c.req.param('id')!))),
    },
    {
      method: 'get', path: '/v1/session/budgets', operationId: 'getSessionBudgets', summary: "This session's budgets and those of the sessions above it: used and left", tag: 'agent', auth: 'agent',
      responses: { 200: SessionBudgetsResponse },
      handler: async (c) => {
        const budgets = await A().childSessions.budgets(agentOf(c));
        return c.json({ budgets: budgets.map((b) => ({ sessionId: b.sessionId, asset: b.asset, window: b.window, max: b.max.toString(), used: b.used.toString(), remaining: b.remaining.toString() })) });
      },
    },
  ];
}

function isoTime(text: string): number {
  const ms = Date.parse(text);
  // NaN is refused by the service (expiresAt: a time in the future) with the same code as a past time.
  return Number.isFinite(ms) ? ms : Number.NaN;
}
