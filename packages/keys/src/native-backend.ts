/**
 * Native key backend: libsecp256k1 through the `secp256k1` package (Node-API) for both the ECDSA
 * signatures and the BIP-32 child derivation (one point multiplication per level, the cost of
 * provisioning agents). Signatures are byte-identical to HdKeyBackend's (RFC 6979 is deterministic,
 * both normalise to low-S) and derived keys identical to @scure/bip32's: the tests check both.
 *
 * The package is an optional dependency. Its `index.js` silently falls back to a pure-JS `elliptic`
 * build when the addon does not load; we load `secp256k1/bindings` directly so that "native" means native,
 * and `NativeKeyBackend.available()` says false (with the reason) when it is not.
 */
import { createHmac } from 'node:crypto';
import { createRequire } from 'node:module';
import { AirlockError, type EcdsaSignature, type ExtendedPublicKey, type KeyBackend } from '@airlock/core';
import { bip340Aux, extendedPublicKey, signTaprootKeyPathWith } from './bitcoin-keys.ts';
import { schnorr } from '@noble/curves/secp256k1.js';
import type { HDKey } from '@scure/bip32';
import { HARDENED_OFFSET } from '@scure/bip32';
import { formatDerivationPath, parseDerivationPath } from './derivation-path.ts';
import type { EcdsaSignPrimitive, HdKeyBackendOptions } from './hd-backend.ts';
import { nip04SharedSecretFrom, nip44ConversationKeyFrom } from './nip44-conversation.ts';
import { deriveSecretFrom } from './derived-secret.ts';

/** The part of the `secp256k1` package API used here (the package ships no types). */
interface Libsecp256k1 {
  ecdsaSign(digest: Uint8Array, privateKey: Uint8Array): { signature: Uint8Array; recid: number };
  ecdsaVerify(signature: Uint8Array, digest: Uint8Array, publicKey: Uint8Array): boolean;
  ecdsaRecover(signature: Uint8Array, recid: number, digest: Uint8Array, compressed: boolean): Uint8Array;
  signatureImport(der: Uint8Array): Uint8Array;
  signatureNormalize(signature: Uint8Array): Uint8Array;
  privateKeyTweakAdd(privateKey: Uint8Array, tweak: Uint8Array): Uint8Array;
  publicKeyCreate(privateKey: Uint8Array, compressed: boolean): Uint8Array;
  publicKeyConvert(publicKey: Uint8Array, compressed: boolean): Uint8Array;
}

let loaded: { lib: Libsecp256k1 } | { error: string } | undefined;

function load(): { lib: Libsecp256k1 } | { error: string } {
  if (!loaded) {
    try {
      loaded = { lib: createRequire(import.meta.url)('secp256k1/bindings') as Libsecp256k1 };
    } catch (e) {
      loaded = { error: e instanceof Error ? e.message.split('\n')[0]! : String(e) };
    }
  }
  return loaded;
}

/** libsecp256k1 bindings, or throws `internal` if the addon is not available here. */
export function libsecp256k1(): Libsecp256k1 {
  const state = load();
  if ('error' in state) throw new AirlockError('internal', 'the native secp256k1 module is not available', { hints: [state.error] });
  return state.lib;
}

/** libsecp256k1 ECDSA: default nonce function (RFC 6979), output always low-S. */
export const nativeEcdsaSign: EcdsaSignPrimitive = (digest, privateKey) => {
  const { signature, recid } = libsecp256k1().ecdsaSign(digest, privateKey);
  return { compact: signature, recovery: recid };
};

/** 65-byte uncompressed public key recovered from a compact signature; throws on an invalid signature. */
export function nativeRecoverPublicKey(digest: Uint8Array, compact: Uint8Array, recovery: number): Uint8Array {
  return libsecp256k1().ecdsaRecover(compact, recovery, digest, false);
}

/** A derived BIP-32 node: what signing and the next derivation need, nothing else. */
interface NativeNode {
  privateKey: Uint8Array;
  publicKey: Uint8Array;
  chainCode: Uint8Array;
}

