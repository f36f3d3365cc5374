import { AirlockError, type Agent, type AgentKey, type DeriveAgentAddress } from '@airlock/core';
import { agentFromRow } from '../shared/rows.ts';
import { agentKeyFromRow, MAX_KEY_INDEX } from '../shared/agent-key-rows.ts';
import { toInt } from '../shared/values.ts';
import type { SqliteDb } from './sqlite-db.ts';

// The key registry (core/ports/agent-keys.ts). Writes run inside the store's write transaction (one writer),
// so "the largest index + 1" cannot be taken twice; the primary key would refuse it anyway.

/** Records the first key (index 0, active) of agents being created, in their transaction. */
export function insertFirstKeys(db: SqliteDb, agents: readonly Agent[], now: number): void {
  for (const a of agents) {
    db.run(`INSERT INTO agent_keys (agent_id, key_index, address, state, created_at) VALUES (?, ?, ?, 'active', ?)`, a.id, a.keyIndex, a.address, now);
  }
}

export function listAgentKeys(db: SqliteDb, agentId: string): AgentKey[] {
  return db.all('SELECT * FROM agent_keys WHERE agent_id = ? ORDER BY key_index', agentId).map(agentKeyFromRow);
}

export function findAgentKey(db: SqliteDb, address: string): AgentKey | undefined {
  const row = db.get('SELECT * FROM agent_keys WHERE address = ?', address.toLowerCase());
  return row && agentKeyFromRow(row);
}

export async function rotateAgentKey(db: SqliteDb, agentId: string, deriveAddress: DeriveAgentAddress, now: number): Promise<{ agent: Agent; previous: AgentKey; current: AgentKey }> {
  const agentRow = db.get('SELECT * FROM agents WHERE id = ?', agentId);
  if (!agentRow) throw new AirlockError('not_found', 'no such agent');
  const agent = agentFromRow(agentRow);
  const keyIndex = toInt(db.get('SELECT MAX(key_index) AS k FROM agent_keys WHERE agent_id = ?', agentId)?.k ?? -1) + 1;
  if (keyIndex > MAX_KEY_INDEX) throw new AirlockError('conflict', 'no hardened key indexes left for this agent');
  // The derivation may be async (an HSM); the write lock is held meanwhile, so the index stays ours.
  const address = (await deriveAddress(agent.accountIndex, keyIndex)).toLowerCase();
  const previousRow = db.get(`UPDATE agent_keys SET state = 'rotated', rotated_at = ? WHERE agent_id = ? AND key_index = ? RETURNING *`, now, agentId, agent.keyIndex);
  if (!previousRow) throw new AirlockError('internal', "the agent's signing key is missing from the key registry");
  db.run(`INSERT INTO agent_keys (agent_id, key_index, address, state, created_at) VALUES (?, ?, ?, 'active', ?)`, agentId, keyIndex, address, now);
  const updated = db.get('UPDATE agents SET key_index = ?, address = ?, updated_at = ? WHERE id = ? RETURNING *', keyIndex, address, now, agentId)!;
  return { agent: agentFromRow(updated), previous: agentKeyFromRow(previousRow), current: { agentId, keyIndex, address, state: 'active', createdAt: now } };
}

export function retireAgentKey(db: SqliteDb, agentId: string, keyIndex: number, now: number): AgentKey {
  const row = db.get('SELECT k.*, a.status AS agent_status FROM agent_keys k JOIN agents a ON a.id = k.agent_id WHERE k.agent_id = ? AND k.key_index = ?', agentId, keyIndex);
  if (!row) throw new AirlockError('not_found', 'the agent has no key with this index');
  const key = agentKeyFromRow(row);
  if (key.state === 'retired') return key;
  if (key.state === 'active' && row.agent_status !== 'retired') throw new AirlockError('conflict', "this is the agent's signing key: rotate it first (or retire the agent)");
  return agentKeyFromRow(db.get(`UPDATE agent_keys SET state = 'retired', retired_at = ? WHERE agent_id = ? AND key_index = ? RETURNING *`, now, agentId, keyIndex)!);
}
