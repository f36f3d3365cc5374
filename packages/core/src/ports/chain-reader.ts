/**
 * Reads chain state for the payment reconciler (an I/O port; the server implements it over JSON-RPC).
 */
export interface ChainReader {
  /** Whether an RPC is configured for this CAIP-2 network. */
  supports(network: string): boolean;
  /** EIP-3009 `authorizationState(authorizer, nonce)`: true once the nonce was used (or cancelled). */
  authorizationState(network: string, token: string, from: string, nonce: string): Promise<boolean>;
  /**
   * Timestamp (unix seconds) of the latest block. EIP-3009 refuses an authorization once
   * `block.timestamp >= validBefore`, so chain time, not the wall clock, decides when one can no longer settle.
   */
  latestBlockTimestamp(network: string): Promise<number>;
}
