// L402 (formerly LSAT) for agents whose wallet is Airlock: a fetch that pays L402 APIs through Airlock and
// reuses what it bought. Airlock parses the challenge, checks the macaroon against the invoice, applies the
// agent's policy with the URL as the paid resource (resource rules, per-origin budgets), pays, and keeps the
// credential; this module never pays around a refusal, never sends a request more than twice, and never pays
// again for a payment whose outcome it does not know yet.
import { AirlockApiError, AirlockApprovalRequiredError, type Violation } from './http.ts';
import {
  airlockHttpOf,
  approvalOutcome,
  AirlockPaymentPendingError,
  getLightningPayment,
  paymentFrom,
  postOnce,
  waitForApproval,
  type AirlockClient,
  type LightningPaymentBody,
  type PaymentWaitOptions,
} from './lightning.ts';

export { airlockLightningWallet, AirlockPaymentPendingError, getLightningPayment, payLightningInvoice, type AirlockClient, type LightningPayment, type LightningToolsWallet, type PayInvoiceInput } from './lightning.ts';

export interface L402FetchOptions extends PaymentWaitOptions {
  /** The fetch that reaches the paid APIs. Default: globalThis.fetch. (Airlock is reached with the client's own.) */
  fetch?: typeof globalThis.fetch;
  /** Routing fee limit per payment. Default: Airlock's (1 % of the amount, at least 1000 msat). */
  maxFeeMsat?: bigint | string;
}

export type L402Fetch = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

/** A credential for one origin: the Authorization value and when its macaroon stops being accepted. */
interface Credential {
  authorization: string;
  /** Unix seconds (the macaroon's earliest `*_valid_until` caveat); none: no expiry named. */
  expiresAt?: number;
}

/** What this fetch is waiting on for an origin: a payment in flight, or a payment waiting for a human. */
type Pending = { kind: 'payment'; id: string } | { kind: 'approval'; id: string; expiresAt: string; violations: Violation[] };

/** A credential this close to its expiry is not sent: it could lapse on the way, and a lapsed one costs a payment. */
const EXPIRY_MARGIN_SECONDS = 5;

/**
 * `fetch` for L402 APIs, paid through Airlock: `const fetch = createL402Fetch({ url, token })`.
 *
 * Per origin it sends the credential it already holds (in memory; on a miss it asks Airlock for one this agent
 * bought earlier, GET /v1/l402/token, so a new process reuses its predecessor's). On a 402 with an L402 or
 * LSAT challenge it asks Airlock to pay it (POST /v1/l402/pay with the URL and the WWW-Authenticate value) and
 * sends the request once more with `Authorization: <credential>`. Any other answer is returned as it came.
 *
 * Errors (find them in a cause chain with findAirlockError): AirlockPolicyError with the violations when
 * policy refuses; AirlockApprovalRequiredError when a human must decide (or `approvalWaitMs` ran out);
 * AirlockPaymentPendingError when the payment is in flight (a later call for the origin asks about that
 * payment instead of paying another challenge); AirlockApiError `l402_credential_refused` when the API refuses
 * the credential just bought (not paid again); other AirlockApiErrors as Airlock answers them
 * (`l402_payment_hash_mismatch`, `invoice_expired`, …). Nothing is paid in any of these cases but the last.
 *
 * One credential per origin, as Airlock keeps them: an API that prices its paths as separate services refuses
 * one service's credential on another's path, and every switch between them is a payment.
 *
 * Concurrent requests to one origin share one payment. A request that carries its own Authorization header is
 * sent as it is (L402 uses that header: replacing the caller's credentials is not this fetch's call). Bodies:
 * the request is kept (Request.clone) until the answer to its first sending is known, so a streamed body is
 * sent again intact; it is held in memory meanwhile. A 402 from another origin than the one asked (after a
 * redirect) is returned as it came: the credential is kept per origin and would not reach it.
 */
