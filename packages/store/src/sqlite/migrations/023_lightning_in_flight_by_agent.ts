/**
 * SQLite schema, version 23: an agent's Lightning payments in flight, counted on every new payment (the per-agent
 * cap, `AIRLOCK_LIGHTNING_MAX_IN_FLIGHT`). The index holds only payments in flight, so the count reads that
 * agent's few rows whatever its history.
 */
export const statements: string[] = [
  `CREATE INDEX lightning_payments_in_flight_by_agent ON lightning_payments (agent_id) WHERE state = 'in_flight'`,
];
