// Pays an HTTP 402 resource over Lightning (L402) with the SDK's createL402Fetch: Airlock checks the challenge's
// macaroon against its invoice and applies the payee, resource, amount, routing and budget rules before it pays,
// and keeps the credential, which later calls to the same origin reuse. The credential and its preimage are a
// bearer secret: the result carries neither, only what was paid. What was paid is what Airlock paid during the call,
// in results and errors alike (found by review: a server that took the payment and then hung up left an error with
// no word of it, and a model would retry). Airlock's answer to the payment is bounded by the call's deadline (it can
// hold for the Lightning pay timeout + 5 s); cut off, the payment may still be made (`paid: 'maybe'`).
import type { L402PaymentMade } from '../context.ts';
import { PaidThenFailedError } from '../results.ts';
import { checkRequestHeaders, paidFetchShape, answerFields, readCappedBody } from './fields.ts';
import { defineTool } from './tool.ts';
import { startDeadline } from './time-limit.ts';

export const payL402Tool = defineTool({
  name: 'pay_l402',
  title: 'Pay for an L402 resource (Lightning)',
  description:
    'Fetch an HTTP resource that may ask for payment over Lightning (HTTP 402 with an L402 or LSAT challenge). When it does, Airlock checks the invoice amount, payee, resource and budgets against your policy and pays it; the request is then repeated with the credential and the resource returned. The credential is kept, so later requests to the same origin pay nothing while it is valid. Amounts are in millisatoshis. A refusal returns an error naming the rule; nothing is paid then. An error with `paid: "maybe"`: the time limit ran out while Airlock was paying, and it may still pay; do not call again at once.',
  input: paidFetchShape(' An Authorization header is sent as is and nothing is paid.'),
  annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: true },
  async run(ctx, args) {
    checkRequestHeaders(args.headers);
    const payments: L402PaymentMade[] = [];
    const deadline = startDeadline(ctx.config, 'pay_l402');
    try {
      const init = { method: args.method, ...(args.headers ? { headers: args.headers } : {}), ...(args.body !== undefined ? { body: args.body } : {}), signal: deadline.signal };
      const response = await ctx.withinDeadline(deadline, () => ctx.l402Fetch(args.url, init, payments));
      // An API may echo the request (and so the credential) back; the secret half is cut before the model sees it.
      // Redacted before it is cut to maxBodyChars: a preimage cut off at the end of what was read lies past that.
      const read = await readCappedBody(response, args.maxBodyChars);
      const body = { ...read, text: ctx.withoutL402Secrets(read.text) };
      // One purchase per call at most (createL402Fetch pays once, then sends once more); the last one is what bought access.
      const made = payments.at(-1);
      // Every string of the result, not only the body: an API may as well put the credential in a header it sends
      // back (a Location, a content type); found by review.
      return withoutSecretsDeep(ctx.withoutL402Secrets, {
        ...answerFields(response, body, args.maxBodyChars),
        paid: made !== undefined,
        payment: made ? paymentOf(made) : null,
      });
    } catch (e) {
      const made = payments.at(-1);
      if (!made && deadline.undecided) {
        throw new PaidThenFailedError(
          e,
          { payment: null, idempotencyKey: deadline.undecided.idempotencyKey },
          `Airlock had not answered the request to pay this resource's Lightning invoice (Idempotency-Key ${deadline.undecided.idempotencyKey}) when the time limit ran out; it may still pay it, and a Lightning payment is final. Do not retry at once: a call while the payment is still in flight may pay a second invoice. Tell the user; once it has succeeded, Airlock keeps its credential and a later call to this origin uses it without paying again (the operator finds the request in Airlock's audit log by its key).`,
          'maybe',
        );
      }
      if (!made) throw e;
      throw new PaidThenFailedError(
        e,
        { payment: paymentOf(made) },
        `Airlock paid ${made.amountMsat} msat over Lightning (payment ${made.paymentId}) for this request before it failed; a Lightning payment is final. Do not simply retry: a retry may pay again. Tell the user.`,
      );
    } finally {
      deadline.end();
    }
  },
});

function paymentOf(made: L402PaymentMade): Record<string, unknown> {
  return { paymentId: made.paymentId, amountMsat: made.amountMsat, feeMsat: made.feeMsat, ...(made.replayed ? { replayed: true } : {}) };
}

/** `value` with `redact` applied to every string in it, at any depth. */
function withoutSecretsDeep<T>(redact: (text: string) => string, value: T): T {
  if (typeof value === 'string') return redact(value) as T;
  if (Array.isArray(value)) return value.map((v: unknown) => withoutSecretsDeep(redact, v)) as T;
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, withoutSecretsDeep(redact, v)])) as T;
  }
  return value;
}
