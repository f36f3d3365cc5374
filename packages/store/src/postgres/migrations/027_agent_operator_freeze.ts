/**
 * PostgreSQL schema, version 27: `agents.operator_frozen`, why a frozen agent is frozen; the twin of SQLite's 026
 * (see there for the meaning and the fail-closed backfill).
 */
export const statements: string[] = [
  'ALTER TABLE agents ADD COLUMN operator_frozen boolean NOT NULL DEFAULT false',
  `UPDATE agents a SET operator_frozen = true
   WHERE a.status = 'frozen' AND (
     (SELECT min(b.tripped_seq) FROM breaker_agents ba JOIN breakers b ON b.id = ba.breaker_id WHERE ba.agent_id = a.id AND b.state = 'tripped' AND b.action = 'freeze') IS NULL
     OR EXISTS (SELECT 1 FROM audit_entries e WHERE e.agent_id = a.id AND e.type IN ('agent.frozen', 'agent.revoke_all')
                AND e.seq > (SELECT min(b.tripped_seq) FROM breaker_agents ba JOIN breakers b ON b.id = ba.breaker_id WHERE ba.agent_id = a.id AND b.state = 'tripped' AND b.action = 'freeze'))
   )`,
];
