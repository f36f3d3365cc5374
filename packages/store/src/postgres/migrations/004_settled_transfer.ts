/**
 * PostgreSQL schema, version 4: what actually moved when a payment's nonce was used on chain (see
 * sqlite/migrations/004_settled_transfer.ts). numeric(78,0) amount.
 */
export const statements: string[] = [
  `ALTER TABLE payments ADD COLUMN settled_value numeric(78, 0)`,
  `ALTER TABLE payments ADD COLUMN settled_to text`,
];
