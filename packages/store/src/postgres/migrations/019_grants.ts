/**
 * PostgreSQL schema, version 19: grants (core/ports/grants.ts), the twin of SQLite's 018. What each agent's key
 * handed to others by signing; one row per grant, written in the signing transaction.
 */
export const statements: string[] = [
  `CREATE TABLE grants (
     audit_seq   bigint NOT NULL,
     idx         integer NOT NULL,
     agent_id    text NOT NULL,
     kind        text NOT NULL,
     chain       text NOT NULL,
     token       text NOT NULL,
     contract    text NOT NULL,
     owner       text NOT NULL,
     spender     text NOT NULL,
     amount      numeric(78, 0) NOT NULL,
     unlimited   integer NOT NULL,
     expires_at  bigint,
     deadline    bigint,
     nonce       text,
     domain      jsonb,
     created_at  bigint NOT NULL,
     PRIMARY KEY (audit_seq, idx)
   )`,
  `CREATE INDEX grants_by_agent ON grants (agent_id, audit_seq)`,
];
