// Agent key rotation and attribution for operators (docs/operations.md, "Rotating an agent key").
import type { z } from 'zod';
import type { AgentKey } from '@airlock/core';
import type { AirlockHolder } from './holder.ts';
import type { RouteSpec } from './route-table.ts';
import * as K from './agent-key-schemas.ts';
import { agentJson } from './serialize.ts';
import { lifecycleJobJson } from './lifecycle-routes.ts';
import type { RotationReport } from '@airlock/core';

const OPERATOR = 'admin';
const iso = (ms: number) => new Date(ms).toISOString();

export function agentKeyJson(k: AgentKey): z.output<typeof K.AgentKeySchema> {
  return {
    keyIndex: k.keyIndex, address: k.address, state: k.state, createdAt: iso(k.createdAt),
    ...(k.rotatedAt !== undefined ? { rotatedAt: iso(k.rotatedAt) } : {}),
    ...(k.retiredAt !== undefined ? { retiredAt: iso(k.retiredAt) } : {}),
  };
}

function sweepJson(sweep: RotationReport['sweep']): z.output<typeof K.AgentKeyRotationResponse>['sweep'] {
  return 'error' in sweep ? { error: sweep.error } : { jobs: sweep.jobs.map(lifecycleJobJson), skipped: sweep.skipped };
}

export function buildAgentKeyRoutes(holder: AirlockHolder): RouteSpec[] {
  const operator = () => holder.get().operator;
  return [
    {
      method: 'post', path: '/v1/agents/:id/rotate', operationId: 'rotateAgentKey', summary: "Rotate the agent's EVM key: the next request signs with a new key, the old address stays attributable, pending EVM approvals are denied (audited `agent.key_rotated`)", tag: 'agents', auth: 'admin',
      responses: { 200: K.AgentKeyRotationResponse }, errors: [403, 404],
      handler: async (c) => {
        const { rotation: r, sweep } = await holder.get().lifecycle.rotate(c.req.param('id')!, OPERATOR);
        return c.json({ agent: agentJson(r.agent), previous: r.previous, current: r.current, deniedApprovals: r.deniedApprovals, sweep: sweepJson(sweep) });
      },
    },
    {
      method: 'get', path: '/v1/agents/:id/keys', operationId: 'listAgentKeys', summary: 'Every EVM key the agent ever had (index, address, state), oldest first', tag: 'agents', auth: 'admin',
      responses: { 200: K.AgentKeyListResponse }, errors: [404],
      handler: async (c) => {
        const { agent, keys } = await operator().listAgentKeys(c.req.param('id')!);
        return c.json({ agent: { id: agent.id, name: agent.name }, keys: keys.map(agentKeyJson) });
      },
    },
  ];
}
