// Pays an HTTP 402 resource with the SDK's fetchWithAirlock (the official @x402/fetch client with Airlock as its
// signer): Airlock applies the payee, resource, price and budget rules before anything is signed.
import { decodePaymentResponseHeader } from '@x402/core/http';
import { paidFetchShape, readCappedBody, redirectOf, returnedBody } from './fields.ts';
import { defineTool } from './tool.ts';

export const payX402Tool = defineTool({
  name: 'pay_x402',
  title: 'Pay for an x402 resource',
  description:
    'Fetch an HTTP resource that may ask for payment (HTTP 402, the x402 protocol). When it does, Airlock checks the price, payee, resource and budgets against your policy and signs the payment authorization; the request is then repeated with the payment and the resource returned. A refusal returns an error naming the rule; nothing is paid then.',
  input: paidFetchShape(),
  annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: true },
  async run(ctx, args) {
    const response = await ctx.payFetch(args.url, { method: args.method, ...(args.headers ? { headers: args.headers } : {}), ...(args.body !== undefined ? { body: args.body } : {}) });
    const body = await readCappedBody(response, args.maxBodyChars);
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
      ...redirectOf(response),
      ...returnedBody(body, args.maxBodyChars),
      paid: payment !== null,
      payment,
    };
  },
});
