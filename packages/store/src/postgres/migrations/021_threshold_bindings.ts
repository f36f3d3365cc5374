/**
 * PostgreSQL schema, version 21: threshold bindings (core/ports/threshold-keys.ts), the twin of SQLite's 020.
 * The JSON columns are text, so what was written is read back byte for byte.
 */
export const statements: string[] = [
  `CREATE TABLE threshold_bindings (
     agent_id        text NOT NULL REFERENCES agents(id),
     namespace       text NOT NULL,
     group_key       text NOT NULL,
     cluster         text NOT NULL,
     public_package  text NOT NULL,
     nodes           text NOT NULL,
     sealed_tokens   text NOT NULL,
     created_at      bigint NOT NULL,
     PRIMARY KEY (agent_id, namespace)
   )`,
];
