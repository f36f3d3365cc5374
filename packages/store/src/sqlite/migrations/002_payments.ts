/**
 * SQLite schema, version 2: x402 payments. A signed authorization is a payment whose spend is held in
 * payment_holds (counted by every window while held) until it settles (converted into ledger entries)
 * or expires unused (released). Amounts are TEXT decimals; times ms, validity unix seconds.
 */
export const statements: string[] = [
  `CREATE TABLE payments (
     id            TEXT PRIMARY KEY,
     agent_id      TEXT NOT NULL,
     session_id    TEXT NOT NULL,
     audit_seq     INTEGER NOT NULL,
     protocol      TEXT NOT NULL CHECK (protocol IN ('x402')),
     x402_version  INTEGER,
     network       TEXT NOT NULL,
     asset         TEXT NOT NULL,
     "from"        TEXT NOT NULL,
     "to"          TEXT NOT NULL,
     value         TEXT NOT NULL,
     nonce         TEXT NOT NULL,
     valid_after   INTEGER NOT NULL,
     valid_before  INTEGER NOT NULL,
     resource      TEXT,
     origin        TEXT,
     state         TEXT NOT NULL CHECK (state IN ('reserved', 'settled', 'expired')),
     settlement_tx TEXT,
     reported_tx   TEXT,
     created_at    INTEGER NOT NULL,
     updated_at    INTEGER NOT NULL,
     UNIQUE (network, asset, "from", nonce)
   ) STRICT`,
  `CREATE INDEX payments_by_state ON payments (state, valid_before)`,
  `CREATE INDEX payments_by_agent ON payments (agent_id, created_at)`,

  `CREATE TABLE payment_holds (
     payment_id TEXT NOT NULL REFERENCES payments (id),
     series     TEXT NOT NULL,
     asset      TEXT NOT NULL,
     amount     TEXT NOT NULL,
     count      INTEGER NOT NULL,
     at         INTEGER NOT NULL,
     state      TEXT NOT NULL CHECK (state IN ('held', 'converted', 'released')),
     PRIMARY KEY (payment_id, series, asset)
   ) STRICT`,
  `CREATE INDEX payment_holds_by_series ON payment_holds (series, asset, state, at)`,
];
