import type { ExtendedPublicKey } from './chain-adapter.ts';

/**
 * Where private keys live. The core only ever sees public keys and signatures.
 * Implementations: HD software backend (keys/), later PKCS#11 and threshold backends.
 */
export type SignatureScheme = 'ecdsa-secp256k1' | 'schnorr-secp256k1';

export interface EcdsaSignature {
  /** 64 bytes r || s, s always in the lower half of the curve order. */
  compact: Uint8Array;
  /** Recovery id (0 or 1) for the low-S signature. */
  recovery: number;
}

/** A BIP-340 signature as produced for an action whose adapter signs with Schnorr (Nostr). */
export interface SchnorrSignature {
  /** 64 bytes. */
  schnorr: Uint8Array;
}

/** What the key backend hands a chain adapter to finalize: the scheme follows from the action. */
export type ProducedSignature = EcdsaSignature | SchnorrSignature;

/**
 * A signature asked for by naming the committed decision that allowed it, not a digest (a key process,
 * docs/custody.md "Separate key process"). The backend reads the entry itself, checks that it allowed exactly
 * this request (its requestHash) for this agent, decodes the payload with the same chain adapter and signs only
 * what that decode yields: whoever asks can get nothing signed that was not evaluated and recorded.
 */
export type BoundSigningRequest = DecisionBoundRequest | LifecycleBoundRequest;

/** An agent's request, bound to the decision that allowed it. */
export interface DecisionBoundRequest {
  kind?: 'decision';
  /**
   * The entry that allowed it: the `sign.request` with decision `allow`, the `sign.replay` (allow) of a replayed
   * request, or, with `approvalId`, the `sign.request` an approved approval holds.
   */
  auditSeq: number;
  agentId: string;
  action: string;
  /** The request exactly as the agent sent it (what requestHash covered, with `x402`). */
  payload: unknown;
  /** The x402 context the request hash covered (`/v1/sign/typed-data` with `x402`, `/v1/x402/pay`). */
  x402?: unknown;
  approvalId?: string;
}

/**
 * A lifecycle signature (a sweep, a revocation, a revocation's permit or cancel signature), bound to the
 * committed `lifecycle.planned` entry that recorded exactly what is signed, with which of the agent's keys. The
 * backend checks the entry, decodes the payload itself, and signs only a call the lifecycle path could have planned
 * (core/lifecycle/lifecycle-calls.ts): a transfer to the agent's current key or the fleet treasury, or a revocation.
 */
export interface LifecycleBoundRequest {
  kind: 'lifecycle';
  /** The `lifecycle.planned` entry. */
  auditSeq: number;
  agentId: string;
  /** `evm.transaction` or `evm.typed_data`. */
  action: string;
  /** The payload the entry recorded (JSON only: quantities as 0x-hex strings). */
  payload: unknown;
  /** Which of the agent's keys signs (m/44'/60'/{accountIndex}'/0/{keyIndex}); old keys included. */
  keyIndex: number;
}

/** The tree head the audit key signs: the backend may recompute `rootHash` from the log itself. */
export interface TreeHeadToSign {
  treeSize: number;
  /** Hex. */
  rootHash: string;
  /** Milliseconds since the epoch. */
  at: number;
}

export interface KeyBackend {
  readonly kind: string;
  /**
   * Whether signing the same digest with the same key always gives the same bytes (RFC 6979 ECDSA, BIP-340 with
   * aux derived from the message): true for the HD and native backends. False for a PKCS#11 token (a random
   * nonce per signature): the signing service then stores what it released for each charged decision and
   * answers every replay with those bytes (service/released-signatures.ts), since a replay must be
   * byte-identical to what was charged.
   */
  readonly deterministic: boolean;
  /**
   * Optional: the signatures of a request bound to its committed decision, in task order (as the signing
   * service's produceSignatures). A backend with this method may refuse the unbound `signDigest` for agent keys.
   */
  signBound?(request: BoundSigningRequest): Promise<ProducedSignature[]>;
  /** Optional: BIP-340 over treeHeadDigest(head) with the key at `path`, after the backend checked the head. */
  signTreeHead?(path: string, head: TreeHeadToSign): Promise<Uint8Array>;
  /** 33-byte compressed secp256k1 public key at a BIP-32 path such as `m/44'/60'/7'/0/0`. */
  getPublicKey(path: string): Promise<Uint8Array>;
  /** Signs a 32-byte digest exactly as given (no prehash); the same bytes every time when `deterministic`. */
  signDigest(path: string, digest: Uint8Array, scheme: 'ecdsa-secp256k1'): Promise<EcdsaSignature>;
  /**
   * The BIP-32 node at `path` without its private key (public key, chain code, parent fingerprint): what a
   * Bitcoin account's xpub and descriptors are made of. Paths are hardened down to the account.
   */
  getExtendedPublicKey(path: string): Promise<ExtendedPublicKey>;
  /**
   * BIP-340 over a 32-byte digest with the key at `path` tweaked for a BIP-341 key-path spend without a script
   * tree (BIP-86: t = hash_TapTweak(x(P)), d' = d + t with d negated when P has an odd y). Deterministic (the
   * auxiliary randomness is derived from the digest): a replay returns the same bytes. Verified against the
   * tweaked output key before it returns.
   */
  signTaprootKeyPath(path: string, digest: Uint8Array): Promise<Uint8Array>;
  /** BIP-340 over a 32-byte digest (the audit key; agents' Nostr keys). Verified against the x-only key before it returns. */
  signSchnorr(path: string, digest: Uint8Array): Promise<Uint8Array>;
  /**
   * NIP-44 v2 conversation key between the key at `path` and a peer's x-only public key (32 bytes):
   * HKDF-extract(salt `nip44-v2`, ECDH shared x). The ECDH runs here: the private key never leaves the backend.
   */
  nip44ConversationKey(path: string, peerXOnly: Uint8Array): Promise<Uint8Array>;
  /** NIP-04's AES key with a peer: the unhashed ECDH shared x (32 bytes), computed here like the NIP-44 key. */
  nip04SharedSecret(path: string, peerXOnly: Uint8Array): Promise<Uint8Array>;
  /**
   * A 32-byte symmetric secret bound to the key at `path` and a label (HMAC-SHA256 keyed with that private key,
   * keys/src/derived-secret.ts): webhook signing secrets, which the daemon needs in clear to sign and so are
   * derived again when needed instead of being stored. The private key never leaves the backend.
   */
  deriveSecret(path: string, label: string): Promise<Uint8Array>;
}
