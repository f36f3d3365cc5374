import type { ThresholdBinding } from '@airlock/core';
import { toInt } from './values.ts';

// Threshold bindings (core/ports/threshold-keys.ts) as one row: the cluster, public package and nodes as JSON text.

export const THRESHOLD_BINDING_COLUMNS = 'agent_id, namespace, group_key, cluster, public_package, nodes, sealed_tokens, created_at';

export function thresholdBindingValues(b: ThresholdBinding): unknown[] {
  return [b.agentId, b.namespace, b.groupKey, JSON.stringify(b.cluster), JSON.stringify(b.publicPackage), JSON.stringify(b.nodes), b.sealedTokens, b.createdAt];
}

export function thresholdBindingFromRow(row: Record<string, unknown>): ThresholdBinding {
  return {
    agentId: String(row.agent_id),
    namespace: String(row.namespace),
    groupKey: String(row.group_key),
    cluster: JSON.parse(String(row.cluster)) as unknown,
    publicPackage: JSON.parse(String(row.public_package)) as unknown,
    nodes: JSON.parse(String(row.nodes)) as ThresholdBinding['nodes'],
    sealedTokens: String(row.sealed_tokens),
    createdAt: toInt(row.created_at),
  };
}
