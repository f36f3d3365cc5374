/**
 * What Airlock answers a NIP-47 client, as the wallet service (nostr-protocol/nips 47.md). Pure functions from
 * Airlock's outcomes to NIP-47 results and errors; the wallet service (wallet-service.ts) sends them.
 *
 * pay_invoice (LightningService.pay under the session's policy)
 * | Airlock's outcome                                  | NIP-47 answer                                    | why                                          |
 * |----------------------------------------------------|--------------------------------------------------|----------------------------------------------|
 * | 200 succeeded (preimage verified by Airlock)       | result {preimage, fees_paid}                     | fees_paid is the fee the ledger was charged  |
 * | 403 policy denial, every violation a quota         | QUOTA_EXCEEDED                                   | budget_exceeded / rate_limit_exceeded: "the  |
 * | (budget, rate limit)                               |                                                  | wallet has exceeded its spending quota"      |
 * | 403 policy denial, any other violation             | RESTRICTED                                       | "not allowed to do this operation"           |
 * | 202 held for operator approval                     | OTHER (`approval_required: …`)                   | nothing paid yet, and not refused: no other  |
 * |                                                    |                                                  | code says so; lookup_invoice says pending    |
 * | 202 in flight (the pay timeout passed)             | OTHER (`payment_in_flight: …`)                   | not failed (PAYMENT_FAILED would invite a    |
 * |                                                    |                                                  | retry elsewhere); lookup_invoice tells later |
 * | lightning_payment_failed (definite, hold released) | PAYMENT_FAILED                                   |                                              |
 * | session revoked / expired, agent frozen / retired  | UNAUTHORIZED                                     | "this public key has no wallet connected"    |
 * | invoice malformed / expired / wrong network, bad   | OTHER (`<airlock code>: …`)                      | the request itself is unusable; NIP-47 has   |
 * | amount                                             |                                                  | no code for that                             |
 * | another agent pays this invoice                    | RESTRICTED                                       |                                              |
 * | anything else (store down, audit halted, a bug)    | INTERNAL                                         |                                              |
 * A pay_invoice refused before the payment service is reached (over the client's rate, a dead credential) is kept
 * under its Idempotency-Key as a 403 with that code: any later delivery, on any instance, is answered it again.
 * Every error message starts with Airlock's stable code (`policy_denied: …`) and, for a denial, ends with the
 * violations as `[<layer>/<rule>: <code>]`, so a client can branch on the code and a human sees the rule.
 * Read by Airlock's own NWC client (lightning/nwc-outcomes.ts), these answers keep their meaning: the refusals
 * are "refused before trying", OTHER and INTERNAL are "confirm with lookup_invoice", PAYMENT_FAILED is final
 * once lookup_invoice agrees (state failed).
 *
 * lookup_invoice reports the agent's own payments only: another agent's payment hash is NOT_FOUND, exactly as a
 * hash nobody paid. Payment state in_flight -> `pending`, succeeded -> `settled` (with the preimage: the agent
 * paid for it), failed -> `failed`; a payment waiting for an operator's approval is `pending`, one whose approval
 * was denied or expired is `failed`.
 */
import { AirlockError, isAirlockError, type ApprovalRecord, type LightningPaymentRecord, type SignOutcome, type Violation } from '@airlock/core';

/** NIP-47 error codes (the spec's list, plus PAYMENT_FAILED of pay_invoice and NOT_FOUND of lookup_invoice). */
export type Nip47ErrorCode =
  | 'RATE_LIMITED' | 'NOT_IMPLEMENTED' | 'INSUFFICIENT_BALANCE' | 'QUOTA_EXCEEDED' | 'RESTRICTED' | 'UNAUTHORIZED'
  | 'INTERNAL' | 'UNSUPPORTED_ENCRYPTION' | 'OTHER' | 'PAYMENT_FAILED' | 'NOT_FOUND';

