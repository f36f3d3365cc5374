/**
 * PostgreSQL schema, version 24: an agent's Lightning payments in flight, counted on every new payment; the twin of
 * SQLite's 023 (see there).
 */
export const statements: string[] = [
  `CREATE INDEX lightning_payments_in_flight_by_agent ON lightning_payments (agent_id) WHERE state = 'in_flight'`,
];
