/**
 * What a NIP-47 answer means for a budget hold (packages/core/src/ports/lightning-backend.ts: a hold is released
 * on a DEFINITE failure only). Read against NIP-47 as of nostr-protocol/nips 47.md (2026): error codes
 * RATE_LIMITED, NOT_IMPLEMENTED, INSUFFICIENT_BALANCE, QUOTA_EXCEEDED, RESTRICTED, UNAUTHORIZED, INTERNAL,
 * UNSUPPORTED_ENCRYPTION, OTHER; `pay_invoice` adds PAYMENT_FAILED, `lookup_invoice` adds NOT_FOUND and a
 * `state` of pending | settled | accepted | expired | failed (optional in the spec).
 *
 * pay_invoice
 * | the wallet answers                                   | Airlock says                     | why                                                   |
 * |------------------------------------------------------|----------------------------------|-------------------------------------------------------|
 * | result {preimage, fees_paid}                         | succeeded, fee = fees_paid       | sha256(preimage) equals the payment hash              |
 * | result without a preimage that hashes to the payment | confirm with lookup_invoice      | a success claim without its proof is not believed     |
 * | hash                                                 |                                  |                                                       |
 * | result {preimage}, no fees_paid (optional in spec)   | succeeded; fee from a lookup,    | the request's maximum is the agent's choice (may be   |
 * |                                                      | else unreported (the service     | 0) and the wallet does not hold it; what the wallet   |
 * |                                                      | charges at least its default     | paid is bounded only by its own fee reserve, so the   |
 * |                                                      | fee limit, and alerts)           | charge is a floor and operators are told              |
 * | RATE_LIMITED, NOT_IMPLEMENTED, INSUFFICIENT_BALANCE, | failed (reason = the code,       | the spec defines each as a refusal of the request     |
 * | QUOTA_EXCEEDED, RESTRICTED, UNAUTHORIZED,            | lowercased), evidence 'lookup':  | itself: the wallet did not try to pay THIS copy (it   |
 * | UNSUPPORTED_ENCRYPTION                               | believed only after the grace;   | could not even read it, for the last). But Airlock    |
 * |                                                      | unless a lookup shows this hash  | sends one copy per relay, and a wallet that does not  |
 * |                                                      | paid or in flight: then that; in | de-duplicate may refuse one copy while it pays, or    |
 * |                                                      | flight when the lookup got no    | later pays, another                                   |
 * |                                                      | answer                           |                                                       |
 * | PAYMENT_FAILED                                       | confirm with lookup_invoice      | the spec: "may be due to a timeout": a wallet that    |
 * |                                                      |                                  | stops waiting can leave an HTLC out that still settles |
 * | INTERNAL, OTHER, any code not listed above           | confirm with lookup_invoice      | no telling at which step it happened                  |
 * | no answer within timeoutSeconds (+ grace)            | confirm with lookup_invoice      | the wallet may be paying still                        |
 * | no relay accepted the request                        | thrown                           | outcome unknown (a relay may have taken it anyway)    |
 *
 * lookup_invoice (and "confirm": the lookup after an ambiguous pay answer; refusals have their own rule above)
 * | the wallet answers                    | lookup() says                  | confirm says                                        |
 * |---------------------------------------|--------------------------------|-----------------------------------------------------|
 * | state settled (+ matching preimage)   | succeeded (fee unreported      | succeeded                                           |
 * |                                       | without fees_paid)             |                                                     |
 * | state failed / expired                | failed                         | failed, marked evidence 'lookup': it may be an      |
 * |                                       |                                | earlier attempt's record, or this copy's while      |
 * |                                       |                                | another copy is still on its way (believed after    |
 * |                                       |                                | the grace)                                          |
 * | state pending / accepted              | in_flight                      | in_flight                                           |
 * | no state, preimage matches            | succeeded                      | succeeded                                           |
 * | no state, no preimage                 | in_flight (cannot vouch)       | in_flight                                           |
 * | NOT_FOUND                             | not_found                      | in_flight: the wallet just said it tried; Airlock's  |
 * |                                       |                                | not_found rule decides later, once the pay request   |
 * |                                       |                                | cannot still be arriving                             |
 * | type incoming, another hash, a bad    | thrown                         | in_flight                                           |
 * | preimage, any other error, no answer  |                                |                                                     |
 */
