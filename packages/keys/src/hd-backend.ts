/**
 * Software key backend: BIP-32 keys derived from the unsealed root, signing with noble.
 * Every signature is verified against the public key before it leaves this class.
 */
import { AirlockError, type EcdsaSignature, type ExtendedPublicKey, type KeyBackend } from '@airlock/core';
import { bip340Aux, extendedPublicKey, signTaprootKeyPathWith } from './bitcoin-keys.ts';
import { secp256k1, schnorr } from '@noble/curves/secp256k1.js';
import type { HDKey } from '@scure/bip32';
import { formatDerivationPath, parseDerivationPath } from './derivation-path.ts';
import { nip04SharedSecretFrom, nip44ConversationKeyFrom } from './nip44-conversation.ts';
import { deriveSecretFrom } from './derived-secret.ts';

export interface HdKeyBackendOptions {
  /** Derived nodes kept in memory (parents and leaves). Default 4096. */
  cacheSize?: number;
  /**
   * The raw ECDSA signing primitive (RFC 6979, low-S, digest signed as given). Default: noble.
   * NativeKeyBackend swaps in libsecp256k1 here and keeps the derivation and cache of this class.
   */
  ecdsaSign?: EcdsaSignPrimitive;
}

/** Signs a 32-byte digest with a 32-byte private key: RFC 6979 nonce, low-S, recovery id. */
export type EcdsaSignPrimitive = (digest: Uint8Array, privateKey: Uint8Array) => EcdsaSignature;

/** noble: the pure-JS reference. */
export const nobleEcdsaSign: EcdsaSignPrimitive = (digest, privateKey) => {
  // The digest is signed as given (prehash:false); RFC 6979 nonce; s normalised to the low half.
  const recovered = secp256k1.sign(digest, privateKey, { prehash: false, lowS: true, format: 'recovered' });
  // noble's 'recovered' layout is recovery byte || r || s.
  return { compact: recovered.slice(1), recovery: recovered[0]! };
};

/**
 * noble 2.x precomputes the base point with 6-bit windows; 8-bit windows (the table noble 1.x and viem's copy
 * use) make every public key (BIP-32 derivation: three per agent key) and every signature's k·G about a
 * quarter faster here for 60-80 ms of precomputation, done once per process. @scure/bip32 shares this
 * @noble/curves instance, so derivation gets it too.
 */
let basePrecomputed = false;
function precomputeBasePoint(): void {
  if (basePrecomputed) return;
  secp256k1.Point.BASE.precompute(8, false);
  basePrecomputed = true;
}

export class HdKeyBackend implements KeyBackend {
  readonly kind = 'hd';
  /** RFC 6979 nonces (noble), BIP-340 with aux derived from the digest: a replay signs the same bytes. */
  readonly deterministic = true;
  readonly #root: HDKey;
  // Insertion order of a Map is its LRU order: a hit is deleted and re-inserted at the end.
  readonly #cache = new Map<string, HDKey>();
  readonly #cacheSize: number;
  readonly #ecdsaSign: EcdsaSignPrimitive;
  #wiped = false;

  /** Takes the root by reference; whoever owns the root wipes it (see UnsealedVault.wipe). */
  constructor(root: HDKey, options: HdKeyBackendOptions = {}) {
    const cacheSize = options.cacheSize ?? 4096;
    if (!Number.isSafeInteger(cacheSize) || cacheSize < 1) {
      throw new AirlockError('invalid_request', 'cacheSize must be a positive integer');
    }
    this.#root = root;
    this.#cacheSize = cacheSize;
    this.#ecdsaSign = options.ecdsaSign ?? nobleEcdsaSign;
    precomputeBasePoint();
  }

