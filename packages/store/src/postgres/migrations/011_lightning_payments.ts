/**
 * PostgreSQL schema, version 11: Lightning payments (core/ports/lightning-payments.ts). A payment in flight holds
 * its worst case in lightning_holds, counted by every window while held, until the backend gives a definite
 * answer. At most one payment per payment hash is in flight or succeeded (a partial unique index), so an
 * invoice is never paid twice through Airlock. Amounts are text decimals (msat); times ms; expiry unix seconds.
 */
export const statements: string[] = [
  `CREATE TABLE lightning_payments (
     id              text PRIMARY KEY,
     agent_id        text NOT NULL,
     session_id      text NOT NULL,
     audit_seq       bigint NOT NULL,
     backend         text NOT NULL,
     network         text NOT NULL,
     payment_hash    text NOT NULL,
     payee           text NOT NULL,
     invoice         text NOT NULL,
     amount_msat     numeric(78, 0) NOT NULL,
     max_fee_msat    numeric(78, 0) NOT NULL,
     fee_msat        numeric(78, 0),
     state           text NOT NULL CHECK (state IN ('in_flight', 'succeeded', 'failed')),
     failure_reason  text,
     preimage        text,
     expires_at      bigint NOT NULL,
     timeout_seconds bigint NOT NULL,
     resource        text,
     origin          text,
     l402_scheme     text,
     l402_macaroon   text,
     l402_expires_at bigint,
     finished_seq    bigint,
     created_at      bigint NOT NULL,
     updated_at      bigint NOT NULL
   )`,
  `CREATE UNIQUE INDEX lightning_payments_active_hash ON lightning_payments (payment_hash) WHERE state IN ('in_flight', 'succeeded')`,
  `CREATE INDEX lightning_payments_by_state ON lightning_payments (state, created_at)`,
  `CREATE INDEX lightning_payments_by_agent ON lightning_payments (agent_id, created_at)`,
  `CREATE TABLE lightning_holds (
     payment_id text NOT NULL REFERENCES lightning_payments (id),
     series     text NOT NULL,
     asset      text NOT NULL,
     amount     numeric(78, 0) NOT NULL,
     count      bigint NOT NULL,
     at         bigint NOT NULL,
     state      text NOT NULL CHECK (state IN ('held', 'converted', 'released')),
     PRIMARY KEY (payment_id, series, asset)
   )`,
  `CREATE INDEX lightning_holds_by_series ON lightning_holds (series, asset, state, at)`,
];