/** A request answered with a NIP-47 error. `message` is shown to the client: never a secret, never the request. */
export class Nip47Refusal extends Error {
  readonly code: Nip47ErrorCode;
  constructor(code: Nip47ErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

/** A NIP-47 `lookup_invoice` / `list_transactions` transaction (amounts in msat as JSON numbers, times in unix seconds). */
export interface Nip47Transaction {
  type: 'outgoing';
  state: 'pending' | 'settled' | 'failed';
  invoice: string;
  description?: string;
  preimage?: string;
  payment_hash: string;
  amount: number;
  fees_paid: number;
  created_at: number;
  expires_at: number;
  settled_at?: number;
}

const DEAD_CREDENTIAL = new Set(['unauthenticated', 'session_expired', 'session_revoked', 'agent_frozen', 'agent_retired']);
const BAD_REQUEST = new Set([
  'invalid_request', 'invalid_amount', 'invalid_hex', 'invalid_json', 'forbidden_json_key', 'payload_too_deep', 'undecodable_payload',
  'invoice_malformed', 'invoice_bad_signature', 'invoice_wrong_network', 'invoice_expired', 'invoice_amount_mismatch',
  'lightning_route_hint_fee_too_high',
]);
const QUOTA_CODES = new Set(['budget_exceeded', 'rate_limit_exceeded']);

/** The NIP-47 error for an error Airlock raised while serving a request. */
export function refusalFor(e: unknown): Nip47Refusal {
  if (e instanceof Nip47Refusal) return e;
  if (!isAirlockError(e)) return new Nip47Refusal('INTERNAL', 'internal: the wallet service failed; nothing was paid by this request.');
  return refusalOfCode(e.code, e.message, e.violations ?? []);
}

function refusalOfCode(code: string, text: string, violations: readonly Violation[]): Nip47Refusal {
  const message = `${code}: ${text}`;
  if (DEAD_CREDENTIAL.has(code)) return new Nip47Refusal('UNAUTHORIZED', message);
  if (code === 'policy_denied') return denial(text, violations);
  if (code === 'lightning_payment_failed') return new Nip47Refusal('PAYMENT_FAILED', message);
  if (code === 'lightning_payment_in_flight') return new Nip47Refusal('RESTRICTED', message);
  if (code === 'rate_limited' || code === 'session_rate_limited' || code === 'lightning_too_many_in_flight') return new Nip47Refusal('RATE_LIMITED', message);
  if (BAD_REQUEST.has(code)) return new Nip47Refusal('OTHER', message);
  return new Nip47Refusal('INTERNAL', message);
}

/**
 * The refusal a stored 403 answer stands for: a policy denial, or a refusal the wallet service kept under the
 * request's key before the payment service was reached (rate_limited, a dead credential), answered again as it
 * was the first time. Undefined for any other stored answer (a payment, a hold for approval).
 */
export function storedRefusal(response: { status: number; body: unknown }): Nip47Refusal | undefined {
  if (response.status !== 403) return undefined;
  const error = (response.body as { error?: { code?: unknown; message?: unknown; violations?: Violation[] } } | null)?.error;
  const code = typeof error?.code === 'string' ? error.code : 'policy_denied';
  const message = typeof error?.message === 'string' ? error.message : 'Denied by policy.';
  return refusalOfCode(code, message, error?.violations ?? []);
}

/** A policy denial: QUOTA_EXCEEDED when only budgets and rate limits stand in the way, RESTRICTED otherwise. */
function denial(message: string, violations: readonly Violation[]): Nip47Refusal {
  const quotaOnly = violations.length > 0 && violations.every((v) => QUOTA_CODES.has(v.code));
  const named = violations.length > 0 ? ` [${violations.map((v) => `${v.rule}: ${v.code}`).join('; ')}]` : '';
  return new Nip47Refusal(quotaOnly ? 'QUOTA_EXCEEDED' : 'RESTRICTED', `policy_denied: ${message}${named}`);
}

/** The pay_invoice result for what LightningService.pay (or getPayment) answered; throws the NIP-47 error otherwise. */
export function payInvoiceResult(outcome: SignOutcome): { preimage: string; fees_paid: number } {
  const body = outcome.body;
  const refused = storedRefusal(outcome);
  if (refused) throw refused;
  if (body.decision === 'require_approval') {
    throw new Nip47Refusal('OTHER', `approval_required: held for an operator's approval (${String(body.approvalId)}); nothing was paid yet. lookup_invoice reports it pending until an operator decides.`);
  }
  switch (body.status) {
    case 'succeeded':
      return { preimage: String(body.preimage), fees_paid: jsonMsat(BigInt(String(body.feeMsat))) };
    case 'failed':
      throw new Nip47Refusal('PAYMENT_FAILED', `lightning_payment_failed: the payment failed (${String(body.reason ?? 'unknown')}); its hold was released and nothing was paid.`);
    case 'in_flight':
      throw new Nip47Refusal('OTHER', `payment_in_flight: the payment (${String(body.paymentId)}) is on its way and has not failed; its amount stays held. Ask lookup_invoice for its outcome.`);
    default:
      throw new AirlockError('internal', 'an unexpected payment outcome');
  }
}

/**
 * One of the agent's payments as a NIP-47 transaction. `description` comes from the invoice when it has one. The
 * invoice is always there: the spec makes it optional, but clients check for it (@getalby/sdk's lookupInvoice
 * rejects an answer without one).
 */
export function transactionOf(p: LightningPaymentRecord, description?: string): Nip47Transaction {
  const settled = p.state === 'succeeded';
  return {
    type: 'outgoing',
    state: p.state === 'in_flight' ? 'pending' : settled ? 'settled' : 'failed',
    invoice: p.invoice,
    ...(description !== undefined ? { description } : {}),
    ...(settled && p.preimage ? { preimage: p.preimage } : {}),
    payment_hash: p.paymentHash,
    amount: jsonMsat(p.amountMsat),
    // What the ledger was charged on top of the amount; nothing while pending (the fee limit is held, not paid).
    fees_paid: jsonMsat(settled ? (p.feeMsat ?? 0n) : 0n),
    created_at: Math.floor(p.createdAt / 1000),
    expires_at: p.expiresAt,
    ...(settled ? { settled_at: Math.floor(p.updatedAt / 1000) } : {}),
  };
}

/**
 * A payment that exists only as an approval request (no payment record yet): pending while an operator may still
 * approve it, failed once denied or expired (it will never be paid). Undefined for an approved one: its payment
 * record answers instead.
 */
export function transactionOfApproval(a: ApprovalRecord): Nip47Transaction | undefined {
  if (a.state === 'approved') return undefined;
  const invoice = (a.request as { payload?: { invoice?: unknown } } | undefined)?.payload?.invoice;
  const ln = (a.summary as { intent?: { lightning?: { paymentHash?: unknown; amountMsat?: unknown; expiresAt?: unknown } } } | undefined)?.intent?.lightning;
  if (typeof invoice !== 'string' || typeof ln?.paymentHash !== 'string' || typeof ln.amountMsat !== 'string' || typeof ln.expiresAt !== 'number') return undefined;
  return {
    type: 'outgoing',
    state: a.state === 'pending' ? 'pending' : 'failed',
    invoice,
    payment_hash: ln.paymentHash,
    amount: jsonMsat(BigInt(ln.amountMsat)),
    fees_paid: 0,
    created_at: Math.floor(a.createdAt / 1000),
    expires_at: ln.expiresAt,
  };
}

/** NIP-47 amounts are JSON numbers: refuse what a number cannot hold exactly rather than round money. */
export function jsonMsat(value: bigint): number {
  if (value < 0n || value > BigInt(Number.MAX_SAFE_INTEGER)) throw new AirlockError('internal', 'an msat amount too large for a JSON number');
  return Number(value);
}