  async getPublicKey(path: string): Promise<Uint8Array> {
    return publicKeyOf(this.#derive(path));
  }

  async signDigest(path: string, digest: Uint8Array, scheme: 'ecdsa-secp256k1'): Promise<EcdsaSignature> {
    if (scheme !== 'ecdsa-secp256k1') throw new AirlockError('invalid_request', 'signDigest only signs ecdsa-secp256k1');
    assertDigest(digest);
    const node = this.#derive(path);
    const privateKey = privateKeyOf(node); // a copy: zeroed below
    let signature: EcdsaSignature;
    try {
      signature = this.#ecdsaSign(digest, privateKey);
    } finally {
      privateKey.fill(0);
    }
    const { compact, recovery } = signature;
    assertEcdsaSignature(compact, recovery);
    return { compact, recovery };
  }

  async getExtendedPublicKey(path: string): Promise<ExtendedPublicKey> {
    const indexes = parseDerivationPath(path);
    const node = this.#derive(path);
    if (!node.chainCode) throw new AirlockError('internal', 'derived key has no chain code');
    const parent = indexes.length > 0 ? publicKeyOf(this.#derive(formatDerivationPath(indexes.slice(0, -1)))) : undefined;
    return extendedPublicKey(indexes, publicKeyOf(node), node.chainCode, parent);
  }

  async signTaprootKeyPath(path: string, digest: Uint8Array): Promise<Uint8Array> {
    assertDigest(digest);
    const privateKey = privateKeyOf(this.#derive(path));
    try {
      return signTaprootKeyPathWith(privateKey, digest);
    } finally {
      privateKey.fill(0);
    }
  }

  async signSchnorr(path: string, digest: Uint8Array): Promise<Uint8Array> {
    assertDigest(digest);
    const node = this.#derive(path);
    const xOnlyPublicKey = publicKeyOf(node).slice(1);
    const privateKey = privateKeyOf(node);
    let signature: Uint8Array;
    try {
      // Aux from the digest (bip340Aux): a replay is the same bytes, as `deterministic` promises.
      signature = schnorr.sign(digest, privateKey, bip340Aux(digest));
    } finally {
      privateKey.fill(0);
    }
    if (!schnorr.verify(signature, digest, xOnlyPublicKey)) {
      throw new AirlockError('signature_check_failed');
    }
    return signature;
  }

  async nip44ConversationKey(path: string, peerXOnly: Uint8Array): Promise<Uint8Array> {
    const privateKey = privateKeyOf(this.#derive(path));
    try {
      return nip44ConversationKeyFrom(privateKey, peerXOnly);
    } finally {
      privateKey.fill(0);
    }
  }

  async nip04SharedSecret(path: string, peerXOnly: Uint8Array): Promise<Uint8Array> {
    const privateKey = privateKeyOf(this.#derive(path));
    try {
      return nip04SharedSecretFrom(privateKey, peerXOnly);
    } finally {
      privateKey.fill(0);
    }
  }

  async deriveSecret(path: string, label: string): Promise<Uint8Array> {
    const privateKey = privateKeyOf(this.#derive(path));
    try {
      return deriveSecretFrom(privateKey, label);
    } finally {
      privateKey.fill(0);
    }
  }

  /** Zeroes every cached private key; the backend refuses to work afterwards. */
  wipe(): void {
    for (const node of this.#cache.values()) node.wipePrivateData();
    this.#cache.clear();
    this.#wiped = true;
  }

  /** Derives from the longest cached prefix, caching each node on the way. */
  #derive(path: string): HDKey {
    if (this.#wiped) throw new AirlockError('sealed', 'the key backend was wiped; unseal the vault again');
    const indexes = parseDerivationPath(path);
    let depth = indexes.length;
    let node: HDKey | undefined;
    for (; depth > 0; depth--) {
      node = this.#cacheGet(formatDerivationPath(indexes.slice(0, depth)));
      if (node) break;
    }
    node ??= this.#root;
    for (; depth < indexes.length; depth++) {
      node = node.deriveChild(indexes[depth]!);
      this.#cacheSet(formatDerivationPath(indexes.slice(0, depth + 1)), node);
    }
    return node;
  }

  #cacheGet(key: string): HDKey | undefined {
    const node = this.#cache.get(key);
    if (node) {
      this.#cache.delete(key);
      this.#cache.set(key, node);
    }
    return node;
  }

  #cacheSet(key: string, node: HDKey): void {
    this.#cache.set(key, node);
    if (this.#cache.size > this.#cacheSize) {
      const [oldestKey, oldest] = this.#cache.entries().next().value!;
      this.#cache.delete(oldestKey);
      // Each HDKey owns its own copy of the private key, so wiping an evicted parent leaves
      // its already-derived children intact.
      oldest.wipePrivateData();
    }
  }
}

function publicKeyOf(node: HDKey): Uint8Array {
  const publicKey = node.publicKey;
  if (!publicKey) throw new AirlockError('internal', 'derived key has no public key');
  return publicKey;
}

function privateKeyOf(node: HDKey): Uint8Array {
  const privateKey = node.privateKey;
  if (!privateKey) throw new AirlockError('sealed', 'the private key is not available; unseal the vault again');
  return privateKey;
}

function assertDigest(digest: Uint8Array): void {
  if (!(digest instanceof Uint8Array) || digest.length !== 32) {
    throw new AirlockError('invalid_request', 'a digest to sign must be exactly 32 bytes');
  }
}

/**
 * Structural checks only: 64 bytes, low-S, recovery id 0 or 1. The cryptographic check (recover the
 * signer and compare with the agent's address) is done once, by the chain adapter, before anything
 * leaves Airlock: it is independent of the backend and stronger (it binds the key to the agent).
 * A second recovery here would double the cost of every signature (~1 ms each in pure JS) for nothing.
 */
function assertEcdsaSignature(compact: Uint8Array, recovery: number): void {
  let ok = false;
  try {
    ok = compact.length === 64 && (recovery === 0 || recovery === 1) && !secp256k1.Signature.fromBytes(compact, 'compact').hasHighS();
  } catch {
    ok = false;
  }
  if (!ok) throw new AirlockError('signature_check_failed');
}

