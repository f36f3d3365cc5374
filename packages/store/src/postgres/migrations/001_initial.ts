/**
 * PostgreSQL schema, version 1. Migrations are history: never edit this file once released, add 002_….
 * Amounts are NUMERIC(78,0) (any uint256); times are BIGINT ms since epoch; JSON is jsonb, except the
 * audit `data`, kept as `json` so the stored text is exactly the canonical JSON that was hashed.
 */
export const statements: string[] = [
  // One trigger function for every "this must never happen" rule; TG_ARGV[0] says why.
  `CREATE FUNCTION airlock_forbid() RETURNS trigger LANGUAGE plpgsql AS $$
   BEGIN
     RAISE EXCEPTION '% on % is forbidden: %', TG_OP, TG_TABLE_NAME, TG_ARGV[0];
   END $$`,

  `CREATE TABLE meta (
     key   text PRIMARY KEY,
     value text NOT NULL
   )`,

  // agents: account_index (integer, so always < 2^31: a hardened index) is never reused.
  `CREATE TABLE agents (
     id            text PRIMARY KEY,
     name          text NOT NULL UNIQUE,
     account_index integer NOT NULL UNIQUE CHECK (account_index >= 0),
     key_index     integer NOT NULL DEFAULT 0,
     address       text NOT NULL,
     status        text NOT NULL CHECK (status IN ('active', 'frozen', 'retired')),
     labels        jsonb NOT NULL DEFAULT '{}',
     created_at    bigint NOT NULL,
     updated_at    bigint NOT NULL
   )`,
  `CREATE TRIGGER agents_no_delete BEFORE DELETE ON agents
   FOR EACH ROW EXECUTE FUNCTION airlock_forbid('account indexes must never be reused')`,
  `CREATE TRIGGER agents_no_truncate BEFORE TRUNCATE ON agents
   FOR EACH STATEMENT EXECUTE FUNCTION airlock_forbid('account indexes must never be reused')`,
  `CREATE TRIGGER agents_account_index_immutable BEFORE UPDATE OF account_index ON agents
   FOR EACH ROW WHEN (NEW.account_index IS DISTINCT FROM OLD.account_index)
   EXECUTE FUNCTION airlock_forbid('an agent account index never changes')`,

  `CREATE TABLE account_counter (
     id         integer PRIMARY KEY CHECK (id = 1),
     next_index bigint NOT NULL
   )`,
  `INSERT INTO account_counter (id, next_index) VALUES (1, 0)`,
  `CREATE TRIGGER account_counter_only_grows BEFORE UPDATE ON account_counter
   FOR EACH ROW WHEN (NEW.next_index < OLD.next_index)
   EXECUTE FUNCTION airlock_forbid('the account counter never goes back')`,
  `CREATE TRIGGER account_counter_no_delete BEFORE DELETE ON account_counter
   FOR EACH ROW EXECUTE FUNCTION airlock_forbid('the account counter is never deleted')`,

  `CREATE TABLE policies (
     scope      text NOT NULL,
     version    integer NOT NULL,
     hash       text NOT NULL,
     document   jsonb NOT NULL,
     author     text NOT NULL,
     created_at bigint NOT NULL,
     PRIMARY KEY (scope, version)
   )`,

  `CREATE TABLE sessions (
     id         text PRIMARY KEY,
     agent_id   text NOT NULL REFERENCES agents (id),
     token_hash text NOT NULL,
     scope      jsonb NOT NULL,
     label      text,
     created_at bigint NOT NULL,
     expires_at bigint NOT NULL,
     revoked_at bigint
   )`,
  `CREATE INDEX sessions_by_agent ON sessions (agent_id, created_at)`,

  `CREATE TABLE approvals (
     id         text PRIMARY KEY,
     agent_id   text NOT NULL,
     session_id text NOT NULL,
     audit_seq  bigint NOT NULL,
     action     text NOT NULL,
     request    jsonb NOT NULL,
     digest     text NOT NULL,
     summary    jsonb NOT NULL,
     state      text NOT NULL CHECK (state IN ('pending', 'approved', 'denied', 'expired')),
     created_at bigint NOT NULL,
     expires_at bigint NOT NULL,
     decided_at bigint,
     decided_by text,
     result     jsonb
   )`,
  `CREATE INDEX approvals_by_state ON approvals (state, expires_at)`,
  `CREATE INDEX approvals_by_agent ON approvals (agent_id, created_at)`,

  `CREATE TABLE approval_holds (
     approval_id text NOT NULL REFERENCES approvals (id),
     series      text NOT NULL,
     asset       text NOT NULL,
     amount      numeric(78, 0) NOT NULL,
     count       bigint NOT NULL,
     at          bigint NOT NULL,
     state       text NOT NULL CHECK (state IN ('held', 'converted', 'released')),
     PRIMARY KEY (approval_id, series, asset)
   )`,
  `CREATE INDEX approval_holds_by_series ON approval_holds (series, asset, state, at)`,

  `CREATE TABLE idempotency (
     scope        text NOT NULL,
     key          text NOT NULL,
     request_hash text NOT NULL,
     audit_seq    bigint NOT NULL,
     response     jsonb NOT NULL,
     created_at   bigint NOT NULL,
     PRIMARY KEY (scope, key)
   )`,

  // ledger: running totals per (series, asset) so a window is head - (last row before it).
  `CREATE TABLE ledger (
     series     text NOT NULL,
     asset      text NOT NULL,
     seq        bigint NOT NULL,
     at         bigint NOT NULL,
     amount     numeric(78, 0) NOT NULL,
     count      bigint NOT NULL,
     cum_amount numeric NOT NULL,
     cum_count  bigint NOT NULL,
     audit_seq  bigint NOT NULL,
     PRIMARY KEY (series, asset, seq)
   )`,
  `CREATE INDEX ledger_by_time ON ledger (series, asset, at, seq)`,
  `CREATE TABLE ledger_heads (
     series     text NOT NULL,
     asset      text NOT NULL,
     seq        bigint NOT NULL,
     at         bigint NOT NULL,
     cum_amount numeric NOT NULL,
     cum_count  bigint NOT NULL,
     PRIMARY KEY (series, asset)
   )`,

  `CREATE TABLE audit_entries (
     seq        bigint PRIMARY KEY,
     at         bigint NOT NULL,
     type       text NOT NULL,
     actor      text NOT NULL,
     agent_id   text,
     session_id text,
     action     text,
     decision   text,
     prev_hash  text NOT NULL,
     hash       text NOT NULL,
     data       json NOT NULL
   )`,
  `CREATE INDEX audit_by_agent ON audit_entries (agent_id, seq)`,
  `CREATE INDEX audit_by_time ON audit_entries (at)`,
  `CREATE INDEX audit_by_decision ON audit_entries (decision)`,
  `CREATE TRIGGER audit_entries_append_only BEFORE UPDATE OR DELETE ON audit_entries
   FOR EACH ROW EXECUTE FUNCTION airlock_forbid('the audit log is append-only')`,
  `CREATE TRIGGER audit_entries_no_truncate BEFORE TRUNCATE ON audit_entries
   FOR EACH STATEMENT EXECUTE FUNCTION airlock_forbid('the audit log is append-only')`,

  `CREATE TABLE audit_checkpoints (
     seq        bigint PRIMARY KEY,
     head_hash  text NOT NULL,
     at         bigint NOT NULL,
     public_key text NOT NULL,
     signature  text NOT NULL
   )`,
  `CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE ON audit_checkpoints
   FOR EACH ROW EXECUTE FUNCTION airlock_forbid('audit checkpoints are append-only')`,
];
