import { AirlockError, type Agent, type AgentKey, type DeriveAgentAddress } from '@airlock/core';
import { agentFromRow } from '../shared/rows.ts';
import { agentKeyFromRow, MAX_KEY_INDEX } from '../shared/agent-key-rows.ts';
import { toInt } from '../shared/values.ts';
import type { Q } from './pg-query.ts';

// The key registry (core/ports/agent-keys.ts). A rotation runs in an exclusive transaction (the signing lock
// held exclusively: Store.transaction `exclusive`), and its statements come after that lock, so each sees every
// rotation committed before it; two rotations of one agent cannot both take "the largest index + 1", and the
// primary key (agent, index) refuses a reuse whatever the caller does.

/** Records the first key (index 0, active) of agents being created, in their transaction. */
export async function insertFirstKeys(q: Q, agents: readonly Agent[], now: number): Promise<void> {
  await q(
    `INSERT INTO agent_keys (agent_id, key_index, address, state, created_at)
     SELECT agent_id, key_index, address, 'active', $4 FROM unnest($1::text[], $2::integer[], $3::text[]) AS t(agent_id, key_index, address)`,
    [agents.map((a) => a.id), agents.map((a) => a.keyIndex), agents.map((a) => a.address), now],
  );
}

export async function listAgentKeys(q: Q, agentId: string): Promise<AgentKey[]> {
  return (await q('SELECT * FROM agent_keys WHERE agent_id = $1 ORDER BY key_index', [agentId])).map(agentKeyFromRow);
}

export async function findAgentKey(q: Q, address: string): Promise<AgentKey | undefined> {
  const [row] = await q('SELECT * FROM agent_keys WHERE address = $1', [address.toLowerCase()]);
  return row && agentKeyFromRow(row);
}

export async function rotateAgentKey(q: Q, agentId: string, deriveAddress: DeriveAgentAddress, now: number): Promise<{ agent: Agent; previous: AgentKey; current: AgentKey }> {
  // FOR UPDATE: a rotation that is not exclusive (a caller's mistake) still waits for another one of the same
  // agent, and reads the row it committed.
  const [agentRow] = await q('SELECT * FROM agents WHERE id = $1 FOR UPDATE', [agentId]);
  if (!agentRow) throw new AirlockError('not_found', 'no such agent');
  const agent = agentFromRow(agentRow);
  const [max] = await q('SELECT MAX(key_index) AS k FROM agent_keys WHERE agent_id = $1', [agentId]);
  const keyIndex = toInt(max?.k ?? -1) + 1;
  if (keyIndex > MAX_KEY_INDEX) throw new AirlockError('conflict', 'no hardened key indexes left for this agent');
  const address = (await deriveAddress(agent.accountIndex, keyIndex)).toLowerCase();
  const [previousRow] = await q(`UPDATE agent_keys SET state = 'rotated', rotated_at = $3 WHERE agent_id = $1 AND key_index = $2 RETURNING *`, [agentId, agent.keyIndex, now]);
  if (!previousRow) throw new AirlockError('internal', "the agent's signing key is missing from the key registry");
  await q(`INSERT INTO agent_keys (agent_id, key_index, address, state, created_at) VALUES ($1, $2, $3, 'active', $4)`, [agentId, keyIndex, address, now]);
  const [updated] = await q('UPDATE agents SET key_index = $2, address = $3, updated_at = $4 WHERE id = $1 RETURNING *', [agentId, keyIndex, address, now]);
  return { agent: agentFromRow(updated!), previous: agentKeyFromRow(previousRow), current: { agentId, keyIndex, address, state: 'active', createdAt: now } };
}

export async function retireAgentKey(q: Q, agentId: string, keyIndex: number, now: number): Promise<AgentKey> {
  const [row] = await q('SELECT k.*, a.status AS agent_status FROM agent_keys k JOIN agents a ON a.id = k.agent_id WHERE k.agent_id = $1 AND k.key_index = $2 FOR UPDATE OF k', [agentId, keyIndex]);
  if (!row) throw new AirlockError('not_found', 'the agent has no key with this index');
  const key = agentKeyFromRow(row);
  if (key.state === 'retired') return key;
  if (key.state === 'active' && row.agent_status !== 'retired') throw new AirlockError('conflict', "this is the agent's signing key: rotate it first (or retire the agent)");
  const [updated] = await q(`UPDATE agent_keys SET state = 'retired', retired_at = $3 WHERE agent_id = $1 AND key_index = $2 RETURNING *`, [agentId, keyIndex, now]);
  return agentKeyFromRow(updated!);
}
