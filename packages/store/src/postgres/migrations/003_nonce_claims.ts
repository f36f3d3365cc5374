/** PostgreSQL schema, version 3: single-use authorization nonces and idempotency digests (see sqlite/migrations/003_nonce_claims.ts). */
export const statements: string[] = [
  `CREATE TABLE nonce_claims (
     key         text PRIMARY KEY,
     agent_id    text NOT NULL,
     digest      text NOT NULL,
     audit_seq   bigint NOT NULL,
     state       text NOT NULL CHECK (state IN ('signed', 'pending')),
     approval_id text,
     valid_before bigint,
     created_at  bigint NOT NULL
   )`,
  `CREATE INDEX nonce_claims_by_approval ON nonce_claims (approval_id) WHERE approval_id IS NOT NULL`,
  `INSERT INTO nonce_claims (key, agent_id, digest, audit_seq, state, approval_id, created_at)
     SELECT 'eip3009|' || network || '|' || asset || '|' || "from" || '|' || nonce, agent_id, '', audit_seq, 'signed', NULL, created_at
     FROM payments`,
  `ALTER TABLE idempotency ADD COLUMN digest text`,
];
