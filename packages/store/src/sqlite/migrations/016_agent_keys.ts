/**
 * SQLite schema, version 16: the key registry (core/ports/agent-keys.ts). Every EVM key an agent ever had, so
 * every address stays attributable after a rotation. The primary key (agent, key index) is what makes a key
 * index never handed out twice: rows are never deleted, and agent, index and address never change. Existing
 * agents are backfilled with the key they have (index 0 until now), active.
 */
export const statements: string[] = [
  `CREATE TABLE agent_keys (
     agent_id   TEXT NOT NULL REFERENCES agents (id),
     key_index  INTEGER NOT NULL CHECK (key_index >= 0 AND key_index < 2147483648),
     address    TEXT NOT NULL UNIQUE,
     state      TEXT NOT NULL CHECK (state IN ('active', 'rotated', 'retired')),
     created_at INTEGER NOT NULL,
     rotated_at INTEGER,
     retired_at INTEGER,
     PRIMARY KEY (agent_id, key_index)
   ) STRICT`,
  // At most one signing key per agent.
  `CREATE UNIQUE INDEX agent_keys_one_active ON agent_keys (agent_id) WHERE state = 'active'`,
  `CREATE TRIGGER agent_keys_no_delete BEFORE DELETE ON agent_keys
   BEGIN SELECT RAISE(ABORT, 'agent keys are never deleted: their index must not be reused and their address stays attributable'); END`,
  `CREATE TRIGGER agent_keys_identity_immutable BEFORE UPDATE OF agent_id, key_index, address ON agent_keys
   WHEN NEW.agent_id IS NOT OLD.agent_id OR NEW.key_index IS NOT OLD.key_index OR NEW.address IS NOT OLD.address
   BEGIN SELECT RAISE(ABORT, 'an agent key never changes agent, index or address'); END`,
  // active -> rotated -> retired (or active -> retired), never back.
  `CREATE TRIGGER agent_keys_state_forward BEFORE UPDATE OF state ON agent_keys
   WHEN (CASE NEW.state WHEN 'active' THEN 0 WHEN 'rotated' THEN 1 ELSE 2 END) < (CASE OLD.state WHEN 'active' THEN 0 WHEN 'rotated' THEN 1 ELSE 2 END)
   BEGIN SELECT RAISE(ABORT, 'an agent key state only moves forward'); END`,
  `CREATE TRIGGER agents_key_index_only_grows BEFORE UPDATE OF key_index ON agents
   WHEN NEW.key_index < OLD.key_index
   BEGIN SELECT RAISE(ABORT, 'an agent key index never goes back'); END`,
  `INSERT INTO agent_keys (agent_id, key_index, address, state, created_at)
   SELECT id, key_index, lower(address), 'active', created_at FROM agents`,
];
