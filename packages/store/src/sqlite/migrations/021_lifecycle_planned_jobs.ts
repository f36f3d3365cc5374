/**
 * SQLite schema, version 21: lifecycle jobs are planned before they are signed (core/service/lifecycle-service.ts).
 * A job is committed first in state `planned`, with its `lifecycle.planned` audit entry (what will be signed) and
 * its ledger charge, and no signed bytes yet; the signature is then asked for bound to that entry (a separate key
 * process checks it), and `lifecycle.signed` records the bytes. So `raw_transaction` and `transaction_hash` are
 * empty while planned, `planned` counts as open (for nonces, open sweeps and the tracker), and
 * `signed_audit_seq` names the `lifecycle.signed` entry (`audit_seq` stays the entry that created the job and
 * carries its charge: `lifecycle.planned`, or `lifecycle.signed` for jobs created before this version).
 * SQLite cannot alter a CHECK or a NOT NULL: the table is rebuilt, rows copied as they are.
 */
export const statements: string[] = [
  `CREATE TABLE lifecycle_jobs_v24 (
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
     raw_transaction  TEXT,
     transaction_hash TEXT,
     summary          TEXT NOT NULL,
     state            TEXT NOT NULL CHECK (state IN ('planned', 'signed', 'submitted', 'mined', 'failed')),
     audit_seq        INTEGER NOT NULL,
     signed_audit_seq INTEGER,
     broadcasts       INTEGER NOT NULL DEFAULT 0,
     created_at       INTEGER NOT NULL,
     updated_at       INTEGER NOT NULL,
     submitted_at     INTEGER,
     finished_at      INTEGER,
     block_number     TEXT,
     gas_used         TEXT,
     failure          TEXT,
     finish_audit_seq INTEGER,
     CHECK ((raw_transaction IS NULL) = (state = 'planned') OR state = 'failed'),
     CHECK ((raw_transaction IS NULL) = (transaction_hash IS NULL))
   ) STRICT`,
  `INSERT INTO lifecycle_jobs_v24 (id, agent_id, key_index, chain, from_address, nonce, origin, kind, purpose, asset, amount, recipient, to_address, max_fee,
     raw_transaction, transaction_hash, summary, state, audit_seq, signed_audit_seq, broadcasts, created_at, updated_at, submitted_at, finished_at, block_number,
     gas_used, failure, finish_audit_seq)
   SELECT id, agent_id, key_index, chain, from_address, nonce, origin, kind, purpose, asset, amount, recipient, to_address, max_fee,
     raw_transaction, transaction_hash, summary, state, audit_seq, audit_seq, broadcasts, created_at, updated_at, submitted_at, finished_at, block_number,
     gas_used, failure, finish_audit_seq
   FROM lifecycle_jobs`,
  'DROP TABLE lifecycle_jobs',
  'ALTER TABLE lifecycle_jobs_v24 RENAME TO lifecycle_jobs',
  `CREATE INDEX lifecycle_jobs_by_agent ON lifecycle_jobs (agent_id, created_at)`,
  `CREATE INDEX lifecycle_jobs_open ON lifecycle_jobs (created_at) WHERE state IN ('planned', 'signed', 'submitted')`,
  `CREATE UNIQUE INDEX lifecycle_jobs_one_open_sweep ON lifecycle_jobs (agent_id, key_index, chain, asset) WHERE origin = 'sweep' AND state IN ('planned', 'signed', 'submitted')`,
];
