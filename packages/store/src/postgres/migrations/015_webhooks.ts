/**
 * PostgreSQL schema, version 15: webhook endpoints and their deliveries (core/ports/webhooks.ts). No secret is
 * stored: an endpoint's signing secret is derived from the vault for (id, secret_version). A delivery is one
 * audit entry for one endpoint, keyed by its event id (a function of both), so instances that enqueue the same
 * entry keep one row; a lease (lease_until, attempts as fencing token) keeps two instances from sending it at
 * once. Attempts are the delivery log: one row per request sent, never a body or URL. Times are ms.
 */
export const statements: string[] = [
  `CREATE TABLE webhook_endpoints (
     id             text PRIMARY KEY,
     url            text NOT NULL,
     events         text NOT NULL,
     description    text,
     secret_version integer NOT NULL,
     cursor         bigint NOT NULL,
     created_at     bigint NOT NULL,
     updated_at     bigint NOT NULL,
     removed_at     bigint
   )`,
  `CREATE TABLE webhook_deliveries (
     event_id        text PRIMARY KEY,
     endpoint_id     text NOT NULL REFERENCES webhook_endpoints (id),
     audit_seq       bigint NOT NULL,
     leaf_index      bigint NOT NULL,
     event_type      text NOT NULL,
     state           text NOT NULL CHECK (state IN ('pending', 'delivered', 'failed', 'cancelled')),
     attempts        integer NOT NULL,
     next_attempt_at bigint NOT NULL,
     lease_until     bigint NOT NULL,
     created_at      bigint NOT NULL,
     updated_at      bigint NOT NULL,
     UNIQUE (endpoint_id, leaf_index)
   )`,
  `CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE state = 'pending'`,
  `CREATE TABLE webhook_attempts (
     event_id    text NOT NULL REFERENCES webhook_deliveries (event_id),
     attempt     integer NOT NULL,
     outcome     text NOT NULL CHECK (outcome IN ('delivered', 'retry', 'failed')),
     http_status integer,
     error_class text,
     started_at  bigint NOT NULL,
     finished_at bigint NOT NULL,
     PRIMARY KEY (event_id, attempt)
   )`,
];