import { AirlockError, type LightningPaymentStatus } from '@airlock/core';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import type { Nip47Reply } from './nwc-transport.ts';

/** Codes by which the wallet refuses a request before trying it (see the table). */
const REFUSED_BEFORE_TRYING: ReadonlySet<string> = new Set(['RATE_LIMITED', 'NOT_IMPLEMENTED', 'INSUFFICIENT_BALANCE', 'QUOTA_EXCEEDED', 'RESTRICTED', 'UNAUTHORIZED', 'UNSUPPORTED_ENCRYPTION']);
const HEX64 = /^[0-9a-f]{64}$/;

/**
 * A pay_invoice answer judged: paid, refused (final unless a lookup shows the hash paid or in flight), paid but
 * the fee is unknown, or ambiguous (confirm with a lookup).
 */
export type PayVerdict =
  | { kind: 'paid'; status: Extract<LightningPaymentStatus, { status: 'succeeded' }> }
  | { kind: 'refused'; status: Extract<LightningPaymentStatus, { status: 'failed' }> }
  | { kind: 'paid_fee_unknown'; preimage: string }
  | { kind: 'confirm'; why: string };

export function judgePayReply(reply: Nip47Reply | undefined, paymentHash: string): PayVerdict {
  if (!reply) return { kind: 'confirm', why: 'no answer in time' };
  if (reply.error) {
    if (REFUSED_BEFORE_TRYING.has(reply.error.code)) return { kind: 'refused', status: { status: 'failed', reason: reply.error.code.toLowerCase() } };
    return { kind: 'confirm', why: `wallet answered ${safeCode(reply.error.code)}` };
  }
  let preimage: string;
  try {
    preimage = checkedPreimage(reply.result?.preimage, paymentHash);
  } catch {
    return { kind: 'confirm', why: 'a success without a matching preimage' };
  }
  const feeMsat = msat(reply.result?.fees_paid);
  if (feeMsat === undefined) return { kind: 'paid_fee_unknown', preimage };
  return { kind: 'paid', status: { status: 'succeeded', preimage, feeMsat } };
}

/**
 * A lookup_invoice answer for an outgoing payment, or undefined when the wallet could not answer (no reply).
 * Throws when the answer cannot be vouched for (see the table); `not_found` only on NOT_FOUND.
 */
export function judgeLookupReply(reply: Nip47Reply | undefined, paymentHash: string): LightningPaymentStatus {
  if (!reply) throw new AirlockError('internal', 'NWC: the wallet did not answer lookup_invoice in time', { details: { outcome: 'unknown' } });
  if (reply.error) {
    if (reply.error.code === 'NOT_FOUND') return { status: 'not_found' };
    throw new AirlockError('internal', `NWC: the wallet could not look the payment up (${safeCode(reply.error.code)})`, { details: { outcome: 'unknown' } });
  }
  const tx = reply.result!;
  // Any JSON may come back: a hash that is not a string is not this payment's (String() of an object can throw).
  if (tx.payment_hash !== undefined && (typeof tx.payment_hash !== 'string' || tx.payment_hash.toLowerCase() !== paymentHash)) {
    throw new AirlockError('internal', 'NWC: lookup_invoice answered for another payment hash');
  }
  if (tx.type === 'incoming') throw new AirlockError('internal', 'NWC: the wallet knows this hash as an incoming invoice, not as a payment it made');
  const paid = () => {
    const preimage = checkedPreimage(tx.preimage, paymentHash);
    const feeMsat = msat(tx.fees_paid);
    const amountMsat = msat(tx.amount);
    // Settled without `fees_paid` (optional in NIP-47): paid, the fee unknown. Throwing here kept such a payment in
    // flight, its hold never released, for a wallet that never reports fees; the service charges at least its
    // default fee limit for it instead, and alerts.
    const fee = feeMsat === undefined ? { feeMsat: 0n, feeUnreported: true as const } : { feeMsat };
    return { status: 'succeeded' as const, preimage, ...fee, ...(amountMsat !== undefined ? { amountMsat } : {}) };
  };
  switch (tx.state) {
    case 'settled':
      return paid();
    case 'failed':
    case 'expired':
      return { status: 'failed', reason: tx.state === 'failed' ? 'payment_failed' : 'expired' };
    case 'pending':
    case 'accepted':
      return { status: 'in_flight' };
    case undefined:
    case null:
      // `state` is optional (wallets from before it was added): a matching preimage is proof of payment, and
      // without one nothing tells pending from failed.
      return tx.preimage ? paid() : { status: 'in_flight' };
    default:
      throw new AirlockError('internal', 'NWC: lookup_invoice answered with an unknown state');
  }
}

