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

export const DEFAULT_MAX_BODY_CHARS = 20_000;

/** The request a paying fetch tool (pay_x402, pay_l402) sends; `headersNote` adds what that tool does with headers. */
export function paidFetchShape(headersNote = '') {
  return {
    url: z.url({ protocol: /^https?$/ }).describe('The resource URL (http or https).'),
    method: z.enum(['GET', 'POST', 'PUT', 'PATCH', 'DELETE']).default('GET').describe('HTTP method. Default GET.'),
    headers: z.record(z.string(), z.string()).optional().describe(`Extra request headers, e.g. {"accept":"application/json"}.${headersNote}`),
    body: z.string().optional().describe('Request body (for POST/PUT/PATCH), sent as is.'),
    maxBodyChars: z.number().int().min(1).max(1_000_000).default(DEFAULT_MAX_BODY_CHARS).describe(`Longest response body returned, in characters; longer ones are cut. Default ${DEFAULT_MAX_BODY_CHARS}.`),
  };
}

/** The response body as a tool returns it: cut at `maxBodyChars`, saying so. */
export function returnedBody(text: string, maxBodyChars: number): { body: string; truncated?: true; bodyLength?: number } {
  return text.length > maxBodyChars ? { body: text.slice(0, maxBodyChars), truncated: true, bodyLength: text.length } : { body: text };
}
