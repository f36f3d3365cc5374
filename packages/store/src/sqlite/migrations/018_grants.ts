/**
 * SQLite schema, version 18: grants (core/ports/grants.ts), what each agent's key handed to others by signing:
 * ERC-20 allowances, EIP-2612 and Permit2 permits, Permit2 approvals and transfer signatures. One row per grant,
 * written in the signing transaction; read per agent by the dependency map. Amounts are decimal text.
 */
export const statements: string[] = [
  `CREATE TABLE grants (
     audit_seq   INTEGER NOT NULL,
     idx         INTEGER NOT NULL,
     agent_id    TEXT NOT NULL,
     kind        TEXT NOT NULL,
     chain       TEXT NOT NULL,
     token       TEXT NOT NULL,
     contract    TEXT NOT NULL,
     owner       TEXT NOT NULL,
     spender     TEXT NOT NULL,
     amount      TEXT NOT NULL,
     unlimited   INTEGER NOT NULL,
     expires_at  INTEGER,
     deadline    INTEGER,
     nonce       TEXT,
     domain      TEXT,
     created_at  INTEGER NOT NULL,
     PRIMARY KEY (audit_seq, idx)
   ) STRICT`,
  `CREATE INDEX grants_by_agent ON grants (agent_id, audit_seq)`,
];
