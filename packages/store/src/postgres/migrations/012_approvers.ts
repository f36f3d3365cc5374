/**
 * PostgreSQL schema, version 12: approvers and their votes (quorum approvals, core/service/approver-service.ts).
 * An approver is a name, an Ed25519 public key (never a private key), groups and linked agents (JSON arrays).
 * A vote is counted once per (approval, approver); `quorum` on an approval is the requirement fixed when the
 * request was held (JSON; NULL: an operator approves with the admin token). Times are ms.
 */
export const statements: string[] = [
  `CREATE TABLE approvers (
     id          text PRIMARY KEY,
     name        text NOT NULL UNIQUE,
     public_key  text NOT NULL UNIQUE,
     group_names jsonb NOT NULL,
     agent_ids   jsonb NOT NULL,
     status      text NOT NULL CHECK (status IN ('active', 'disabled')),
     created_at  bigint NOT NULL,
     updated_at  bigint NOT NULL
   )`,
  `ALTER TABLE approvals ADD COLUMN quorum jsonb`,
  `CREATE TABLE approval_votes (
     approval_id   text NOT NULL REFERENCES approvals (id),
     approver_id   text NOT NULL REFERENCES approvers (id),
     approver_name text NOT NULL,
     group_names   jsonb NOT NULL,
     decision      text NOT NULL CHECK (decision IN ('approve', 'reject')),
     at            bigint NOT NULL,
     signature     text NOT NULL,
     comment       text,
     audit_seq     bigint NOT NULL,
     created_at    bigint NOT NULL,
     PRIMARY KEY (approval_id, approver_id)
   )`,
];
