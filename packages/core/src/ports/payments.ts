/**
 * Payment records (x402): every signed EIP-3009 authorization is a payment whose spend is HELD, not
 * charged to the ledger, until it is settled on chain (the holds become ledger entries at settle time)
 * or expired unused (the holds are released). Held amounts count in every window while held.
 */
export type PaymentState = 'reserved' | 'settled' | 'expired';

export interface PaymentRecord {
  id: string; // `pay_` + 16 hex
  agentId: string;
  sessionId: string;
  /** The audit entry of the signing decision that reserved it. */
  auditSeq: number;
  protocol: 'x402';
  /** 1 or 2 when it came through POST /v1/x402/pay; undefined from the generic typed-data path. */
  x402Version?: number;
  /** CAIP-2, e.g. `eip155:8453`. */
  network: string;
  /** Token contract (lowercase 0x). */
  asset: string;
  /** The agent's address (lowercase). */
  from: string;
  /** payTo (lowercase). */
  to: string;
  value: bigint;
  /** bytes32 0x-hex (lowercase). */
  nonce: string;
  validAfter: number; // unix s
  validBefore: number; // unix s
  resource?: string;
  origin?: string;
  state: PaymentState;
  /**
   * Transaction the reconciler found on chain using the nonce, or `assumed` when no RPC could confirm it. Never
   * the agent's report: absent when the chain says the nonce is used but no transaction was found.
   */
  settlementTx?: string;
  /** Transaction hash the agent reported from the server's PAYMENT-RESPONSE (unverified: only its format is checked). */
  reportedTx?: string;
  /**
   * What the chain says moved when the nonce was used (the `Transfer` after `AuthorizationUsed`): it can
   * differ from `value` when another authorization with the same nonce settled. The ledger is charged
   * max(value, settledValue).
   */
  settledValue?: bigint;
  /** The recipient of that transfer (lowercase). */
  settledTo?: string;
  createdAt: number; // ms
  updatedAt: number; // ms
}

/** What moved on chain for a settled payment, as the reconciler found it. */
export interface SettledTransfer {
  value: bigint;
  /** lowercase 0x */
  to: string;
}

export interface PaymentFilter {
  agentId?: string;
  state?: PaymentState;
  /** bytes32 hex (any case). */
  nonce?: string;
  limit?: number;
}

/** Per agent, per origin (`''` when the payment named no resource), per asset (CAIP-19): totals by state. */
export interface PaymentSummaryRow {
  agentId: string;
  origin: string;
  asset: string;
  reserved: bigint;
  settled: bigint;
  released: bigint;
  count: number;
}
