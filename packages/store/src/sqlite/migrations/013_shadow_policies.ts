/**
 * SQLite schema, version 13: shadow policies (core/ports/shadow-policies.ts). At most one candidate per
 * scope; each evaluation of it is one row of shadow_outcomes, keyed by the candidate and the audit entry of
 * the request it shadowed (insert-only: no counter row that every signing transaction would contend for).
 * `detail` (JSON) is kept for differences only.
 */
export const statements: string[] = [
  `CREATE TABLE shadow_policies (
     scope      TEXT PRIMARY KEY,
     id         TEXT NOT NULL UNIQUE,
     hash       TEXT NOT NULL,
     document   TEXT NOT NULL,
     source     TEXT,
     author     TEXT NOT NULL,
     created_at INTEGER NOT NULL
   ) STRICT`,
  `CREATE TABLE shadow_outcomes (
     shadow_id          TEXT NOT NULL,
     audit_seq          INTEGER NOT NULL,
     agent_id           TEXT NOT NULL,
     at                 INTEGER NOT NULL,
     kind               TEXT NOT NULL CHECK (kind IN ('same', 'rules_differ', 'would_allow', 'would_deny', 'would_require_approval', 'error')),
     action             TEXT,
     active_decision    TEXT NOT NULL,
     candidate_decision TEXT,
     detail             TEXT,
     PRIMARY KEY (shadow_id, audit_seq)
   ) STRICT`,
  `CREATE INDEX shadow_outcomes_by_kind ON shadow_outcomes (shadow_id, kind)`,
];
