/**
 * How Airlock pays Lightning invoices: through a node or wallet it holds a (pay-only) credential for. The
 * agent never sees that credential. Implementations live outside the core (server/src/lightning/): LND's
 * REST API and Nostr Wallet Connect (NIP-47).
 *
 * The one rule every implementation follows: an answer is DEFINITE only when the payment can no longer
 * change state. Airlock releases a budget hold on a definite failure and on nothing else; anything the
 * backend cannot vouch for (a timeout, a dropped connection, a 5xx, a payment still in flight) is reported as
 * `in_flight` or thrown, and the hold stays until a later `lookup` answers.
 */

export type LightningNetwork = 'bitcoin' | 'testnet' | 'signet' | 'regtest';

export interface LightningPayRequest {
  /** The BOLT 11 invoice, as the payee issued it. */
  invoice: string;
  /** Lowercase hex of the invoice's payment hash (already decoded and checked by Airlock). */
  paymentHash: string;
  /** Only for an amountless invoice: the amount to pay. */
  amountMsat?: bigint;
  /**
   * The most the route may cost. A backend that cannot hand a fee limit to its node (NWC has no such
   * parameter) says so with `enforcesMaxFee: false`; the service then charges the fee reported and alerts when
   * it is above this.
   */
  maxFeeMsat: bigint;
  /** How long the backend may try before giving up (it reports `in_flight` or throws past it, never `failed` on its own timer). */
  timeoutSeconds: number;
}

/**
 * What the backend says about one payment hash.
 * - `succeeded`: paid. `preimage` is lowercase hex; Airlock checks sha256(preimage) = payment hash before believing it.
 *   `feeMsat` is the routing fee actually paid; `amountMsat` what reached the payee, when the backend says.
 *   `feeUnreported`: the backend could not say what fee it paid (NIP-47 makes `fees_paid` optional); `feeMsat` is
 *   then only the request's limit, and Airlock charges the larger of it and its default fee limit for the amount,
 *   and alerts (`fee_unreported`): the agent chooses the limit, and a backend that does not hold it (NWC) may have
 *   paid more.
 * - `failed`: definitely not paid and never will be by this attempt (no route, payee refused, expired,
 *   insufficient balance, the backend refused before trying). `reason` is a short machine word from the backend.
 *   `evidence: 'lookup'` on a pay call's answer: the failure was READ from the backend's payment records (a
 *   confirming lookup after the pay call got no answer of its own), so it may be an earlier attempt's of the same
 *   hash; Airlock then believes it only as it believes a lookup's (once the pay call cannot still be arriving). An
 *   NWC wallet's refusal or failure carries it too, even when its confirming lookup agrees: it is about one copy of
 *   the request, and another relay's copy may still arrive and be paid (nwc-outcomes.ts).
 * - `in_flight`: the backend knows the payment and it is not finished.
 * - `evidence: 'duplicate'` on a pay call's `succeeded` or `in_flight`: the backend refused the call because it
 *   already holds a payment of this hash (LND's 409 "already paid" / "in transition"), and this is that payment's
 *   state, read back. This call moved nothing. Airlock takes it for its own only when one of its records of the hash
 *   made that payment; otherwise it was paid outside Airlock (lncli, another application on the node) and the
 *   request fails (`paid_outside_airlock`): no preimage to the agent, nothing charged.
 * - `not_found`: the backend has no record of this payment hash. Definite only for a payment that was never
 *   handed to it; Airlock treats it as definite only once the pay call cannot still be arriving (see docs/lightning.md).
 */
export type LightningPaymentStatus =
  | { status: 'succeeded'; preimage: string; feeMsat: bigint; amountMsat?: bigint; evidence?: 'duplicate'; feeUnreported?: true }
  | { status: 'failed'; reason: string; evidence?: 'lookup' }
  | { status: 'in_flight'; evidence?: 'duplicate' }
  | { status: 'not_found' };

export interface LightningBackend {
  /** `lnd`, `nwc`, ...: recorded on each payment, shown to operators. */
  readonly kind: string;
  /** The network the backend's node or wallet is on; invoices for another network are refused before paying. */
  readonly network: LightningNetwork;
  /** False when the fee limit is only the wallet's own budget (NWC). Default: true. */
  readonly enforcesMaxFee?: boolean;
  /**
   * Pays and waits (up to `timeoutSeconds` and a little more) for the outcome. Throws on transport trouble
   * (the outcome is then unknown and the hold is kept); never answers `not_found`.
   */
  pay(request: LightningPayRequest): Promise<LightningPaymentStatus>;
  /** Looks a payment up by its hash (lowercase hex). Throws when the backend cannot answer. */
  lookup(paymentHash: string): Promise<LightningPaymentStatus>;
  /** Spendable balance, when the backend can tell. */
  balance?(): Promise<{ msat: bigint }>;
  close?(): Promise<void>;
}
