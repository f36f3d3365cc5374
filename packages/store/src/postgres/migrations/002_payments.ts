/**
 * PostgreSQL schema, version 2: x402 payments (see sqlite/migrations/002_payments.ts for the model).
 * Amounts are numeric(78,0); times bigint ms, validity bigint unix seconds.
 */
export const statements: string[] = [
  `CREATE TABLE payments (
     id            text PRIMARY KEY,
     agent_id      text NOT NULL,
     session_id    text NOT NULL,
     audit_seq     bigint NOT NULL,
     protocol      text NOT NULL CHECK (protocol IN ('x402')),
     x402_version  integer,
     network       text NOT NULL,
     asset         text NOT NULL,
     "from"        text NOT NULL,
     "to"          text NOT NULL,
     value         numeric(78, 0) NOT NULL,
     nonce         text NOT NULL,
     valid_after   bigint NOT NULL,
     valid_before  bigint NOT NULL,
     resource      text,
     origin        text,
     state         text NOT NULL CHECK (state IN ('reserved', 'settled', 'expired')),
     settlement_tx text,
     reported_tx   text,
     created_at    bigint NOT NULL,
     updated_at    bigint NOT NULL,
     UNIQUE (network, asset, "from", nonce)
   )`,
  `CREATE INDEX payments_by_state ON payments (state, valid_before)`,
  `CREATE INDEX payments_by_agent ON payments (agent_id, created_at)`,

  `CREATE TABLE payment_holds (
     payment_id text NOT NULL REFERENCES payments (id),
     series     text NOT NULL,
     asset      text NOT NULL,
     amount     numeric(78, 0) NOT NULL,
     count      bigint NOT NULL,
     at         bigint NOT NULL,
     state      text NOT NULL CHECK (state IN ('held', 'converted', 'released')),
     PRIMARY KEY (payment_id, series, asset)
   )`,
  `CREATE INDEX payment_holds_by_series ON payment_holds (series, asset, state, at)`,
];
