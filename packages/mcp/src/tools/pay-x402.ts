// Pays an HTTP 402 resource with the SDK's fetchWithAirlock (the official @x402/fetch client with Airlock as its
// signer): Airlock applies the payee, resource, price and budget rules before anything is signed.
//
// What a call paid is what Airlock signed during it, not what the server reports (found by review): a server can
// take the signed authorization, answer without a PAYMENT-RESPONSE or hang up, and settle it later; a model told
// "not paid" then retries, and every retry signs a new authorization. So the result, success or error, carries
// what was signed (`paymentSigned`), and the server's own report stays apart (`payment`). Airlock's signing is
// bounded by the call's deadline too; cut off, the authorization may be signed but never reaches the server
// (`paid: 'maybe'`).
import type { X402PaymentTerms, X402SignedAuthorization } from '@airlock/sdk';
import { decodePaymentResponseHeader } from '@x402/core/http';
import { z } from 'zod';
import { PaidThenFailedError, ToolError } from '../results.ts';
import type { X402Call } from '../context.ts';
import { addressField, amountField, checkRequestHeaders, paidFetchShape, answerFields, readCappedBody } from './fields.ts';
import { defineTool } from './tool.ts';
import { startDeadline } from './time-limit.ts';

/** Request headers that carry an x402 payment or its receipt: the x402 client sets them; one from the model would have it sign a payment it then discards. */
const PAYMENT_HEADERS = ['payment-signature', 'x-payment', 'payment-response', 'x-payment-response'];

export const payX402Tool = defineTool({
  name: 'pay_x402',
  title: 'Pay for an x402 resource',
  description:
    'Fetch an HTTP resource that may ask for payment (HTTP 402, the x402 protocol). When it does, Airlock checks the price, payee, resource and budgets against your policy and signs the payment authorization; the request is then repeated with the payment and the resource returned. A refusal returns an error naming the rule; nothing is paid then. `paid` and `paymentSigned` say what Airlock signed during the call, in results and errors alike: a signed authorization can be settled by the server even when the call then failed, so do not simply retry a failed call that shows one. `paid: "maybe"` in an error: the time limit ran out while Airlock was deciding; it may have signed, but nothing was sent to the server.',
  input: {
    ...paidFetchShape(' Payment headers (PAYMENT-SIGNATURE, X-PAYMENT, PAYMENT-RESPONSE) are set by this tool and refused here.'),
    maxAmount: amountField.optional().describe('Optional: the most you expect to pay, in base units of the asset asked for (1 USDC = "1000000"). A 402 asking more is refused (payment_not_as_expected) before anything is signed.'),
    payTo: addressField.optional().describe('Optional: the payee you expect. A 402 paying anyone else is refused (payment_not_as_expected) before anything is signed.'),
    asset: addressField.optional().describe('Optional: the token contract you expect to pay in (maxAmount is in its base units). A 402 asking for another token is refused (payment_not_as_expected) before anything is signed.'),
    network: z
      .string()
      .regex(/^eip155:[1-9]\d{0,11}$/, 'a CAIP-2 EVM chain id such as eip155:8453')
      .optional()
      .describe('Optional: the chain you expect to pay on, CAIP-2 (Base is "eip155:8453"). The same token address can be another token on another chain: a 402 asking for payment on another chain is refused (payment_not_as_expected) before anything is signed.'),
  },
  annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: true },
  async run(ctx, args) {
    checkRequestHeaders(args.headers, { names: PAYMENT_HEADERS, why: 'The x402 payment headers are set by pay_x402 itself when the resource asks for payment; send the request without them.' });
    const deadline = startDeadline(ctx.config, 'pay_x402');
    let asked: X402PaymentTerms | undefined;
    const call: X402Call = {
      signed: [],
      beforeSign: (terms) => {
        // Nothing is signed once the time is up: the paid request could not be sent any more.
        deadline.signal.throwIfAborted();
        checkExpected(terms, args);
        asked = terms;
      },
    };
    try {
      const init = { method: args.method, ...(args.headers ? { headers: args.headers } : {}), ...(args.body !== undefined ? { body: args.body } : {}), signal: deadline.signal };
      const response = await ctx.withinDeadline(deadline, () => ctx.payFetch(args.url, init, call));
      const body = await readCappedBody(response, args.maxBodyChars);
      const payment = settlementReport(response);
      const signed = call.signed.at(-1);
      return {
        ...answerFields(response, body, args.maxBodyChars),
        paid: signed !== undefined,
        paymentSigned: signed ? signedPayment(signed) : null,
        payment,
        ...(signed && payment?.['success'] !== true ? { notes: [`Airlock signed a payment for this request and the server received it, but did not report settling it: it can settle it ${settleableUntil(signed)}, whether or not it says so. Do not call again to pay for it.`] } : {}),
      };
    } catch (e) {
      // The x402 client signs once per call (no recovery hook is registered); the last one is what the server holds.
      const signed = call.signed.at(-1);
      if (!signed && deadline.undecided) {
        throw new PaidThenFailedError(
          e,
          { paymentSigned: null, ...(asked ? { paymentAsked: asked } : {}), idempotencyKey: deadline.undecided.idempotencyKey },
          `Airlock had not answered the request to sign this payment (Idempotency-Key ${deadline.undecided.idempotencyKey}) when the time limit ran out; it may still sign it and hold the amount against the budget. The payment was not sent to the server, so it cannot be settled. Do not retry blindly: tell the user; a new call signs a new payment, and the budget may count both until this one expires.`,
          'maybe',
        );
      }
      if (!signed) throw e;
      throw new PaidThenFailedError(e, { paymentSigned: signedPayment(signed) }, `Airlock signed a payment for this request before it failed. The server may have received it, and can then settle it ${settleableUntil(signed)}, whether or not it answered. Do not simply retry: every retry signs a new payment. Tell the user.`);
    } finally {
      deadline.end();
    }
  },
});

