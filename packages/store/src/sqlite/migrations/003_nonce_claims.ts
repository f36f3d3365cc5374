/**
 * SQLite schema, version 3: single-use authorization nonces and idempotency digests.
 * nonce_claims: one row per nonce key a released (or approval-held) signature consumes, with its digest;
 * a second request over the key is a replay only if its digest is equal (see core `Intent.nonceKeys`).
 * Payments signed before this version are claimed with an empty digest: their nonces can never be
 * signed again (the digest they were signed over was not kept), which refuses rather than guesses.
 */
export const statements: string[] = [
  `CREATE TABLE nonce_claims (
     key         TEXT PRIMARY KEY,
     agent_id    TEXT NOT NULL,
     digest      TEXT NOT NULL,
     audit_seq   INTEGER NOT NULL,
     state       TEXT NOT NULL CHECK (state IN ('signed', 'pending')),
     approval_id TEXT,
     valid_before INTEGER,
     created_at  INTEGER NOT NULL
   ) STRICT`,
  `CREATE INDEX nonce_claims_by_approval ON nonce_claims (approval_id) WHERE approval_id IS NOT NULL`,
  `INSERT INTO nonce_claims (key, agent_id, digest, audit_seq, state, approval_id, created_at)
     SELECT 'eip3009|' || network || '|' || asset || '|' || "from" || '|' || nonce, agent_id, '', audit_seq, 'signed', NULL, created_at
     FROM payments`,
  `ALTER TABLE idempotency ADD COLUMN digest TEXT`,
];
