// Pays an HTTP 402 resource with the SDK's fetchWithAirlock (the official @x402/fetch client with Airlock as its
// signer): Airlock applies the payee, resource, price and budget rules before anything is signed.
import { z } from 'zod';
import { decodePaymentResponseHeader } from '@x402/core/http';
import { defineTool } from './tool.ts';

const DEFAULT_MAX_BODY_CHARS = 20_000;

export const payX402Tool = defineTool({
  name: 'pay_x402',
  title: 'Pay for an x402 resource',
  description:
    'Fetch an HTTP resource that may ask for payment (HTTP 402, the x402 protocol). When it does, Airlock checks the price, payee, resource and budgets against your policy and signs the payment authorization; the request is then repeated with the payment and the resource returned. A refusal returns an error naming the rule; nothing is paid then.',
  input: {
    url: z.url({ protocol: /^https?$/ }).describe('The resource URL (http or https).'),
    method: z.enum(['GET', 'POST', 'PUT', 'PATCH', 'DELETE']).default('GET').describe('HTTP method. Default GET.'),
    headers: z.record(z.string(), z.string()).optional().describe('Extra request headers, e.g. {"accept":"application/json"}.'),
    body: z.string().optional().describe('Request body (for POST/PUT/PATCH), sent as is.'),
    maxBodyChars: z.number().int().min(1).max(1_000_000).default(DEFAULT_MAX_BODY_CHARS).describe(`Longest response body returned, in characters; longer ones are cut. Default ${DEFAULT_MAX_BODY_CHARS}.`),
  },
  annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: true },
  async run(ctx, args) {
    const response = await ctx.payFetch(args.url, { method: args.method, ...(args.headers ? { headers: args.headers } : {}), ...(args.body !== undefined ? { body: args.body } : {}) });
    const text = await response.text();
    const header = response.headers.get('payment-response') ?? response.headers.get('x-payment-response');
    let payment: Record<string, unknown> | null = null;
    if (header) {
      try {
        const settled = decodePaymentResponseHeader(header);
        payment = { success: settled.success, transaction: settled.transaction, network: settled.network, ...(settled.payer ? { payer: settled.payer } : {}), ...(settled.errorReason ? { errorReason: settled.errorReason } : {}) };
      } catch {
        payment = { undecodable: true };
      }
    }
    return {
      status: response.status,
      ok: response.ok,
      contentType: response.headers.get('content-type'),
      body: text.length > args.maxBodyChars ? text.slice(0, args.maxBodyChars) : text,
      ...(text.length > args.maxBodyChars ? { truncated: true, bodyLength: text.length } : {}),
      paid: payment !== null,
      payment,
    };
  },
});
