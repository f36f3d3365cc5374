/**
 * SQLite schema, version 20: threshold bindings (core/ports/threshold-keys.ts). An agent's key for one protocol
 * held by a FROST signer cluster: the group key, the cluster and its public package (JSON), the nodes' URLs, and
 * their bearer tokens sealed under a key derived from the vault (never in clear here). One row per (agent, namespace).
 */
export const statements: string[] = [
  `CREATE TABLE threshold_bindings (
     agent_id        TEXT NOT NULL REFERENCES agents(id),
     namespace       TEXT NOT NULL,
     group_key       TEXT NOT NULL,
     cluster         TEXT NOT NULL,
     public_package  TEXT NOT NULL,
     nodes           TEXT NOT NULL,
     sealed_tokens   TEXT NOT NULL,
     created_at      INTEGER NOT NULL,
     PRIMARY KEY (agent_id, namespace)
   ) STRICT`,
];
