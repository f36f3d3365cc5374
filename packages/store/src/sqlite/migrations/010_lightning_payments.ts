/**
 * SQLite schema, version 10: Lightning payments (core/ports/lightning-payments.ts). A payment in flight holds
 * its worst case in lightning_holds, counted by every window while held, until the backend gives a definite
 * answer. At most one payment per payment hash is in flight or succeeded (a partial unique index), so an
 * invoice is never paid twice through Airlock. Amounts are TEXT decimals (msat); times ms; expiry unix seconds.
 */
export const statements: string[] = [
  `CREATE TABLE lightning_payments (
     id              TEXT PRIMARY KEY,
     agent_id        TEXT NOT NULL,
     session_id      TEXT NOT NULL,
     audit_seq       INTEGER NOT NULL,
     backend         TEXT NOT NULL,
     network         TEXT NOT NULL,
     payment_hash    TEXT NOT NULL,
     payee           TEXT NOT NULL,
     invoice         TEXT NOT NULL,
     amount_msat     TEXT NOT NULL,
     max_fee_msat    TEXT NOT NULL,
     fee_msat        TEXT,
     state           TEXT NOT NULL CHECK (state IN ('in_flight', 'succeeded', 'failed')),
     failure_reason  TEXT,
     preimage        TEXT,
     expires_at      INTEGER NOT NULL,
     timeout_seconds INTEGER NOT NULL,
     resource        TEXT,
     origin          TEXT,
     l402_scheme     TEXT,
     l402_macaroon   TEXT,
     l402_expires_at INTEGER,
     finished_seq    INTEGER,
     created_at      INTEGER NOT NULL,
     updated_at      INTEGER NOT NULL
   ) STRICT`,
  `CREATE UNIQUE INDEX lightning_payments_active_hash ON lightning_payments (payment_hash) WHERE state IN ('in_flight', 'succeeded')`,
  `CREATE INDEX lightning_payments_by_state ON lightning_payments (state, created_at)`,
  `CREATE INDEX lightning_payments_by_agent ON lightning_payments (agent_id, created_at)`,
  `CREATE TABLE lightning_holds (
     payment_id TEXT NOT NULL REFERENCES lightning_payments (id),
     series     TEXT NOT NULL,
     asset      TEXT NOT NULL,
     amount     TEXT NOT NULL,
     count      INTEGER NOT NULL,
     at         INTEGER NOT NULL,
     state      TEXT NOT NULL CHECK (state IN ('held', 'converted', 'released')),
     PRIMARY KEY (payment_id, series, asset)
   ) STRICT`,
  `CREATE INDEX lightning_holds_by_series ON lightning_holds (series, asset, state, at)`,
];
