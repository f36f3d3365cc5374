import { ripemd160 } from '@noble/hashes/legacy.js';
import { sha256 } from '@noble/hashes/sha2.js';
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
 * A call that a function makes its contract's account execute (a module's exec function), as the policy declares
 * it: the names of the arguments holding the target, the native value, the calldata and the operation.
 */
export interface DeclaredExecution {
  /** The address argument: the call's target. */
  to: string;
  /** The unsigned integer argument: native value sent; absent: none. */
  value?: string;
  /** The bytes argument: the calldata. */
  data: string;
  /** The uint8 argument: 0 CALL, 1 DELEGATECALL (Safe's Enum.Operation); absent: always CALL. */
  operation?: string;
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
  /** Per function name (or `name(types)`), the spends its calls make, or the call it makes its account execute. */
  moves: Readonly<Record<string, { spends?: readonly DeclaredSpend[]; executes?: DeclaredExecution }>>;
}

/** What an adapter needs to know about the signer to decode a request. */
export interface SignerContext {
  /**
   * The agent's address for the key that will sign, in the adapter's own form: a lowercase 0x address
   * (eip155), the x-only public key as lowercase hex (nostr: the agent's Nostr pubkey).
   */
  address: string;
  /**
   * Extended public keys at the paths the adapter asked for (`signerKeyPaths`), keyed by path: a Bitcoin
   * account's keys, from which the adapter derives (and so proves) the agent's input and change scripts.
   */
  extendedKeys?: Readonly<Record<string, ExtendedPublicKey>>;
  /** BIP-32 fingerprint of the vault's master key (first 4 bytes of hash160 of its public key), as PSBTs and descriptors name it. */
  masterFingerprint?: number;
}

/** BIP-32 fingerprint of a public key: the first 4 bytes of hash160 (RIPEMD-160 of SHA-256), big-endian. */
export function bip32Fingerprint(publicKey: Uint8Array): number {
  const h = ripemd160(sha256(publicKey));
  return ((h[0]! << 24) | (h[1]! << 16) | (h[2]! << 8) | h[3]!) >>> 0;
}

/** A BIP-32 node without its private key: enough to derive its non-hardened children. */
export interface ExtendedPublicKey {
  /** 33-byte compressed public key. */
  publicKey: Uint8Array;
  /** 32-byte chain code. */
  chainCode: Uint8Array;
  /** The parent's fingerprint (an xpub serialisation carries it). */
  parentFingerprint: number;
  depth: number;
  /** The node's own index (hardened indexes include 2^31). */
  index: number;
}

/**
 * One signature a request needs when it needs several, or keys other than the agent's one signing key (a PSBT:
 * one per input of the agent, each at its own address's path).
 */
export interface SignatureTask {
  /** Full BIP-32 path of the key, e.g. m/84'/1'/3'/0/7. */
  path: string;
  /** 32-byte digest to sign (the input's sighash). */
  digest: Uint8Array;
  /** `taproot-key-path`: BIP-340 with the key tweaked as BIP-341/86 say for a key-path spend without scripts. */
  scheme: SignatureScheme | 'taproot-key-path';
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
  /**
   * Signatures the request needs, in the order `finalize` receives them. Absent: one signature over `digest`
   * with the agent's key at `derivationPath`. Present, `digest` is a commitment to all of them (what idempotency
   * and replays compare: the same tasks give the same digest).
   */
  tasks?: readonly SignatureTask[];
}

/** What goes back to the agent. */
export interface SignResult {
  /**
   * 65-byte r||s||v signature as 0x-hex (v = 27/28 for messages and typed data, yParity for txs); a BIP-322
   * signature (base64); absent for a PSBT (its signatures are in `psbt`).
   */
  signature?: string;
  /** Serialized signed transaction (0x-hex), for `evm.transaction`. */
  signedTransaction?: string;
  /** Transaction hash, for `evm.transaction`. */
  transactionHash?: string;
  /** `nostr.event` / `nostr.http_auth`: the signed NIP-01 event (`sig` is `signature` without 0x). */
  event?: { id: string; pubkey: string; created_at: number; kind: number; tags: string[][]; content: string; sig: string };
  /** `bitcoin.psbt`: the PSBT (base64) with the agent's signatures added, finalized when asked. */
  psbt?: string;
  /** `bitcoin.psbt` finalized: the network-serialised transaction (hex) and its txid. */
  transaction?: string;
  txid?: string;
  /** `bitcoin.psbt`: which inputs were signed. `bitcoin.message`: the address that signed. */
  signedInputs?: number[];
  address?: string;
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
   * The addresses (lowercase) `payload` names as its signer, read before decoding and without validating
   * anything else (eip155: a transaction's `from`, an EIP-3009 authorization's `from`, an EIP-2612 permit's
   * `owner`). The signing service refuses one that is an earlier key of the agent (`key_rotated`); any other
   * mismatch is left to `decode`. Absent or empty: the payload names none.
   */
  namedSigners?(action: Action, payload: unknown): string[];
  /**
   * Paths whose extended public keys the adapter needs to decode for this agent (`SignerContext.extendedKeys`):
   * a Bitcoin account's m/84'/c'/a' and m/86'/c'/a'. Read once from the key backend and kept.
   */
  signerKeyPaths?(accountIndex: number): string[];
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
   * Throws AirlockError('signature_check_failed') if it does not verify. With `decoded.tasks`, `all` holds one
   * signature per task in task order (`signature` is the first).
   */
  finalize(action: Action, decoded: DecodedRequest, signature: ProducedSignature, signer: SignerContext, all?: readonly ProducedSignature[]): SignResult;
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
