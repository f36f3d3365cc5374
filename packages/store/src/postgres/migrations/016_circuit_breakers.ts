/**
 * PostgreSQL schema, version 16: circuit breakers (core/ports/breakers.ts) and the first payers of each
 * destination (destination_wave detectors); the twin of SQLite's 015. A tripped breaker binds its agents through
 * breaker_agents (one index lookup per signing request whose policy declares detectors); the rows go when the
 * breaker is reset, the breaker row and its `agents` list stay as the record.
 */
export const statements: string[] = [
  `CREATE TABLE breakers (
     id             text PRIMARY KEY,
     detector       text NOT NULL,
     type           text NOT NULL,
     action         text NOT NULL CHECK (action IN ('require_approval', 'freeze')),
     scope          text NOT NULL CHECK (scope IN ('agent', 'group', 'fleet')),
     group_label    text,
     group_value    text,
     agent_id       text NOT NULL,
     policy_version text NOT NULL,
     figures        jsonb NOT NULL,
     message        text NOT NULL,
     agents         jsonb NOT NULL,
     state          text NOT NULL CHECK (state IN ('tripped', 'reset')),
     tripped_at     bigint NOT NULL,
     tripped_seq    bigint NOT NULL,
     reset_at       bigint,
     reset_by       text,
     reset_seq      bigint
   )`,
  `CREATE INDEX breakers_by_time ON breakers (tripped_at)`,
  `CREATE TABLE breaker_agents (
     agent_id   text NOT NULL,
     breaker_id text NOT NULL REFERENCES breakers (id),
     PRIMARY KEY (agent_id, breaker_id)
   )`,
  `CREATE TABLE destination_payers (
     destination text NOT NULL,
     agent_id    text NOT NULL,
     first_at    bigint NOT NULL,
     audit_seq   bigint NOT NULL,
     payments    bigint NOT NULL,
     PRIMARY KEY (destination, agent_id)
   )`,
  `CREATE INDEX destination_payers_by_time ON destination_payers (destination, first_at)`,
];
