/**
 * PostgreSQL schema, version 18: lifecycle jobs (core/ports/lifecycle.ts); the twin of SQLite's 017. Each row
 * holds a transaction signed with an agent's key on the operator-only lifecycle path, committed before it is
 * broadcast. The partial unique index keeps at most one open sweep per agent, key index and asset.
 */
export const statements: string[] = [
  `CREATE TABLE lifecycle_jobs (
     id               text PRIMARY KEY,
     agent_id         text NOT NULL REFERENCES agents (id),
     key_index        integer NOT NULL,
     chain            text NOT NULL,
     from_address     text NOT NULL,
     nonce            bigint NOT NULL,
     origin           text NOT NULL CHECK (origin IN ('sweep', 'call')),
     kind             text NOT NULL CHECK (kind IN ('native_transfer', 'erc20_transfer', 'revocation')),
     purpose          text NOT NULL,
     asset            text,
     amount           numeric(78,0) NOT NULL,
     recipient        text,
     to_address       text NOT NULL,
     max_fee          numeric(78,0) NOT NULL,
     raw_transaction  text NOT NULL,
     transaction_hash text NOT NULL,
     summary          text NOT NULL,
     state            text NOT NULL CHECK (state IN ('signed', 'submitted', 'mined', 'failed')),
     audit_seq        bigint NOT NULL,
     broadcasts       integer NOT NULL DEFAULT 0,
     created_at       bigint NOT NULL,
     updated_at       bigint NOT NULL,
     submitted_at     bigint,
     finished_at      bigint,
     block_number     numeric(78,0),
     gas_used         numeric(78,0),
     failure          text,
     finish_audit_seq bigint
   )`,
  `CREATE INDEX lifecycle_jobs_by_agent ON lifecycle_jobs (agent_id, created_at)`,
  `CREATE INDEX lifecycle_jobs_open ON lifecycle_jobs (created_at) WHERE state IN ('signed', 'submitted')`,
  `CREATE UNIQUE INDEX lifecycle_jobs_one_open_sweep ON lifecycle_jobs (agent_id, key_index, chain, asset) WHERE origin = 'sweep' AND state IN ('signed', 'submitted')`,
];
