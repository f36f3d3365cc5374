/**
 * PostgreSQL schema, version 17: the key registry (core/ports/agent-keys.ts); the twin of SQLite's 016. Every
 * EVM key an agent ever had, so every address stays attributable after a rotation. The primary key (agent, key
 * index) is what makes a key index never handed out twice: rows are never deleted, and agent, index and address
 * never change. Existing agents are backfilled with the key they have (index 0 until now), active.
 */
export const statements: string[] = [
  `CREATE TABLE agent_keys (
     agent_id   text NOT NULL REFERENCES agents (id),
     key_index  integer NOT NULL CHECK (key_index >= 0),
     address    text NOT NULL UNIQUE,
     state      text NOT NULL CHECK (state IN ('active', 'rotated', 'retired')),
     created_at bigint NOT NULL,
     rotated_at bigint,
     retired_at bigint,
     PRIMARY KEY (agent_id, key_index)
   )`,
  // At most one signing key per agent.
  `CREATE UNIQUE INDEX agent_keys_one_active ON agent_keys (agent_id) WHERE state = 'active'`,
  `CREATE TRIGGER agent_keys_no_delete BEFORE DELETE ON agent_keys
   FOR EACH ROW EXECUTE FUNCTION airlock_forbid('agent keys are never deleted: their index must not be reused')`,
  `CREATE TRIGGER agent_keys_no_truncate BEFORE TRUNCATE ON agent_keys
   FOR EACH STATEMENT EXECUTE FUNCTION airlock_forbid('agent keys are never deleted: their index must not be reused')`,
  `CREATE TRIGGER agent_keys_identity_immutable BEFORE UPDATE OF agent_id, key_index, address ON agent_keys
   FOR EACH ROW WHEN (NEW.agent_id IS DISTINCT FROM OLD.agent_id OR NEW.key_index IS DISTINCT FROM OLD.key_index OR NEW.address IS DISTINCT FROM OLD.address)
   EXECUTE FUNCTION airlock_forbid('an agent key never changes agent, index or address')`,
  // active -> rotated -> retired (or active -> retired), never back.
  `CREATE TRIGGER agent_keys_state_forward BEFORE UPDATE OF state ON agent_keys
   FOR EACH ROW WHEN (array_position(ARRAY['active', 'rotated', 'retired'], NEW.state) < array_position(ARRAY['active', 'rotated', 'retired'], OLD.state))
   EXECUTE FUNCTION airlock_forbid('an agent key state only moves forward')`,
  `CREATE TRIGGER agents_key_index_only_grows BEFORE UPDATE OF key_index ON agents
   FOR EACH ROW WHEN (NEW.key_index < OLD.key_index)
   EXECUTE FUNCTION airlock_forbid('an agent key index never goes back')`,
  `INSERT INTO agent_keys (agent_id, key_index, address, state, created_at)
   SELECT id, key_index, lower(address), 'active', created_at FROM agents`,
];
