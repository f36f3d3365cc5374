import type { Action, Intent } from '../intent.ts';
import type { EcdsaSignature } from './key-backend.ts';

/** What an adapter needs to know about the signer to decode a request. */
export interface SignerContext {
  /** The agent's address (lowercase) for the key that will sign. */
  address: string;
}

/** A request decoded into an intent plus the exact digest that will be signed. */
export interface DecodedRequest {
  intent: Intent;
  /** 32-byte digest the key backend will sign (tx sighash, EIP-712 hash, EIP-191 hash). */
  digest: Uint8Array;
}

/** What goes back to the agent. */
export interface SignResult {
  /** 65-byte r||s||v signature as 0x-hex (v = 27/28 for messages and typed data, yParity for txs). */
  signature: string;
  /** Serialized signed transaction (0x-hex), for `evm.transaction`. */
  signedTransaction?: string;
  /** Transaction hash, for `evm.transaction`. */
  transactionHash?: string;
}

/**
 * One per chain family (CAIP-2 namespace). Decoding is pure and total: anything it cannot
 * fully understand becomes an AirlockError (fail closed), never a best guess.
 */
export interface ChainAdapter {
  /** CAIP-2 namespace, e.g. `eip155`. */
  readonly namespace: string;
  readonly actions: readonly Action[];
  /** BIP-32 path of an agent's key, e.g. m/44'/60'/{account}'/0/{index}. */
  derivationPath(accountIndex: number, keyIndex: number): string;
  /** Address for a compressed public key. */
  addressFromPublicKey(publicKey: Uint8Array): string;
  decode(action: Action, payload: unknown, signer: SignerContext): DecodedRequest;
  /**
   * Assembles the result from a signature over `decoded.digest` and verifies it independently
   * (recovers the address and compares with the signer) before returning.
   * Throws AirlockError('signature_check_failed') if it does not verify.
   */
  finalize(action: Action, payload: unknown, decoded: DecodedRequest, signature: EcdsaSignature, signer: SignerContext): SignResult;
}
