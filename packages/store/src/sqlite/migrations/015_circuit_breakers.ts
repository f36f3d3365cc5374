/**
 * SQLite schema, version 15: circuit breakers (core/ports/breakers.ts) and the first payers of each destination
 * (destination_wave detectors). A tripped breaker binds its agents through breaker_agents (one index lookup per
 * signing request whose policy declares detectors); the rows go when the breaker is reset, the breaker row and
 * its `agents` list stay as the record. destination_payers keeps each agent's first payment to a destination and its count of payments to it.
 */
export const statements: string[] = [
  `CREATE TABLE breakers (
     id             TEXT PRIMARY KEY,
     detector       TEXT NOT NULL,
     type           TEXT NOT NULL,
     action         TEXT NOT NULL CHECK (action IN ('require_approval', 'freeze')),
     scope          TEXT NOT NULL CHECK (scope IN ('agent', 'group', 'fleet')),
     group_label    TEXT,
     group_value    TEXT,
     agent_id       TEXT NOT NULL,
     policy_version TEXT NOT NULL,
     figures        TEXT NOT NULL,
     message        TEXT NOT NULL,
     agents         TEXT NOT NULL,
     state          TEXT NOT NULL CHECK (state IN ('tripped', 'reset')),
     tripped_at     INTEGER NOT NULL,
     tripped_seq    INTEGER NOT NULL,
     reset_at       INTEGER,
     reset_by       TEXT,
     reset_seq      INTEGER
   ) STRICT`,
  `CREATE INDEX breakers_by_time ON breakers (tripped_at)`,
  `CREATE TABLE breaker_agents (
     agent_id   TEXT NOT NULL,
     breaker_id TEXT NOT NULL REFERENCES breakers (id),
     PRIMARY KEY (agent_id, breaker_id)
   ) STRICT`,
  `CREATE TABLE destination_payers (
     destination TEXT NOT NULL,
     agent_id    TEXT NOT NULL,
     first_at    INTEGER NOT NULL,
     audit_seq   INTEGER NOT NULL,
     payments    INTEGER NOT NULL,
     PRIMARY KEY (destination, agent_id)
   ) STRICT`,
  `CREATE INDEX destination_payers_by_time ON destination_payers (destination, first_at)`,
];
