/** PostgreSQL schema, version 14: shadow policies (see sqlite/migrations/013_shadow_policies.ts). */
export const statements: string[] = [
  `CREATE TABLE shadow_policies (
     scope      text PRIMARY KEY,
     id         text NOT NULL UNIQUE,
     hash       text NOT NULL,
     document   jsonb NOT NULL,
     source     text,
     author     text NOT NULL,
     created_at bigint NOT NULL
   )`,
  `CREATE TABLE shadow_outcomes (
     shadow_id          text NOT NULL,
     audit_seq          bigint NOT NULL,
     agent_id           text NOT NULL,
     at                 bigint NOT NULL,
     kind               text NOT NULL CHECK (kind IN ('same', 'rules_differ', 'would_allow', 'would_deny', 'would_require_approval', 'error')),
     action             text,
     active_decision    text NOT NULL,
     candidate_decision text,
     detail             jsonb,
     PRIMARY KEY (shadow_id, audit_seq)
   )`,
  `CREATE INDEX shadow_outcomes_by_kind ON shadow_outcomes (shadow_id, kind)`,
];
