/**
 * SQLite schema, version 14: webhook endpoints and their deliveries (core/ports/webhooks.ts). No secret is
 * stored: an endpoint's signing secret is derived from the vault for (id, secret_version). A delivery is one
 * audit entry for one endpoint, keyed by its event id (a function of both), so enqueueing it twice keeps one.
 * Attempts are the delivery log: one row per request sent, its status or error class, never a body or URL.
 * Times are ms.
 */
export const statements: string[] = [
  `CREATE TABLE webhook_endpoints (
     id             TEXT PRIMARY KEY,
     url            TEXT NOT NULL,
     events         TEXT NOT NULL,
     description    TEXT,
     secret_version INTEGER NOT NULL,
     cursor         INTEGER NOT NULL,
     created_at     INTEGER NOT NULL,
     updated_at     INTEGER NOT NULL,
     removed_at     INTEGER
   ) STRICT`,
  `CREATE TABLE webhook_deliveries (
     event_id        TEXT PRIMARY KEY,
     endpoint_id     TEXT NOT NULL REFERENCES webhook_endpoints (id),
     audit_seq       INTEGER NOT NULL,
     leaf_index      INTEGER NOT NULL,
     event_type      TEXT NOT NULL,
     state           TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed', 'cancelled')),
     attempts        INTEGER NOT NULL,
     next_attempt_at INTEGER NOT NULL,
     lease_until     INTEGER NOT NULL,
     created_at      INTEGER NOT NULL,
     updated_at      INTEGER NOT NULL,
     UNIQUE (endpoint_id, leaf_index)
   ) STRICT`,
  `CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE state = 'pending'`,
  `CREATE TABLE webhook_attempts (
     event_id    TEXT NOT NULL REFERENCES webhook_deliveries (event_id),
     attempt     INTEGER NOT NULL,
     outcome     TEXT NOT NULL CHECK (outcome IN ('delivered', 'retry', 'failed')),
     http_status INTEGER,
     error_class TEXT,
     started_at  INTEGER NOT NULL,
     finished_at INTEGER NOT NULL,
     PRIMARY KEY (event_id, attempt)
   ) STRICT`,
];