export function createL402Fetch(client: AirlockClient, options: L402FetchOptions = {}): L402Fetch {
  const http = airlockHttpOf(client);
  const doFetch = options.fetch ?? globalThis.fetch;
  const approvalWaitMs = options.approvalWaitMs ?? 0;
  const credentials = new Map<string, Credential>();
  const pending = new Map<string, Pending>();
  const buying = new Map<string, Promise<Credential>>();

  const send = (request: Request, credential: Credential | undefined): Promise<Response> => {
    if (!credential) return doFetch(request);
    const headers = new Headers(request.headers);
    headers.set('authorization', credential.authorization);
    return doFetch(new Request(request, { headers }));
  };

  /** The credential to try first: in memory, else the newest unexpired one Airlock holds for the origin. */
  const credentialFor = async (origin: string, url: string): Promise<Credential | undefined> => {
    const known = credentials.get(origin);
    if (known && usable(known)) return known;
    credentials.delete(origin);
    try {
      const { body } = await http.request<Credential>('GET', `/v1/l402/token?url=${encodeURIComponent(url)}`);
      const found = { authorization: body.authorization, ...(body.expiresAt !== undefined ? { expiresAt: body.expiresAt } : {}) };
      if (!usable(found)) return undefined;
      credentials.set(origin, found);
      return found;
    } catch (e) {
      if (e instanceof AirlockApiError && e.code === 'not_found') return undefined;
      throw e;
    }
  };

  /** A payment's answer as the origin's credential. In flight: remembered, then thrown. Failed: undefined. */
  const credentialFrom = (origin: string, body: Partial<LightningPaymentBody>): Credential | undefined => {
    if (body.status === 'in_flight') {
      pending.set(origin, { kind: 'payment', id: body.paymentId! });
      throw new AirlockPaymentPendingError(body.paymentId!, body.paymentHash!);
    }
    pending.delete(origin);
    if (body.status === 'failed') return undefined;
    const paid = paymentFrom(body); // checks the preimage against the payment hash
    if (!paid.l402) throw new AirlockApiError(502, 'invalid_response', `Airlock answered payment ${paid.paymentId} without an L402 credential.`);
    const credential = { authorization: paid.l402.authorization, ...(paid.l402.expiresAt !== undefined ? { expiresAt: paid.l402.expiresAt } : {}) };
    credentials.set(origin, credential);
    return credential;
  };

  /**
   * What an earlier call left waiting for this origin, asked about instead of paying another challenge: its
   * credential once paid; undefined when nothing waits or it failed (it bought nothing, so paying anew is no
   * second payment); still waiting: thrown again.
   */
  const resumePending = async (origin: string): Promise<Credential | undefined> => {
    const waiting = pending.get(origin);
    if (!waiting) return undefined;
    if (waiting.kind === 'payment') return credentialFrom(origin, await getLightningPayment(http, waiting.id));
    let decided: Partial<LightningPaymentBody> | undefined;
    try {
      decided = await approvalOutcome(http, waiting.id);
    } catch (e) {
      pending.delete(origin); // denied or expired: said once; the next call starts afresh
      throw e;
    }
    if (decided === undefined) throw new AirlockApprovalRequiredError(waiting.id, waiting.expiresAt, waiting.violations);
    return credentialFrom(origin, decided);
  };

  /** Pays the challenge through Airlock, unless an earlier payment for the origin is still to be settled. */
  const buy = async (origin: string, url: string, challenge: string): Promise<Credential> => {
    const earlier = await resumePending(origin);
    if (earlier) return earlier;
    const request = { url, challenge, ...(options.maxFeeMsat !== undefined ? { maxFeeMsat: String(options.maxFeeMsat) } : {}) };
    const answer = await postOnce<Partial<LightningPaymentBody> & { approvalId?: string; expiresAt?: string; violations?: Violation[] }>(http, '/v1/l402/pay', request);
    let body: Partial<LightningPaymentBody> = answer.body;
    if (answer.status === 202 && answer.body.approvalId !== undefined) {
      const { approvalId, expiresAt = '', violations = [] } = answer.body;
      pending.set(origin, { kind: 'approval', id: approvalId, expiresAt, violations });
      try {
        body = await waitForApproval(http, answer.body, approvalWaitMs);
      } catch (e) {
        if (!(e instanceof AirlockApprovalRequiredError)) pending.delete(origin);
        throw e;
      }
    }
    const credential = credentialFrom(origin, body);
    if (!credential) throw new AirlockApiError(502, 'lightning_payment_failed', `The payment for ${origin} failed (${body.reason ?? 'unknown'}); nothing was paid.`, { details: { paymentId: body.paymentId, reason: body.reason ?? 'unknown' } });
    return credential;
  };

  /** One purchase per origin at a time: a request that meets a 402 while another pays for it waits for that. */
  const buyOnce = (origin: string, url: string, challenge: string): Promise<Credential> => {
    const running = buying.get(origin);
    if (running) return running;
    const purchase = buy(origin, url, challenge).finally(() => buying.delete(origin));
    buying.set(origin, purchase);
    return purchase;
  };

  return async (input, init) => {
    const request = new Request(input, init);
    if (request.headers.has('authorization')) return doFetch(request);
    const url = request.url;
    const origin = new URL(url).origin;
    const held = await credentialFor(origin, url);
    // The original stays unread for a second sending; the first goes out as a clone (Request.clone tees the body).
    const first = await send(request.clone(), held);
    const challenge = l402ChallengeOf(first);
    if (challenge === undefined || (first.url && new URL(first.url).origin !== origin)) return first;
    await first.body?.cancel();
    if (held && credentials.get(origin) === held) credentials.delete(origin);
    const bought = await buyOnce(origin, url, challenge);
    const second = await send(request, bought);
    if (l402ChallengeOf(second) !== undefined) {
      await second.body?.cancel();
      if (credentials.get(origin) === bought) credentials.delete(origin);
      throw new AirlockApiError(402, 'l402_credential_refused', `${origin} refused the L402 credential Airlock just bought for it; it was not paid again.`);
    }
    return second;
  };
}

/** The WWW-Authenticate value of a 402 that offers an L402 or LSAT challenge (Airlock reads it in full). */
function l402ChallengeOf(response: Response): string | undefined {
  if (response.status !== 402) return undefined;
  const header = response.headers.get('www-authenticate');
  return header !== null && /(?:^|[\s,])(?:L402|LSAT)(?:\s|$)/i.test(header) ? header : undefined;
}

function usable(credential: Credential): boolean {
  return credential.expiresAt === undefined || credential.expiresAt - EXPIRY_MARGIN_SECONDS > Date.now() / 1000;
}
