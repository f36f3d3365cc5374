/**
 * SQLite schema, version 26: `agents.operator_frozen`, why a frozen agent is frozen. 1 while an operator's own freeze
 * holds it (`POST /v1/agents/{id}/freeze`, or revoke-all, also on an agent that a breaker had frozen already); set by
 * setAgentStatus('frozen'), cleared by any other status. A breaker freeze leaves it alone, and a breaker reset
 * unfreezes only agents whose sole reason was tripped freeze breakers (found by review: a reset set the agent active
 * even after the operator had frozen it by hand during the incident, and its still-live session signed again).
 *
 * Backfill, failing closed: a frozen agent is held by the operator unless a tripped freeze breaker holds it and no
 * `agent.frozen` or `agent.revoke_all` entry of it is newer than that breaker's trip (the earliest, where several
 * hold it): frozen by hand (or revoke-all) after a breaker froze it, it counts as the operator's, and a later reset
 * leaves it frozen and says so; an explicit unfreeze clears it. (A breaker's trip writes no `agent.frozen`.)
 */
export const statements: string[] = [
  'ALTER TABLE agents ADD COLUMN operator_frozen INTEGER NOT NULL DEFAULT 0 CHECK (operator_frozen IN (0, 1))',
  `UPDATE agents SET operator_frozen = 1
   WHERE agents.status = 'frozen' AND (
     (SELECT min(b.tripped_seq) FROM breaker_agents ba JOIN breakers b ON b.id = ba.breaker_id WHERE ba.agent_id = agents.id AND b.state = 'tripped' AND b.action = 'freeze') IS NULL
     OR EXISTS (SELECT 1 FROM audit_entries e WHERE e.agent_id = agents.id AND e.type IN ('agent.frozen', 'agent.revoke_all')
                AND e.seq > (SELECT min(b.tripped_seq) FROM breaker_agents ba JOIN breakers b ON b.id = ba.breaker_id WHERE ba.agent_id = agents.id AND b.state = 'tripped' AND b.action = 'freeze'))
   )`,
];
