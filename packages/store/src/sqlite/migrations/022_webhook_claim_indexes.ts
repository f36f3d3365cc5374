/**
 * SQLite schema, version 22: indexes for claiming webhook deliveries endpoint by endpoint (sqlite/webhooks.ts
 * `claimWebhookDeliveries`). A claim reads each endpoint's oldest due deliveries and each endpoint's deliveries
 * under a lease; with only the index on `next_attempt_at` it sorted the whole due backlog every claim (136 ms at
 * 100,000 due rows, on the writer's thread; found by review). Now each read is an index range of a few rows.
 */
export const statements: string[] = [
  `CREATE INDEX webhook_deliveries_endpoint_due ON webhook_deliveries (endpoint_id, next_attempt_at, leaf_index) WHERE state = 'pending'`,
  // Leases are set when claimed and cleared (0) when the attempt is recorded: only those in flight, or left by a
  // daemon that died, are in it.
  `CREATE INDEX webhook_deliveries_leased ON webhook_deliveries (endpoint_id, lease_until) WHERE state = 'pending' AND lease_until > 0`,
];
