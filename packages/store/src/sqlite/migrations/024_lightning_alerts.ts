/**
 * SQLite schema, version 24: the operator alerts raised about a Lightning payment (`alert.lightning`), one row per
 * distinct alert (`alert_key`: its reason and figures). A success Airlock cannot accept keeps the hold and the
 * reconciler reads it again every round: the row makes its alert entry appended once, not once per round
 * (StoreTx.recordLightningAlert).
 */
export const statements: string[] = [
  `CREATE TABLE lightning_alerts (
     payment_id TEXT NOT NULL REFERENCES lightning_payments (id),
     alert_key  TEXT NOT NULL,
     at         INTEGER NOT NULL,
     PRIMARY KEY (payment_id, alert_key)
   ) STRICT`,
];
