/**
 * SQLite schema, version 17: lifecycle jobs (core/ports/lifecycle.ts). Each row holds a transaction signed
 * with an agent's key on the operator-only lifecycle path, committed before it is broadcast. The partial unique
 * index keeps at most one open sweep (signed or submitted) per agent, key index and asset.
 */
export const statements: string[] = [
  `CREATE TABLE lifecycle_jobs (
     id               TEXT PRIMARY KEY,
     agent_id         TEXT NOT NULL REFERENCES agents (id),
     key_index        INTEGER NOT NULL,
     chain            TEXT NOT NULL,
     from_address     TEXT NOT NULL,
     nonce            INTEGER NOT NULL,
     origin           TEXT NOT NULL CHECK (origin IN ('sweep', 'call')),
     kind             TEXT NOT NULL CHECK (kind IN ('native_transfer', 'erc20_transfer', 'revocation')),
     purpose          TEXT NOT NULL,
     asset            TEXT,
     amount           TEXT NOT NULL,
     recipient        TEXT,
     to_address       TEXT NOT NULL,
     max_fee          TEXT NOT NULL,
     raw_transaction  TEXT NOT NULL,
     transaction_hash TEXT NOT NULL,
     summary          TEXT NOT NULL,
     state            TEXT NOT NULL CHECK (state IN ('signed', 'submitted', 'mined', 'failed')),
     audit_seq        INTEGER NOT NULL,
     broadcasts       INTEGER NOT NULL DEFAULT 0,
     created_at       INTEGER NOT NULL,
     updated_at       INTEGER NOT NULL,
     submitted_at     INTEGER,
     finished_at      INTEGER,
     block_number     TEXT,
     gas_used         TEXT,
     failure          TEXT,
     finish_audit_seq INTEGER
   ) STRICT`,
  `CREATE INDEX lifecycle_jobs_by_agent ON lifecycle_jobs (agent_id, created_at)`,
  `CREATE INDEX lifecycle_jobs_open ON lifecycle_jobs (created_at) WHERE state IN ('signed', 'submitted')`,
  `CREATE UNIQUE INDEX lifecycle_jobs_one_open_sweep ON lifecycle_jobs (agent_id, key_index, chain, asset) WHERE origin = 'sweep' AND state IN ('signed', 'submitted')`,
];
