/**
 * PostgreSQL schema, version 22: lifecycle jobs are planned before they are signed; the twin of SQLite's 021
 * (see there). `planned` jobs have no signed bytes yet and count as open; `signed_audit_seq` names the
 * `lifecycle.signed` entry (`audit_seq` stays the entry that created the job and carries its charge).
 */
export const statements: string[] = [
  'ALTER TABLE lifecycle_jobs DROP CONSTRAINT lifecycle_jobs_state_check',
  `ALTER TABLE lifecycle_jobs ADD CONSTRAINT lifecycle_jobs_state_check CHECK (state IN ('planned', 'signed', 'submitted', 'mined', 'failed'))`,
  'ALTER TABLE lifecycle_jobs ALTER COLUMN raw_transaction DROP NOT NULL',
  'ALTER TABLE lifecycle_jobs ALTER COLUMN transaction_hash DROP NOT NULL',
  `ALTER TABLE lifecycle_jobs ADD CONSTRAINT lifecycle_jobs_bytes_once_signed CHECK ((raw_transaction IS NULL) = (state = 'planned') OR state = 'failed')`,
  'ALTER TABLE lifecycle_jobs ADD CONSTRAINT lifecycle_jobs_bytes_and_hash CHECK ((raw_transaction IS NULL) = (transaction_hash IS NULL))',
  'ALTER TABLE lifecycle_jobs ADD COLUMN signed_audit_seq bigint',
  'UPDATE lifecycle_jobs SET signed_audit_seq = audit_seq',
  'DROP INDEX lifecycle_jobs_open',
  `CREATE INDEX lifecycle_jobs_open ON lifecycle_jobs (created_at) WHERE state IN ('planned', 'signed', 'submitted')`,
  'DROP INDEX lifecycle_jobs_one_open_sweep',
  `CREATE UNIQUE INDEX lifecycle_jobs_one_open_sweep ON lifecycle_jobs (agent_id, key_index, chain, asset) WHERE origin = 'sweep' AND state IN ('planned', 'signed', 'submitted')`,
];
