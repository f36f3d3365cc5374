/**
 * SQLite schema, version 4: what actually moved when a payment's nonce was used on chain (the `Transfer`
 * after `AuthorizationUsed`), which can differ from the authorization Airlock signed. TEXT decimal amount.
 */
export const statements: string[] = [
  `ALTER TABLE payments ADD COLUMN settled_value TEXT`,
  `ALTER TABLE payments ADD COLUMN settled_to TEXT`,
];
