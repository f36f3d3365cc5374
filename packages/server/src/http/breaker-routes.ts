// Circuit breakers for operators: what tripped and why, and re-opening (docs/policy.md, "Detectors and circuit breakers").
import type { z } from 'zod';
import type { BreakerRecord } from '@airlock/core';
import type { AirlockHolder } from './holder.ts';
import type { RouteSpec } from './route-table.ts';
import * as B from './breaker-schemas.ts';

const OPERATOR = 'admin';
const iso = (ms: number) => new Date(ms).toISOString();

export function breakerJson(b: BreakerRecord): z.output<typeof B.BreakerSchema> {
  return {
    id: b.id, detector: b.detector, type: b.type, action: b.action, scope: b.scope, ...(b.group ? { group: b.group } : {}), agentId: b.agentId,
    policyVersion: b.policyVersion, figures: b.figures, message: b.message, agents: b.agents, state: b.state, trippedAt: iso(b.trippedAt), trippedSeq: b.trippedSeq,
    ...(b.resetAt !== undefined ? { resetAt: iso(b.resetAt) } : {}),
    ...(b.resetBy !== undefined ? { resetBy: b.resetBy } : {}),
    ...(b.resetSeq !== undefined ? { resetSeq: b.resetSeq } : {}),
  };
}

export function buildBreakerRoutes(holder: AirlockHolder): RouteSpec[] {
  const breakers = () => holder.get().signing.breakers;
  return [
    {
      method: 'get', path: '/v1/breakers', operationId: 'listBreakers', summary: 'Circuit breakers, newest first (default: the tripped ones), with the detector, its figures and the agents they bind', tag: 'breakers', auth: 'admin', query: B.ListBreakersParams,
      responses: { 200: B.BreakerListResponse },
      handler: async (c, { query }) => {
        const state = (query as { state?: 'tripped' | 'reset' | 'all' }).state ?? 'tripped';
        const list = await breakers().list({ ...(state !== 'all' ? { state } : {}), limit: 500 });
        return c.json({ breakers: list.map(breakerJson) });
      },
    },
    {
      method: 'get', path: '/v1/breakers/:id', operationId: 'getBreaker', summary: 'One circuit breaker', tag: 'breakers', auth: 'admin',
      responses: { 200: B.BreakerSchema }, errors: [404],
      handler: async (c) => c.json(breakerJson(await breakers().get(c.req.param('id')!))),
    },
    {
      method: 'post', path: '/v1/breakers/:id/reset', operationId: 'resetBreaker', summary: 'Re-open a tripped breaker (audited `breaker.reset`): unfreezes the agents it froze, ends its approval hold', tag: 'breakers', auth: 'admin',
      responses: { 200: B.BreakerResetResponse }, errors: [404, 409],
      handler: async (c) => {
        const reset = await breakers().reset(c.req.param('id')!, OPERATOR);
        return c.json({ ...breakerJson(reset), unfrozen: reset.unfrozen, keptFrozen: reset.keptFrozen });
      },
    },
  ];
}
