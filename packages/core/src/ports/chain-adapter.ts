import type { Action, Intent } from '../intent.ts';
import type { ProducedSignature, SignatureScheme } from './key-backend.ts';
import type { PolicyIssue } from '../policy/path.ts';

/** One spend a call makes, as the policy declares it: argument names (dotted) or a fixed CAIP-19 asset. */
export interface DeclaredSpend {
  /** A CAIP-19 asset id, or the name of the address argument holding the token. */
  asset: string;
  /** The name of the unsigned integer argument holding the amount. */
  amount: string;
  /** The name of the address argument receiving what the spend buys; absent: the contract called. */
  to?: string;
}

/**
 * An ABI a policy registers (`abis.<name>`), contracts resolved. The core never parses the fragments:
 * the chain adapter does, in `checkAbis` (when a policy is validated) and `enrich` (when a request is).
 */
export interface AbiDeclaration {
  /** Where it comes from, for messages and violations: `router`, or `agent/abis.router` once layered. */
  name: string;
  /** Lowercase contract addresses. */
  contracts: ReadonlySet<string>;
  /** Human-readable function fragments. */
  functions: readonly string[];
  /** Per function name (or `name(types)`), the spends its calls make. */
  moves: Readonly<Record<string, { spends: readonly DeclaredSpend[] }>>;
}

/** What an adapter needs to know about the signer to decode a request. */
export interface SignerContext {
  /**
   * The agent's address for the key that will sign, in the adapter's own form: a lowercase 0x address
   * (eip155), the x-only public key as lowercase hex (nostr: the agent's Nostr pubkey).
   */
  address: string;
}

/** A request decoded into an intent plus the exact digest that will be signed. */
export interface DecodedRequest {
  intent: Intent;
  /** 32-byte digest the key backend will sign (tx sighash, EIP-712 hash, EIP-191 hash). */
  digest: Uint8Array;
  /**
   * What decode prepared for `finalize`, private to the adapter (for a transaction: the unsigned bytes the
   * digest hashes, so the signed transaction is built from exactly those bytes). The core carries it as is.
   */
  prepared?: unknown;
}

/** What goes back to the agent. */
export interface SignResult {
  /** 65-byte r||s||v signature as 0x-hex (v = 27/28 for messages and typed data, yParity for txs). */
  signature: string;
  /** Serialized signed transaction (0x-hex), for `evm.transaction`. */
  signedTransaction?: string;
  /** Transaction hash, for `evm.transaction`. */
  transactionHash?: string;
  /** `nostr.event` / `nostr.http_auth`: the signed NIP-01 event (`sig` is `signature` without 0x). */
  event?: { id: string; pubkey: string; created_at: number; kind: number; tags: string[][]; content: string; sig: string };
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
  /** The scheme the key backend signs `action`'s digest with. Absent: ECDSA for every action. */
  signatureScheme?(action: Action): SignatureScheme;
  /**
   * Whether the agent record's `address` is this adapter's signer address (eip155). Otherwise the signing
   * service derives it from the key backend: `addressFromPublicKey(getPublicKey(derivationPath(...)))`.
   */
  readonly signerIsAgentAddress?: boolean;
  /**
   * Assembles the result from a signature over `decoded.digest` and verifies it independently
   * (recovers the address and compares with the signer) before returning. Works from `decoded` alone
   * (the one decode of the request): nothing is read from the payload again.
   * Throws AirlockError('signature_check_failed') if it does not verify.
   */
  finalize(action: Action, decoded: DecodedRequest, signature: ProducedSignature, signer: SignerContext): SignResult;
  /**
   * Decodes a call the adapter could not (`contract.call` without arguments) against the ABIs the policy
   * layers register, in order (the first declaration naming the contract and selector wins), and adds the
   * spends they declare. Returns the intent unchanged when no declaration applies. Calldata that does not
   * decode against the registered ABI throws AirlockError('undecodable_payload') with `details.abi`.
   */
  enrich?(intent: Intent, abis: readonly AbiDeclaration[]): Intent;
  /** Checks registered ABIs when a policy is validated: fragments parse, `moves` name real arguments of the right type. */
  checkAbis?(abis: readonly AbiDeclaration[]): PolicyIssue[];
}
