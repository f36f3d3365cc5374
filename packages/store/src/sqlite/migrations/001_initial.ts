/**
 * SQLite schema, version 1. Migrations are history: never edit this file once released, add 002_….
 * Amounts are TEXT holding a decimal integer (bigint arithmetic happens in JS); times are ms since epoch.
 */
export const statements: string[] = [
  // meta: small key/value settings (vault id, store id, …). First writer wins via initMeta.
  `CREATE TABLE meta (
     key   TEXT PRIMARY KEY,
     value TEXT NOT NULL
   ) STRICT`,

  // agents: account_index is the hardened BIP-44 account; it is allocated from account_counter and
  // must never be reused, so rows are never deleted and the index never changes (triggers below).
  `CREATE TABLE agents (
     id            TEXT PRIMARY KEY,
     name          TEXT NOT NULL UNIQUE,
     account_index INTEGER NOT NULL UNIQUE CHECK (account_index >= 0 AND account_index < 2147483648),
     key_index     INTEGER NOT NULL DEFAULT 0,
     address       TEXT NOT NULL,
     status        TEXT NOT NULL CHECK (status IN ('active', 'frozen', 'retired')),
     labels        TEXT NOT NULL DEFAULT '{}',
     created_at    INTEGER NOT NULL,
     updated_at    INTEGER NOT NULL
   ) STRICT`,
  `CREATE TRIGGER agents_no_delete BEFORE DELETE ON agents
   BEGIN SELECT RAISE(ABORT, 'agents are never deleted: their account index must not be reused'); END`,
  `CREATE TRIGGER agents_account_index_immutable BEFORE UPDATE OF account_index ON agents
   WHEN NEW.account_index IS NOT OLD.account_index
   BEGIN SELECT RAISE(ABORT, 'an agent account index never changes'); END`,

  // account_counter: one row, the next account index to hand out; it only grows.
  `CREATE TABLE account_counter (
     id         INTEGER PRIMARY KEY CHECK (id = 1),
     next_index INTEGER NOT NULL
   ) STRICT`,
  `INSERT INTO account_counter (id, next_index) VALUES (1, 0)`,
  `CREATE TRIGGER account_counter_only_grows BEFORE UPDATE ON account_counter
   WHEN NEW.next_index < OLD.next_index
   BEGIN SELECT RAISE(ABORT, 'the account counter never goes back'); END`,
  `CREATE TRIGGER account_counter_no_delete BEFORE DELETE ON account_counter
   BEGIN SELECT RAISE(ABORT, 'the account counter is never deleted'); END`,

  // policies: every version is kept; version = max + 1 per scope.
  `CREATE TABLE policies (
     scope      TEXT NOT NULL,
     version    INTEGER NOT NULL,
     hash       TEXT NOT NULL,
     document   TEXT NOT NULL,
     author     TEXT NOT NULL,
     created_at INTEGER NOT NULL,
     PRIMARY KEY (scope, version)
   ) STRICT`,

  // sessions: the token itself is never stored, only the hash of its secret part.
  `CREATE TABLE sessions (
     id         TEXT PRIMARY KEY,
     agent_id   TEXT NOT NULL REFERENCES agents (id),
     token_hash TEXT NOT NULL,
     scope      TEXT NOT NULL,
     label      TEXT,
     created_at INTEGER NOT NULL,
     expires_at INTEGER NOT NULL,
     revoked_at INTEGER
   ) STRICT`,
  `CREATE INDEX sessions_by_agent ON sessions (agent_id, created_at)`,

  // approvals: requests waiting for a human; their budget is held in approval_holds meanwhile.
  `CREATE TABLE approvals (
     id         TEXT PRIMARY KEY,
     agent_id   TEXT NOT NULL,
     session_id TEXT NOT NULL,
     audit_seq  INTEGER NOT NULL,
     action     TEXT NOT NULL,
     request    TEXT NOT NULL,
     digest     TEXT NOT NULL,
     summary    TEXT NOT NULL,
     state      TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'denied', 'expired')),
     created_at INTEGER NOT NULL,
     expires_at INTEGER NOT NULL,
     decided_at INTEGER,
     decided_by TEXT,
     result     TEXT
   ) STRICT`,
  `CREATE INDEX approvals_by_state ON approvals (state, expires_at)`,
  `CREATE INDEX approvals_by_agent ON approvals (agent_id, created_at)`,

  `CREATE TABLE approval_holds (
     approval_id TEXT NOT NULL REFERENCES approvals (id),
     series      TEXT NOT NULL,
     asset       TEXT NOT NULL,
     amount      TEXT NOT NULL,
     count       INTEGER NOT NULL,
     at          INTEGER NOT NULL,
     state       TEXT NOT NULL CHECK (state IN ('held', 'converted', 'released')),
     PRIMARY KEY (approval_id, series, asset)
   ) STRICT`,
  `CREATE INDEX approval_holds_by_series ON approval_holds (series, asset, state, at)`,

  `CREATE TABLE idempotency (
     scope        TEXT NOT NULL,
     key          TEXT NOT NULL,
     request_hash TEXT NOT NULL,
     audit_seq    INTEGER NOT NULL,
     response     TEXT NOT NULL,
     created_at   INTEGER NOT NULL,
     PRIMARY KEY (scope, key)
   ) STRICT`,

  // ledger: one row per charge with running totals, so a window sum is head - (last row before the
  // window): two index lookups whatever the history size. ledger_heads holds the latest row per series.
  `CREATE TABLE ledger (
     series     TEXT NOT NULL,
     asset      TEXT NOT NULL,
     seq        INTEGER NOT NULL,
     at         INTEGER NOT NULL,
     amount     TEXT NOT NULL,
     count      INTEGER NOT NULL,
     cum_amount TEXT NOT NULL,
     cum_count  INTEGER NOT NULL,
     audit_seq  INTEGER NOT NULL,
     PRIMARY KEY (series, asset, seq)
   ) STRICT, WITHOUT ROWID`,
  `CREATE INDEX ledger_by_time ON ledger (series, asset, at, seq)`,
  `CREATE TABLE ledger_heads (
     series     TEXT NOT NULL,
     asset      TEXT NOT NULL,
     seq        INTEGER NOT NULL,
     at         INTEGER NOT NULL,
     cum_amount TEXT NOT NULL,
     cum_count  INTEGER NOT NULL,
     PRIMARY KEY (series, asset)
   ) STRICT, WITHOUT ROWID`,

  // audit_entries: append-only hash chain; the triggers make that a property of the store, not of the code.
  `CREATE TABLE audit_entries (
     seq        INTEGER PRIMARY KEY,
     at         INTEGER NOT NULL,
     type       TEXT NOT NULL,
     actor      TEXT NOT NULL,
     agent_id   TEXT,
     session_id TEXT,
     action     TEXT,
     decision   TEXT,
     prev_hash  TEXT NOT NULL,
     hash       TEXT NOT NULL,
     data       TEXT NOT NULL
   ) STRICT`,
  `CREATE INDEX audit_by_agent ON audit_entries (agent_id, seq)`,
  `CREATE INDEX audit_by_time ON audit_entries (at)`,
  `CREATE INDEX audit_by_decision ON audit_entries (decision)`,
  `CREATE TRIGGER audit_entries_no_update BEFORE UPDATE ON audit_entries
   BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END`,
  `CREATE TRIGGER audit_entries_no_delete BEFORE DELETE ON audit_entries
   BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END`,

  `CREATE TABLE audit_checkpoints (
     seq        INTEGER PRIMARY KEY,
     head_hash  TEXT NOT NULL,
     at         INTEGER NOT NULL,
     public_key TEXT NOT NULL,
     signature  TEXT NOT NULL
   ) STRICT`,
  `CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
   BEGIN SELECT RAISE(ABORT, 'audit checkpoints are append-only'); END`,
  `CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
   BEGIN SELECT RAISE(ABORT, 'audit checkpoints are append-only'); END`,
];
