// Lightning payments for agents whose wallet is Airlock: pay a BOLT 11 invoice under policy, read a payment
// back, and a wallet object that drops into @getalby/lightning-tools' `fetchWithL402`. Airlock holds the node
// credentials and decides; every preimage it returns is checked here against the payment hash before the
// caller sees it.
import { randomUUID } from 'node:crypto';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { AirlockApiError, AirlockApprovalRequiredError, createAirlockHttp, type AirlockHttp, type AirlockHttpOptions, type Violation } from './http.ts';
import { approvalWaitQuery } from './sign-request.ts';

/** An Airlock connection (`createAirlockHttp(...)`) or the options to make one. */
export type AirlockClient = AirlockHttp | AirlockHttpOptions;

export function airlockHttpOf(client: AirlockClient): AirlockHttp {
  return typeof (client as AirlockHttp).request === 'function' ? (client as AirlockHttp) : createAirlockHttp(client as AirlockHttpOptions);
}

/**
 * Airlock accepted the payment and handed it to its Lightning backend, which has not given a definite answer
 * yet: the amount stays held, and nothing will be paid again for it. Ask later with `getLightningPayment`.
 */
export class AirlockPaymentPendingError extends AirlockApiError {
  readonly paymentId: string;
  readonly paymentHash: string;
  constructor(paymentId: string, paymentHash: string) {
    super(202, 'payment_in_flight', `Lightning payment ${paymentId} is in flight: its outcome is not known yet, and it is not paid again (GET /v1/lightning/payments/${paymentId}).`);
    this.name = 'AirlockPaymentPendingError';
    this.paymentId = paymentId;
    this.paymentHash = paymentHash;
  }
}

/** A payment as Airlock answers it (amounts are decimal strings of millisatoshis on the wire). */
export interface LightningPaymentBody {
  decision?: string;
  paymentId: string;
  status: 'in_flight' | 'succeeded' | 'failed';
  paymentHash: string;
  amountMsat: string;
  maxFeeMsat: string;
  feeMsat?: string;
  preimage?: string;
  reason?: string;
  l402?: { authorization: string; expiresAt?: number };
  auditSeq: number;
  replayed?: true;
}

/** What a 202 from a paying route holds: the payment in flight, or a request waiting for a human. */
interface PendingBody extends Partial<LightningPaymentBody> {
  approvalId?: string;
  expiresAt?: string;
  violations?: Violation[];
}

/** A payment that succeeded: its preimage verified against its payment hash. */
export interface LightningPayment {
  paymentId: string;
  paymentHash: string;
  /** Proof of payment, hex; sha256(preimage) = paymentHash, checked here. */
  preimage: string;
  amountMsat: bigint;
  /** The routing fee it really cost. */
  feeMsat: bigint;
  /** This invoice had already been paid by this agent: this is that payment, not a second one. */
  replayed: boolean;
  /** The audit entry of the decision that allowed it. */
  auditSeq: number;
  /** L402 payments: the Authorization header value and when its macaroon expires (unix seconds). */
  l402?: { authorization: string; expiresAt?: number };
}

export interface PayInvoiceInput {
  /** A BOLT 11 invoice for the network of Airlock's backend. */
  invoice: string;
  /** Only for an invoice without an amount (and only where policy allows amountless invoices). */
  amountMsat?: bigint | string;
  /** Routing fee limit. Default: Airlock's (1 % of the amount, at least 1000 msat). */
  maxFeeMsat?: bigint | string;
}

export interface PaymentWaitOptions {
  /**
   * When a payment needs human approval: wait up to this many ms (polling) for the decision. Default 0: throw
   * AirlockApprovalRequiredError at once.
   */
  approvalWaitMs?: number;
}

/**
 * Pays an invoice through Airlock (POST /v1/lightning/pay) and returns the verified payment. Throws
 * AirlockPolicyError (with the violations) on a refusal, AirlockApprovalRequiredError when a human must decide,
 * AirlockPaymentPendingError when the payment is in flight, AirlockApiError (`lightning_payment_failed`, …)
 * otherwise. The same invoice paid again answers the first payment (`replayed`), never a second one.
 */