/**
 * What a confirming lookup after an ambiguous pay answer means: only a settled or failed record is definite, and a
 * failed one only once no copy of the request can still arrive (`evidence: 'lookup'`: the service believes it after
 * the pay timeout and the not-found grace). The record may be an earlier attempt's of the same hash, read before this
 * request reached the wallet; and even a failure the wallet answered is about the copy it answered: Airlock sends one
 * copy per relay, and a wallet that does not de-duplicate may still take up another and pay it (found by review:
 * PAYMENT_FAILED confirmed by a failed record released the hold at once).
 */
export function confirmedOutcome(looked: LightningPaymentStatus | undefined): LightningPaymentStatus {
  if (!looked || looked.status === 'not_found') return { status: 'in_flight' };
  if (looked.status === 'failed') return { ...looked, evidence: 'lookup' };
  return looked;
}

/**
 * A refusal is final only once no copy of the request can still arrive: the request went out through every relay,
 * and a wallet that does not de-duplicate may refuse one copy (RATE_LIMITED, INSUFFICIENT_BALANCE while it pays the
 * first) and pay another, now or seconds later. So a refusal the lookup shows neither paid nor in flight is kept as
 * a failure with `evidence: 'lookup'`, which the service believes only after the pay timeout and the not-found grace
 * (the payment stays in flight, its hold kept, until the reconciler's lookup then finishes it). Found by review: a
 * refusal confirmed by a NOT_FOUND lookup made at once released the hold while another relay's copy was still to be
 * delivered and paid. A lookup that got no answer confirms nothing at all: in flight.
 */
export function confirmedRefusal(refusal: Extract<LightningPaymentStatus, { status: 'failed' }>, looked: LightningPaymentStatus | undefined): LightningPaymentStatus {
  if (looked === undefined) return { status: 'in_flight' };
  if (looked.status === 'succeeded' || looked.status === 'in_flight') return looked;
  return { ...refusal, evidence: 'lookup' };
}

function checkedPreimage(value: unknown, paymentHash: string): string {
  const preimage = typeof value === 'string' ? value.toLowerCase() : '';
  if (!HEX64.test(preimage)) throw new AirlockError('internal', 'NWC: the wallet reported a payment without a valid preimage', { details: { outcome: 'unknown' } });
  if (bytesToHex(sha256(hexToBytes(preimage))) !== paymentHash) {
    throw new AirlockError('internal', 'NWC: the preimage the wallet reported does not match the payment hash', { details: { outcome: 'unknown' } });
  }
  return preimage;
}

/** NIP-47 amounts are msat as JSON numbers; only a non-negative integer JSON can hold exactly is read. */
function msat(value: unknown): bigint | undefined {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 ? BigInt(value) : undefined;
}

/** Error codes come from the wallet: shown only when they look like a code. */
function safeCode(code: string): string {
  return /^[A-Z_]{1,40}$/.test(code) ? code : 'an unknown error code';
}
