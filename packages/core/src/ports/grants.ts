/**
 * Grants: what an agent's key handed to someone else by signing (issue 14, the dependency map). An allowance
 * or a permit outlives the session that asked for it, and the freeze that follows an incident: these rows are
 * what `GET /v1/agents/{id}/dependencies` lists and what the revocation planner undoes on chain.
 *
 * One row per thing granted, written in the signing transaction of the request that granted it (only when the
 * intent grants something: a plain transfer writes nothing). An EIP-3009 authorization bound to a chain is not
 * here: it is a payment record already (ports/payments.ts), and the map reads it from there. One signed under a
 * domain without chainId is not held as a payment (it is charged when signed), so it is a grant row
 * (`eip3009.authorization`), or nothing would list it (found by review).
 */
export const GRANT_KINDS = [
  'erc20.approve', // approve(spender, amount): the allowance becomes `amount`
  'erc20.increase_allowance', // increaseAllowance(spender, added): the allowance grows by `amount`
  'eip2612.permit', // an off-chain permit: live while its nonce is unused and its deadline is ahead
  'dai.permit', // DAI's permit with allowed = true (an unlimited allowance): as eip2612.permit, expiry 0 never lapses
  'permit2.permit', // Permit2 PermitSingle / PermitBatch (one row per token): an allowance inside Permit2
  'permit2.approve', // Permit2 approve(token, spender, amount, expiration) sent as a transaction
  'permit2.transfer', // Permit2 SignatureTransfer: a one-time pull, live while its unordered nonce is unused
  'eip3009.authorization', // EIP-3009 over a chainless domain: a one-time transfer to `spender`, valid on every chain until `deadline`
] as const;
export type GrantKind = (typeof GRANT_KINDS)[number];

export interface GrantRecord {
  agentId: string;
  /** The audit entry of the decision that released the signature (`sign.request`, or `approval.granted`). */
  auditSeq: number;
  /** Position among the grants of one entry (a Permit2 batch grants one per token). */
  index: number;
  kind: GrantKind;
  /** CAIP-2, e.g. `eip155:8453`. */
  chain: string;
  /** The token contract (lowercase). */
  token: string;
  /** Where the grant is enforced: the token itself, or the Permit2 contract (lowercase). */
  contract: string;
  /** The agent's address that signed (lowercase). */
  owner: string;
  /** Who may spend (lowercase). */
  spender: string;
  /** Base units; for `erc20.increase_allowance` the increment. */
  amount: bigint;
  /** max uint256 (max uint160 in Permit2). */
  unlimited: boolean;
  /** Unix seconds the allowance lapses (Permit2's `expiration`); absent when it never does. */
  expiresAt?: number;
  /** Unix seconds after which the signature can no longer be submitted (EIP-2612 deadline, DAI expiry, Permit2 sigDeadline); absent when it never lapses (DAI expiry 0). */
  deadline?: number;
  /** The nonce the signature consumes: decimal for permits, bytes32 hex for an EIP-3009 authorization. */
  nonce?: string;
  /** The EIP-712 domain's name and version the permit was signed under (EIP-2612, DAI): what a burn permit signs under too. */
  domain?: { name?: string; version?: string };
  createdAt: number; // ms
}

export interface GrantStore {
  /** The agent's grants, oldest first (by audit entry, then index); `after` pages past the last row read. */
  listGrants(agentId: string, filter?: { after?: { auditSeq: number; index: number }; limit?: number }): Promise<GrantRecord[]>;
}

export interface GrantStoreTx {
  /** Appends grants in the signing transaction (a row per grant; `(auditSeq, index)` is unique). */
  recordGrants(grants: readonly GrantRecord[]): Promise<void>;
}