export async function payLightningInvoice(client: AirlockClient, input: PayInvoiceInput, options: PaymentWaitOptions = {}): Promise<LightningPayment> {
  const http = airlockHttpOf(client);
  const body = { invoice: input.invoice, ...(input.amountMsat !== undefined ? { amountMsat: String(input.amountMsat) } : {}), ...(input.maxFeeMsat !== undefined ? { maxFeeMsat: String(input.maxFeeMsat) } : {}) };
  const answer = await postOnce(http, '/v1/lightning/pay', body);
  return settledPayment(http, answer, options.approvalWaitMs ?? 0);
}

/** A payment by id (GET /v1/lightning/payments/:id): in flight, succeeded (with its preimage) or failed. */
export async function getLightningPayment(client: AirlockClient, paymentId: string): Promise<LightningPaymentBody> {
  const { body } = await airlockHttpOf(client).request<LightningPaymentBody>('GET', `/v1/lightning/payments/${encodeURIComponent(paymentId)}`);
  if (body.status === 'succeeded') checkPreimage(body);
  return body;
}

/** The wallet interface of @getalby/lightning-tools (`fetchWithL402`, `fetch402`, …), `fees_paid` in msat. */
export interface LightningToolsWallet {
  payInvoice(args: { invoice: string }): Promise<{ preimage: string; fees_paid?: number }>;
}

/**
 * A wallet for @getalby/lightning-tools that pays through Airlock:
 * `fetchWithL402(url, {}, { wallet: airlockLightningWallet({ url, token }) })`. Every invoice goes through the
 * agent's policy; refusals throw as payLightningInvoice does (the library passes them on unchanged).
 * The library pays the challenge's invoice without telling the wallet the URL, so Airlock cannot apply
 * resource rules or per-origin budgets to these payments: createL402Fetch can, and also reuses tokens.
 */
export function airlockLightningWallet(client: AirlockClient, options: PaymentWaitOptions & { maxFeeMsat?: bigint | string } = {}): LightningToolsWallet {
  const http = airlockHttpOf(client);
  return {
    async payInvoice({ invoice }) {
      const paid = await payLightningInvoice(http, { invoice, ...(options.maxFeeMsat !== undefined ? { maxFeeMsat: options.maxFeeMsat } : {}) }, options);
      // msat, as NIP-47 reports fees and as lightning-tools passes them on (PaymentInfo.feesPaid); a fee
      // never comes near 2^53 msat.
      return { preimage: paid.preimage, fees_paid: Number(paid.feeMsat) };
    },
  };
}

/**
 * One POST with one idempotency key, reused on transport retries so that a retry is never a second payment.
 * Only transport failures (fetch's TypeError) are retried: every answer from Airlock is final.
 */
export async function postOnce<T>(http: AirlockHttp, path: string, body: unknown): Promise<{ status: number; body: T }> {
  const key = randomUUID();
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await http.request<T>('POST', path, body, { 'idempotency-key': key });
    } catch (e) {
      if (!(e instanceof TypeError)) throw e;
      lastError = e;
      await new Promise((r) => setTimeout(r, 100 * 2 ** attempt));
    }
  }
  throw lastError;
}

/**
 * A paying route's answer as a succeeded payment, or the typed error for anything else: 202 in flight
 * (AirlockPaymentPendingError), 202 waiting for a human (AirlockApprovalRequiredError, after waiting up to
 * `approvalWaitMs`), 200 failed when read back (AirlockApiError `lightning_payment_failed`).
 */
async function settledPayment(http: AirlockHttp, answer: { status: number; body: unknown }, approvalWaitMs: number): Promise<LightningPayment> {
  let body = answer.body as PendingBody;
  if (answer.status === 202 && body.approvalId !== undefined) body = await waitForApproval(http, body, approvalWaitMs);
  return paymentFrom(body);
}