/**
 * BIP-32 CKDpriv: I = HMAC-SHA512(c_par, 0x00 || k_par || ser32(i)) for a hardened index, else
 * HMAC-SHA512(c_par, serP(K_par) || ser32(i)); k_i = parse256(I_L) + k_par mod n; c_i = I_R.
 * privateKeyTweakAdd throws when I_L >= n or k_i = 0 (BIP-32: "proceed with the next index"; an event of
 * probability ~2^-127 that we refuse instead, as every agent path is fixed).
 */
function deriveChild(lib: Libsecp256k1, parent: NativeNode, index: number): NativeNode {
  const data = new Uint8Array(37);
  if (index >= HARDENED_OFFSET) data.set(parent.privateKey, 1);
  else data.set(parent.publicKey, 0);
  new DataView(data.buffer).setUint32(33, index, false);
  const I = createHmac('sha512', parent.chainCode).update(data).digest();
  data.fill(0);
  const privateKey = Uint8Array.from(parent.privateKey);
  try {
    lib.privateKeyTweakAdd(privateKey, I.subarray(0, 32)); // in place
  } catch (cause) {
    privateKey.fill(0);
    throw new AirlockError('internal', 'BIP-32 derivation produced an invalid key at this index', { cause });
  } finally {
    I.fill(0, 0, 32);
  }
  return { privateKey, publicKey: lib.publicKeyCreate(privateKey, true), chainCode: Uint8Array.from(I.subarray(32)) };
}

/** 33-byte compressed key -> 65-byte uncompressed; throws on a point not on the curve. */
export function nativeUncompressPublicKey(compressed: Uint8Array): Uint8Array {
  return libsecp256k1().publicKeyConvert(compressed, false);
}

export class NativeKeyBackend implements KeyBackend {
  readonly kind = 'native';
  /** libsecp256k1's default nonce function is RFC 6979: a replay signs the same bytes. */
  readonly deterministic = true;
  readonly #lib: Libsecp256k1;
  readonly #root: NativeNode;
  // Insertion order of a Map is its LRU order: a hit is deleted and re-inserted at the end.
  readonly #cache = new Map<string, NativeNode>();
  readonly #cacheSize: number;
  #wiped = false;

  /** True when the libsecp256k1 addon loads on this machine. */
  static available(): boolean {
    return !('error' in load());
  }

  /** Why the addon did not load (undefined when it did). */
  static unavailableReason(): string | undefined {
    const state = load();
    return 'error' in state ? state.error : undefined;
  }

  /**
   * Copies the root's private key and chain code (zeroed by wipe(); the HDKey itself stays with its owner).
   * Throws `internal` when the addon is not available.
   */
  constructor(root: HDKey, options: Omit<HdKeyBackendOptions, 'ecdsaSign'> = {}) {
    this.#lib = libsecp256k1();
    const cacheSize = options.cacheSize ?? 4096;
    if (!Number.isSafeInteger(cacheSize) || cacheSize < 1) throw new AirlockError('invalid_request', 'cacheSize must be a positive integer');
    if (!root.privateKey || !root.chainCode) throw new AirlockError('sealed', 'the root private key is not available; unseal the vault again');
    this.#cacheSize = cacheSize;
    this.#root = { privateKey: Uint8Array.from(root.privateKey), publicKey: this.#lib.publicKeyCreate(root.privateKey, true), chainCode: Uint8Array.from(root.chainCode) };
  }

