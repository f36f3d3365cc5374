/**
 * Reads chain state for the payment reconciler (an I/O port; the server implements it over JSON-RPC).
 * Every answer is untrusted: the reconciler releases a hold only when the wall clock and a pinned
 * (finalized or safe) block agree, so one lying or lagging RPC can keep a hold but never free one.
 */
export interface ChainReader extends GrantStateReader {
  /** Whether an RPC is configured for this CAIP-2 network. */
  supports(network: string): boolean;
  /**
   * EIP-3009 `authorizationState(authorizer, nonce)`: true once the nonce was used (or cancelled).
   * At `blockNumber` when given (eth_call pinned to that block), else at the latest block.
   */
  authorizationState(network: string, token: string, from: string, nonce: string, blockNumber?: bigint): Promise<boolean>;
  /**
   * Timestamp (unix seconds) of the latest block. EIP-3009 refuses an authorization once
   * `block.timestamp >= validBefore`, so chain time, not the wall clock, decides when one can no longer settle.
   */
  latestBlockTimestamp(network: string): Promise<number>;
  /** The block the reader pins its evidence to: `finalized` (default) or `safe`, as configured. */
  pinnedBlock(network: string): Promise<PinnedBlock>;
  /**
   * The `AuthorizationUsed(authorizer, nonce)` event of this token and the `Transfer` that followed it in the
   * same transaction (what actually moved). Undefined when no such event is found in the range the reader searches.
   */
  findAuthorizationUse(network: string, token: string, from: string, nonce: string): Promise<AuthorizationUse | undefined>;
}

export interface PinnedBlock {
  /** `finalized` or `safe`. */
  tag: string;
  number: bigint;
  /** unix seconds */
  timestamp: number;
}

export interface AuthorizationUse {
  transactionHash: string;
  blockNumber: bigint;
  /** The token `Transfer` from the authorizer right after the event; absent when none followed (a cancellation). */
  transfer?: { to: string; value: bigint };
}

/**
 * What the dependency map reads to tell a live grant from a dead one (issue 14). Optional: a reader without them
 * leaves every grant `unknown`. Each reads the latest block; a failure throws (the map turns it into `unknown`).
 */
export interface GrantStateReader {
  /** ERC-20 `allowance(owner, spender)`. */
  erc20Allowance?(network: string, token: string, owner: string, spender: string): Promise<bigint>;
  /** EIP-2612 `nonces(owner)`: the next permit nonce. */
  eip2612Nonce?(network: string, token: string, owner: string): Promise<bigint>;
  /** Permit2 `allowance(owner, token, spender)`. */
  permit2Allowance?(network: string, permit2: string, owner: string, token: string, spender: string): Promise<{ amount: bigint; expiration: number; nonce: bigint }>;
  /** Permit2 `nonceBitmap(owner, wordPos)`: bit `nonce & 255` of word `nonce >> 8` is set once an unordered nonce is used. */
  permit2NonceBitmap?(network: string, permit2: string, owner: string, wordPos: bigint): Promise<bigint>;
}

