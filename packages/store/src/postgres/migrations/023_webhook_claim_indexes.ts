/**
 * PostgreSQL schema, version 23: indexes for claiming webhook deliveries endpoint by endpoint; the twin of SQLite's
 * 022 (see there).
 */
export const statements: string[] = [
  `CREATE INDEX webhook_deliveries_endpoint_due ON webhook_deliveries (endpoint_id, next_attempt_at, leaf_index) WHERE state = 'pending'`,
  `CREATE INDEX webhook_deliveries_leased ON webhook_deliveries (endpoint_id, lease_until) WHERE state = 'pending' AND lease_until > 0`,
];