/** A payment body as a LightningPayment, or the error its state calls for. */
export function paymentFrom(body: Partial<LightningPaymentBody>): LightningPayment {
  if (body.status === 'in_flight') throw new AirlockPaymentPendingError(body.paymentId!, body.paymentHash!);
  if (body.status !== 'succeeded') {
    throw new AirlockApiError(502, 'lightning_payment_failed', `The payment failed (${body.reason ?? 'unknown'}); nothing was paid.`, { details: { paymentId: body.paymentId, reason: body.reason ?? 'unknown' } });
  }
  const ok = body as LightningPaymentBody;
  checkPreimage(ok);
  return {
    paymentId: ok.paymentId,
    paymentHash: ok.paymentHash,
    preimage: ok.preimage!,
    amountMsat: BigInt(ok.amountMsat),
    feeMsat: BigInt(ok.feeMsat ?? '0'),
    replayed: ok.replayed === true,
    auditSeq: ok.auditSeq,
    ...(ok.l402 ? { l402: ok.l402 } : {}),
  };
}

/**
 * Polls the approval until a human decides or `waitMs` runs out. Approved: the payment's answer (its result).
 * Still pending: AirlockApprovalRequiredError. Denied or expired: AirlockApiError `approval_denied` /
 * `approval_expired` (nothing was paid).
 */
export async function waitForApproval(http: AirlockHttp, pending: PendingBody, waitMs: number): Promise<PendingBody> {
  const id = pending.approvalId!;
  const deadline = Date.now() + waitMs;
  while (waitMs > 0 && Date.now() < deadline) {
    // Long poll: Airlock answers as soon as a decision lands, or when `wait` runs out.
    const decided = await approvalOutcome(http, id, deadline);
    if (decided !== undefined) return decided;
  }
  throw new AirlockApprovalRequiredError(id, pending.expiresAt ?? '', pending.violations ?? []);
}

/** An approval's result once approved, undefined while pending; a denial or expiry throws. `deadline` (ms): long-poll until then. */
export async function approvalOutcome(http: AirlockHttp, approvalId: string, deadline?: number): Promise<PendingBody | undefined> {
  const { body } = await http.request<{ state: string; result?: PendingBody }>('GET', `/v1/approvals/${encodeURIComponent(approvalId)}${deadline !== undefined ? approvalWaitQuery(deadline) : ''}`);
  if (body.state === 'pending' || (body.state === 'approved' && body.result === undefined)) return undefined;
  if (body.state === 'approved') {
    // An approval's result is the operator's view of the payment (operators read approvals): no preimage, no L402
    // credential. The agent's own view of the payment holds them (found by review: an approved payment that
    // succeeded was reported as "paid with a preimage that does not match its payment hash").
    const paymentId = body.result!.paymentId;
    if (typeof paymentId !== 'string') return body.result!;
    return (await http.request<PendingBody>('GET', `/v1/lightning/payments/${encodeURIComponent(paymentId)}`)).body;
  }
  throw new AirlockApiError(403, `approval_${body.state}`, `The payment waiting for approval ${approvalId} was ${body.state}; nothing was paid.`);
}

/** Airlock checks the preimage; so does the SDK, so a corrupted answer is never handed on as proof of payment. */
function checkPreimage(body: LightningPaymentBody): void {
  const preimage = body.preimage ?? '';
  if (!/^[0-9a-f]{64}$/.test(preimage) || bytesToHex(sha256(hexToBytes(preimage))) !== body.paymentHash) {
    throw new AirlockApiError(502, 'invalid_response', `Airlock reported payment ${body.paymentId} as paid with a preimage that does not match its payment hash.`);
  }
  if (body.l402 && !body.l402.authorization.endsWith(`:${preimage}`)) {
    throw new AirlockApiError(502, 'invalid_response', `Airlock returned an L402 credential for payment ${body.paymentId} that does not carry its preimage.`);
  }
}
