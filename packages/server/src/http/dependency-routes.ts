// The dependency map (issue 14): what an agent's key handed out, and with `?reconcile=true` what of it is live.
import type { z } from 'zod';
import { buildDependencyMap, reconcileDependencyMap, type DependencyMap } from '@airlock/core';
import type { AirlockHolder } from './holder.ts';
import type { RouteSpec } from './route-table.ts';
import * as D from './dependency-schemas.ts';

const OPERATOR = 'admin';
const iso = (ms: number) => new Date(ms).toISOString();

export function dependencyMapJson(map: DependencyMap): z.output<typeof D.DependencyMapResponse> {
  return {
    agent: map.agent,
    generatedAt: iso(map.generatedAt),
    reconciled: map.reconciled,
    grants: map.grants.map(({ agentId: _a, domain: _d, amount, createdAt, ...g }) => ({ ...g, amount: amount.toString(), createdAt: iso(createdAt) })),
    authorizations: map.authorizations.map(({ domain: _d, value, ...a }) => ({ ...a, value: value.toString() })),
    sessions: map.sessions.map((s) => ({ ...s, createdAt: iso(s.createdAt), expiresAt: iso(s.expiresAt) })),
    approvals: map.approvals.map((a) => ({ ...a, createdAt: iso(a.createdAt), expiresAt: iso(a.expiresAt) })),
    lightningPayments: map.lightningPayments.map((l) => ({ ...l, amountMsat: l.amountMsat.toString(), createdAt: iso(l.createdAt) })),
    nwcConnections: map.nwcConnections,
    notes: map.notes,
  };
}

export function buildDependencyRoutes(holder: AirlockHolder): RouteSpec[] {
  return [
    {
      method: 'get', path: '/v1/agents/:id/dependencies', operationId: 'getAgentDependencies', summary: "What an agent's key handed out (allowances, permits, authorizations, sessions, approvals, payments in flight, connections); `?reconcile=true` reads the chain", tag: 'agents', auth: 'admin',
      query: D.DependencyMapParams, responses: { 200: D.DependencyMapResponse }, errors: [404],
      handler: async (c, { query }) => {
        const airlock = holder.get();
        const map = await buildDependencyMap(airlock.store, c.req.param('id')!, airlock.deps.clock.now());
        const reconcile = (query as { reconcile?: 'true' | 'false' }).reconcile === 'true';
        return c.json(dependencyMapJson(reconcile ? await reconcileDependencyMap(map, airlock.chainReader) : map));
      },
    },
    {
      method: 'post', path: '/v1/agents/:id/revoke-all', operationId: 'revokeAllAgent', summary: "The incident button: freeze the agent, revoke its sessions, deny its pending approvals, then sign and submit the on-chain revocations of everything its keys granted (audited `agent.revoke_all`, `lifecycle.signed`)", tag: 'agents', auth: 'admin',
      responses: { 200: D.RevokeAllResponse }, errors: [403, 404],
      handler: async (c) => c.json(await holder.get().revokeAll.revokeAll(c.req.param('id')!, OPERATOR)),
    },
  ];
}