  async getPublicKey(path: string): Promise<Uint8Array> {
    return Uint8Array.from(this.#derive(path).publicKey);
  }

  async signDigest(path: string, digest: Uint8Array, scheme: 'ecdsa-secp256k1'): Promise<EcdsaSignature> {
    if (scheme !== 'ecdsa-secp256k1') throw new AirlockError('invalid_request', 'signDigest only signs ecdsa-secp256k1');
    if (!(digest instanceof Uint8Array) || digest.length !== 32) throw new AirlockError('invalid_request', 'a digest to sign must be exactly 32 bytes');
    const { signature, recid } = this.#lib.ecdsaSign(digest, this.#derive(path).privateKey);
    // libsecp256k1 always returns low-S; the adapter recovers the signer before anything is released.
    if (signature.length !== 64 || (recid !== 0 && recid !== 1)) throw new AirlockError('signature_check_failed');
    return { compact: signature, recovery: recid };
  }

  async getExtendedPublicKey(path: string): Promise<ExtendedPublicKey> {
    const indexes = parseDerivationPath(path);
    const node = this.#derive(path);
    const parent = indexes.length > 0 ? this.#derive(formatDerivationPath(indexes.slice(0, -1))).publicKey : undefined;
    return extendedPublicKey(indexes, node.publicKey, node.chainCode, parent);
  }

  /** Taproot signing stays on noble too (see signSchnorr). */
  async signTaprootKeyPath(path: string, digest: Uint8Array): Promise<Uint8Array> {
    return signTaprootKeyPathWith(this.#derive(path).privateKey, digest);
  }

  /** BIP-340 stays on noble (the package has no Schnorr); only checkpoints use it. */
  async signSchnorr(path: string, digest: Uint8Array): Promise<Uint8Array> {
    if (!(digest instanceof Uint8Array) || digest.length !== 32) throw new AirlockError('invalid_request', 'a digest to sign must be exactly 32 bytes');
    const node = this.#derive(path);
    // Aux from the digest (bip340Aux): a replay is the same bytes, as `deterministic` promises.
    const signature = schnorr.sign(digest, node.privateKey, bip340Aux(digest));
    if (!schnorr.verify(signature, digest, node.publicKey.slice(1))) throw new AirlockError('signature_check_failed');
    return signature;
  }

  /** NIP-44 ECDH stays on noble too (the addon's ECDH hashes the shared point; NIP-44 needs the raw x). */
  async nip44ConversationKey(path: string, peerXOnly: Uint8Array): Promise<Uint8Array> {
    return nip44ConversationKeyFrom(this.#derive(path).privateKey, peerXOnly);
  }

  async nip04SharedSecret(path: string, peerXOnly: Uint8Array): Promise<Uint8Array> {
    return nip04SharedSecretFrom(this.#derive(path).privateKey, peerXOnly);
  }

  async deriveSecret(path: string, label: string): Promise<Uint8Array> {
    return deriveSecretFrom(this.#derive(path).privateKey, label);
  }

  /** Zeroes the root copy and every cached private key; the backend refuses to work afterwards. */
  wipe(): void {
    for (const node of [this.#root, ...this.#cache.values()]) {
      node.privateKey.fill(0);
      node.chainCode.fill(0);
    }
    this.#cache.clear();
    this.#wiped = true;
  }

  /** Derives from the longest cached prefix, caching each node on the way (as HdKeyBackend does). */
  #derive(path: string): NativeNode {
    if (this.#wiped) throw new AirlockError('sealed', 'the key backend was wiped; unseal the vault again');
    const indexes = parseDerivationPath(path);
    let depth = indexes.length;
    let node: NativeNode | undefined;
    for (; depth > 0; depth--) {
      const key = formatDerivationPath(indexes.slice(0, depth));
      node = this.#cache.get(key);
      if (node) {
        this.#cache.delete(key);
        this.#cache.set(key, node);
        break;
      }
    }
    node ??= this.#root;
    for (; depth < indexes.length; depth++) {
      node = deriveChild(this.#lib, node, indexes[depth]!);
      this.#cache.set(formatDerivationPath(indexes.slice(0, depth + 1)), node);
      if (this.#cache.size > this.#cacheSize) {
        const [oldestKey, oldest] = this.#cache.entries().next().value!;
        this.#cache.delete(oldestKey);
        // Each node owns its own key copy: wiping an evicted parent leaves derived children intact.
        oldest.privateKey.fill(0);
        oldest.chainCode.fill(0);
      }
    }
    return node;
  }
}
