/**
 * Lightning payment records. A payment policy allowed is `in_flight` from the moment its audit entry commits:
 * its worst case (amount + routing fee limit) is HELD and counted by every window. It becomes `succeeded` when
 * the backend reports success with a preimage whose sha256 is the payment hash (the holds are released and the
 * ledger charged the amount plus the fee actually paid), or `failed` on a definite failure (the amount holds are
 * released; the request counts stay charged, as for an x402 authorization that expired). Nothing else moves a
 * hold: a timeout, a crash or a backend that cannot answer leave it held until a lookup answers.
 */
export type LightningPaymentState = 'in_flight' | 'succeeded' | 'failed';

export interface LightningPaymentRecord {
  id: string; // `lnp_` + 16 hex
  agentId: string;
  sessionId: string;
  /** The audit entry of the decision that allowed it (or of the approval that did). */
  auditSeq: number;
  /** The backend kind that pays it (`lnd`, `nwc`). */
  backend: string;
  /** CAIP-2 chain of the network (bip122:…). */
  network: string;
  /** Lowercase hex. One payment in flight or succeeded per payment hash. */
  paymentHash: string;
  /** Payee node id (lowercase hex). */
  payee: string;
  invoice: string;
  amountMsat: bigint;
  maxFeeMsat: bigint;
  /** The routing fee the backend reported (succeeded only). */
  feeMsat?: bigint;
  state: LightningPaymentState;
  /** The backend's word for a definite failure, or how Airlock decided (`not_found_after_grace`). */
  failureReason?: string;
  /**
   * Hex; set when succeeded. The proof of payment, and half of an L402 credential: returned to the agent that
   * paid, never written to the audit log (which records only that it matched the payment hash).
   */
  preimage?: string;
  /** Invoice expiry, unix seconds. */
  expiresAt: number;
  /** The pay call's timeout (seconds): a backend that has no record is believed only after it has passed. */
  timeoutSeconds: number;
  /** L402: the paid resource, its origin, and the macaroon the credential is made of. */
  resource?: string;
  origin?: string;
  l402?: { scheme: 'L402' | 'LSAT'; macaroon: string; expiresAt?: number };
  /** The audit entry that finished it. */
  finishedSeq?: number;
  createdAt: number; // ms
  updatedAt: number; // ms
}

export interface LightningPaymentFilter {
  agentId?: string;
  state?: LightningPaymentState;
  paymentHash?: string;
  limit?: number;
}

/** How a payment finishes (the store checks it is still in flight). */
export interface LightningFinish {
  state: 'succeeded' | 'failed';
  feeMsat?: bigint;
  preimage?: string;
  failureReason?: string;
}
