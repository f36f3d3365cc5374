// Agent key rotation and attribution for operators (docs/operations.md, "Rotating an agent key").
import type { z } from 'zod';
import type { AgentKey } from '@airlock/core';
import type { AirlockHolder } from './holder.ts';
import type { RouteSpec } from './route-table.ts';
import * as K from './agent-key-schemas.ts';
import { agentJson } from './serialize.ts';

const OPERATOR = 'admin';
const iso = (ms: number) => new Date(ms).toISOString();

export function agentKeyJson(k: AgentKey): z.output<typeof K.AgentKeySchema> {
  return {
    keyIndex: k.keyIndex, address: k.address, state: k.state, createdAt: iso(k.createdAt),
    ...(k.rotatedAt !== undefined ? { rotatedAt: iso(k.rotatedAt) } : {}),
    ...(k.retiredAt !== undefined ? { retiredAt: iso(k.retiredAt) } : {}),
  };
}

export function buildAgentKeyRoutes(holder: AirlockHolder): RouteSpec[] {
  const operator = () => holder.get().operator;
  return [
    {
      method: 'post', path: '/v1/agents/:id/rotate', operationId: 'rotateAgentKey', summary: "Rotate the agent's EVM key: the next request signs with a new key, the old address stays attributable, pending EVM approvals are denied (audited `agent.key_rotated`)", tag: 'agents', auth: 'admin',
      responses: { 200: K.AgentKeyRotationResponse }, errors: [403, 404],
      handler: async (c) => {
        const r = await operator().rotateAgentKey(c.req.param('id')!, OPERATOR);
        return c.json({ agent: agentJson(r.agent), previous: r.previous, current: r.current, deniedApprovals: r.deniedApprovals });
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
