// Operators bind an agent's Nostr key to a threshold cluster (docs/custody.md, "Threshold cluster (FROST)"): from
// then on the agent's Nostr pubkey is the cluster's group key and its events are signed by threshold-many nodes,
// after the daemon's own decision.
import { hexToBytes } from '@noble/hashes/utils.js';
import { AirlockError, thresholdBindingView, type ThresholdBinding } from '@airlock/core';
import { encodeNpub } from '@airlock/keys';
import type { AirlockHolder } from './holder.ts';
import type { RouteSpec } from './route-table.ts';
import { prepareClusterBinding, type ClusterBindingRequest } from '../threshold/cluster-binding.ts';
import * as T from './threshold-schemas.ts';

const OPERATOR = 'admin';
const NAMESPACE = 'nostr';

function bindingJson(binding: ThresholdBinding, extra: { auditSeq?: number; replacedGroupKey?: string } = {}) {
  const view = thresholdBindingView(binding);
  return { agentId: view.agentId, groupKey: view.groupKey, npub: encodeNpub(hexToBytes(view.groupKey)), threshold: view.threshold, nodes: view.nodes, createdAt: new Date(view.createdAt).toISOString(), ...extra };
}

export function buildThresholdRoutes(holder: AirlockHolder): RouteSpec[] {
  const path = '/v1/agents/:id/nostr/threshold';
  return [
    {
      method: 'put', path, operationId: 'bindNostrThreshold', tag: 'agents', auth: 'admin', body: T.BindNostrThresholdRequest,
      summary: "Bind the agent's Nostr key to a FROST threshold cluster: every node must answer with this cluster's key; from the next request the agent's Nostr pubkey is the group key (audited `agent.threshold_bound`, without the tokens)",
      responses: { 200: T.NostrThresholdBindingSchema }, errors: [403, 404, 502, 503],
      handler: async (c, { body }) => {
        const airlock = holder.get();
        const agent = await airlock.thresholdBindings.resolveAgent(c.req.param('id')!);
        if (agent.status === 'retired') throw new AirlockError('agent_retired', 'A retired agent cannot be bound to a cluster.');
        const prepared = await prepareClusterBinding(airlock.deps.keys, agent.id, body as ClusterBindingRequest);
        const { binding, auditSeq, replaced } = await airlock.thresholdBindings.bind(agent.id, prepared, OPERATOR);
        return c.json(bindingJson(binding, { auditSeq, ...(replaced ? { replacedGroupKey: replaced } : {}) }));
      },
    },
    {
      method: 'get', path, operationId: 'getNostrThreshold', tag: 'agents', auth: 'admin',
      summary: "The threshold cluster the agent's Nostr key is bound to (404 when its key is the vault's)",
      responses: { 200: T.NostrThresholdBindingSchema }, errors: [404],
      handler: async (c) => {
        const binding = await holder.get().thresholdBindings.get(c.req.param('id')!, NAMESPACE);
        if (!binding) throw new AirlockError('not_found', "The agent's Nostr key is not bound to a threshold cluster.");
        return c.json(bindingJson(binding));
      },
    },
    {
      method: 'delete', path, operationId: 'unbindNostrThreshold', tag: 'agents', auth: 'admin',
      summary: "Unbind: from the next request the agent's Nostr key is its vault key again (audited `agent.threshold_unbound`)",
      responses: { 200: T.NostrThresholdBindingSchema }, errors: [404],
      handler: async (c) => {
        const { binding, auditSeq } = await holder.get().thresholdBindings.unbind(c.req.param('id')!, NAMESPACE, OPERATOR);
        return c.json(bindingJson(binding, { auditSeq }));
      },
    },
  ];
}
