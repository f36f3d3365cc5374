/**
 * PostgreSQL schema, version 25: the operator alerts raised about a Lightning payment, one row per distinct alert;
 * the twin of SQLite's 024 (see there).
 */
export const statements: string[] = [
  `CREATE TABLE lightning_alerts (
     payment_id text NOT NULL REFERENCES lightning_payments (id),
     alert_key  text NOT NULL,
     at         bigint NOT NULL,
     PRIMARY KEY (payment_id, alert_key)
   )`,
];
