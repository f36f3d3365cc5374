/**
 * SQLite schema, version 11: approvers and their votes (quorum approvals, core/service/approver-service.ts).
 * An approver is a name, an Ed25519 public key (never a private key), groups and linked agents (JSON arrays).
 * A vote is counted once per (approval, approver); `quorum` on an approval is the requirement fixed when the
 * request was held (JSON; NULL: an operator approves with the admin token). Times are ms.
 */
export const statements: string[] = [
  `CREATE TABLE approvers (
     id          TEXT PRIMARY KEY,
     name        TEXT NOT NULL UNIQUE,
     public_key  TEXT NOT NULL UNIQUE,
     group_names TEXT NOT NULL,
     agent_ids   TEXT NOT NULL,
     status      TEXT NOT NULL CHECK (status IN ('active', 'disabled')),
     created_at  INTEGER NOT NULL,
     updated_at  INTEGER NOT NULL
   ) STRICT`,
  `ALTER TABLE approvals ADD COLUMN quorum TEXT`,
  `CREATE TABLE approval_votes (
     approval_id   TEXT NOT NULL REFERENCES approvals (id),
     approver_id   TEXT NOT NULL REFERENCES approvers (id),
     approver_name TEXT NOT NULL,
     group_names   TEXT NOT NULL,
     decision      TEXT NOT NULL CHECK (decision IN ('approve', 'reject')),
     at            INTEGER NOT NULL,
     signature     TEXT NOT NULL,
     comment       TEXT,
     audit_seq     INTEGER NOT NULL,
     created_at    INTEGER NOT NULL,
     PRIMARY KEY (approval_id, approver_id)
   ) STRICT`,
];
