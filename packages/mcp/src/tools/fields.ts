// Input fields shared by the tools, each with the description a model reads in the JSON schema.
import { z } from 'zod';

export const chainIdField = z.number().int().positive().describe('EVM chain id, e.g. 8453 for Base, 1 for Ethereum mainnet, 31337 for a local anvil chain.');
export const addressField = z.string().regex(/^0x[0-9a-fA-F]{40}$/, 'a 0x-prefixed 20-byte hex address');
export const amountField = z
  .string()
  .regex(/^\d{1,78}$/, 'a non-negative integer string')
  .describe('Amount in base units as a decimal string (no decimal point): 1 USDC (6 decimals) is "1000000", 1 ETH is "1000000000000000000".');
export const tokenField = addressField.optional().describe('ERC-20 token contract address; omit for the chain\'s native coin (ETH).');

export const transferShape = {
  chainId: chainIdField,
  to: addressField.describe('Recipient address.'),
  amount: amountField,
  token: tokenField,
};