/** Refuses (before Airlock signs) a payment other than the model said it expects; nothing to check when it named nothing. */
function checkExpected(terms: X402PaymentTerms | undefined, expected: { maxAmount?: string | undefined; payTo?: string | undefined; asset?: string | undefined; network?: string | undefined }): void {
  if (expected.maxAmount === undefined && expected.payTo === undefined && expected.asset === undefined && expected.network === undefined) return;
  const refuse = (why: string) =>
    new ToolError('payment_not_as_expected', `The resource asks for a payment you did not expect (${why}); nothing was signed.`, ['Check the URL and the price with the user; call again with maxAmount and payTo as agreed.']);
  if (!terms) throw refuse('its payment is not a transfer whose amount and payee can be read');
  if (expected.maxAmount !== undefined && BigInt(terms.amount) > BigInt(expected.maxAmount)) throw refuse(`${terms.amount} of ${terms.asset} on ${terms.network}, more than maxAmount ${expected.maxAmount}`);
  if (expected.payTo !== undefined && terms.payTo.toLowerCase() !== expected.payTo.toLowerCase()) throw refuse(`paying ${terms.payTo}, not payTo ${expected.payTo}`);
  // maxAmount is in base units of whatever token the server names: without `asset` it caps the number, not the value.
  if (expected.asset !== undefined && terms.asset.toLowerCase() !== expected.asset.toLowerCase()) throw refuse(`paying in ${terms.asset}, not asset ${expected.asset}`);
  // The chain the signature is bound to (its EIP-712 domain), not the one the 402 names beside it.
  if (expected.network !== undefined && terms.network !== expected.network) throw refuse(`paying on ${terms.network}, not network ${expected.network}`);
}

/** What Airlock signed, as the model reads it. */
function signedPayment(signed: X402SignedAuthorization): Record<string, unknown> {
  return { ...(signed.terms ?? { primaryType: signed.primaryType }), ...(signed.paymentId ? { paymentId: signed.paymentId } : {}) };
}

function settleableUntil(signed: X402SignedAuthorization): string {
  const until = new Date(Number(signed.terms?.validBefore) * 1000);
  return Number.isNaN(until.getTime()) ? 'while the authorization is valid' : `until ${until.toISOString()}`;
}

/** The server's own PAYMENT-RESPONSE (its word on settlement), or null when it sent none. */
function settlementReport(response: Response): Record<string, unknown> | null {
  const header = response.headers.get('payment-response') ?? response.headers.get('x-payment-response');
  if (!header) return null;
  try {
    const settled = decodePaymentResponseHeader(header);
    return { success: settled.success, transaction: settled.transaction, network: settled.network, ...(settled.payer ? { payer: settled.payer } : {}), ...(settled.errorReason ? { errorReason: settled.errorReason } : {}) };
  } catch {
    return { undecodable: true };
  }
}
