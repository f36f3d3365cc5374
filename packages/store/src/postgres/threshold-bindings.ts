import type { ThresholdBinding } from '@airlock/core';
import { THRESHOLD_BINDING_COLUMNS, thresholdBindingFromRow, thresholdBindingValues } from '../shared/threshold-binding-rows.ts';
import type { Q } from './pg-query.ts';

// Threshold bindings (schema 021; core/ports/threshold-keys.ts).

export async function getThresholdBinding(q: Q, agentId: string, namespace: string): Promise<ThresholdBinding | undefined> {
  const [row] = await q(`SELECT ${THRESHOLD_BINDING_COLUMNS} FROM threshold_bindings WHERE agent_id = $1 AND namespace = $2`, [agentId, namespace]);
  return row && thresholdBindingFromRow(row);
}

export async function putThresholdBinding(q: Q, b: ThresholdBinding): Promise<void> {
  await q(
    `INSERT INTO threshold_bindings (${THRESHOLD_BINDING_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
     ON CONFLICT (agent_id, namespace) DO UPDATE SET group_key = EXCLUDED.group_key, cluster = EXCLUDED.cluster, public_package = EXCLUDED.public_package,
       nodes = EXCLUDED.nodes, sealed_tokens = EXCLUDED.sealed_tokens, created_at = EXCLUDED.created_at`,
    thresholdBindingValues(b),
  );
}

export async function deleteThresholdBinding(q: Q, agentId: string, namespace: string): Promise<ThresholdBinding | undefined> {
  const [row] = await q(`DELETE FROM threshold_bindings WHERE agent_id = $1 AND namespace = $2 RETURNING ${THRESHOLD_BINDING_COLUMNS}`, [agentId, namespace]);
  return row && thresholdBindingFromRow(row);
}
