import { inspect } from 'node:util';
import { AirlockError, type KeyBackend } from '@airlock/core';
import type { HDKey } from '@scure/bip32';
import { HdKeyBackend } from './hd-backend.ts';
import { NativeKeyBackend } from './native-backend.ts';
import { nostrSecretKeyFromRoot } from './nostr-identity.ts';
import { deriveRootFromEntropy } from './seed.ts';
import { splitSecret, type SplitOptions, type ShareSet } from './slip39/shamir.ts';

/**
 * The vault after a successful unseal: the BIP-32 root in memory. It exposes a key backend and
 * the root fingerprint, never the mnemonic, entropy or seed. Call `wipe()` to seal it again.
 * (The mnemonic string built while deriving the seed is a JS string and cannot be zeroed; it is
 * not kept.)
 */
export class UnsealedVault {
  readonly #entropy: Uint8Array;
  readonly #seed: Uint8Array;
  readonly #root: HDKey;
  readonly #fingerprint: string;
  readonly #backends = new Map<'hd' | 'native', HdKeyBackend | NativeKeyBackend>();
  #wiped = false;

  /** Takes ownership of `entropy` (it is zeroed by wipe()). Internal: use openVault(). */
  constructor(entropy: Uint8Array) {
    const { seed, root } = deriveRootFromEntropy(entropy);
    this.#entropy = entropy;
    this.#seed = seed;
    this.#root = root;
    this.#fingerprint = root.fingerprint.toString(16).padStart(8, '0');
  }

  /** BIP-32 fingerprint of the root key (first 4 bytes of HASH160(pubkey)): public, safe to show. */
  fingerprint(): string {
    return this.#fingerprint;
  }

  /** `native` signs with libsecp256k1 (check NativeKeyBackend.available() first); `hd` with noble. */
  keyBackend(kind: 'hd' | 'native' = 'hd'): KeyBackend {
    if (this.#wiped) throw new AirlockError('sealed', 'the vault was wiped; unseal it again');
    let backend = this.#backends.get(kind);
    if (!backend) {
      backend = kind === 'native' ? new NativeKeyBackend(this.#root) : new HdKeyBackend(this.#root);
      this.#backends.set(kind, backend);
    }
    return backend;
  }

  /**
   * Lends the NIP-06 Nostr private key of `account` (m/44'/1237'/account'/0/0) to `use`, then zeroes it.
   * Only the operator's offline export ceremony (`airlock agent nostr-export`) calls this: signing goes
   * through the key backend, which never hands a key out.
   */
  async withNostrSecretKey<T>(account: number, use: (secretKey: Uint8Array) => Promise<T>): Promise<T> {
    if (this.#wiped) throw new AirlockError('sealed', 'the vault was wiped; unseal it again');
    const secretKey = nostrSecretKeyFromRoot(this.#root, account);
    try {
      return await use(secretKey);
    } finally {
      secretKey.fill(0);
    }
  }

  /**
   * SLIP-39 shares of this vault's master secret: the BIP-39 entropy (16..32 bytes), so the shares rebuild the
   * same mnemonic, seed and BIP-32 root, hence every agent address (docs/custody.md says why not the seed).
   */
  splitIntoShares(options: SplitOptions): ShareSet {
    if (this.#wiped) throw new AirlockError('sealed', 'the vault was wiped; unseal it again');
    return splitSecret(this.#entropy, options);
  }

  get wiped(): boolean {
    return this.#wiped;
  }

  /** Zeroes the entropy, the seed, the root and every derived key held by the backend. */
  wipe(): void {
    for (const backend of this.#backends.values()) backend.wipe();
    this.#root.wipePrivateData();
    this.#entropy.fill(0);
    this.#seed.fill(0);
    this.#wiped = true;
  }

  // Logging or serialising the object shows only public facts.
  toJSON(): { fingerprint: string; wiped: boolean } {
    return { fingerprint: this.#fingerprint, wiped: this.#wiped };
  }

  [inspect.custom](): string {
    return `UnsealedVault { fingerprint: '${this.#fingerprint}', wiped: ${this.#wiped} }`;
  }
}
