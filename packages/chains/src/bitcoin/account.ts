// An agent's Bitcoin account: the BIP-84 (P2WPKH) and BIP-86 (P2TR key path) account keys the signing service
// read from the key backend (SignerContext.extendedKeys), and what follows from them without any private key:
// the keys at m/<purpose>'/<coin>'/<account>'/<change>/<index>, their scripts and their addresses. Deriving a
// key here is how an input or a change output is proven to be the agent's: a PSBT's claim alone never is.
import { AirlockError, type BitcoinNetwork, type ExtendedPublicKey, type SignerContext } from '@airlock/core';
import { bytesToHex } from '@noble/hashes/utils.js';
import { HDKey } from '@scure/bip32';
import { Address, OutScript, p2tr, p2wpkh } from '@scure/btc-signer';
import { addressPrefixes } from './networks.ts';

export const HARDENED = 0x80000000;

/** The two script types an agent's Bitcoin account has: BIP-84 native segwit and BIP-86 single-key taproot. */
export type BitcoinAddressType = 'p2wpkh' | 'p2tr';
export const PURPOSES: Readonly<Record<BitcoinAddressType, 84 | 86>> = { p2wpkh: 84, p2tr: 86 };

/** m/84'/0'/a', m/84'/1'/a', m/86'/0'/a', m/86'/1'/a': the account keys of both types on mainnet and the test networks. */
export function bitcoinAccountPaths(accountIndex: number): string[] {
  assertIndex(accountIndex, 'accountIndex');
  return [84, 86].flatMap((purpose) => [0, 1].map((coin) => `m/${purpose}'/${coin}'/${accountIndex}'`));
}

export function assertIndex(n: unknown, name: string): asserts n is number {
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n >= HARDENED) throw new AirlockError('invalid_request', `${name} must be an integer in 0..2^31-1`);
}

/** `m/84'/1'/3'/0/7` from its indexes (hardened ones marked with '). */
export function formatPath(indexes: readonly number[]): string {
  return ['m', ...indexes.map((i) => (i >= HARDENED ? `${i - HARDENED}'` : `${i}`))].join('/');
}

export function fingerprintHex(fingerprint: number): string {
  return fingerprint.toString(16).padStart(8, '0');
}

const ACCOUNT_PATH = /^m\/(84|86)'\/([01])'\/(\d+)'$/;

/** The account keys of one agent (one account index) under the vault's master fingerprint. */
export class BitcoinAccount {
  readonly account: number;
  readonly fingerprint: number;
  readonly #keys: ReadonlyMap<string, ExtendedPublicKey>;
  // Change-level nodes (…/<change>) already derived: a PSBT names many keys under the same two.
  readonly #branches = new Map<string, HDKey>();

  private constructor(account: number, fingerprint: number, keys: ReadonlyMap<string, ExtendedPublicKey>) {
    this.account = account;
    this.fingerprint = fingerprint;
    this.#keys = keys;
  }

  /**
   * From the signer context the service built with `bitcoinAccountPaths`. Every key must sit where its path
   * says (depth 3, hardened index = the account): anything else is a wiring error, and nothing is derived from it.
   */
  static fromSigner(signer: SignerContext): BitcoinAccount {
    const { extendedKeys, masterFingerprint } = signer;
    if (!extendedKeys || masterFingerprint === undefined || !Number.isInteger(masterFingerprint)) {
      throw new AirlockError('internal', 'the signer context carries no Bitcoin account keys');
    }
    let account: number | undefined;
    const keys = new Map<string, ExtendedPublicKey>();
    for (const [path, key] of Object.entries(extendedKeys)) {
      const m = ACCOUNT_PATH.exec(path);
      if (!m) continue;
      const index = Number(m[3]);
      if (account !== undefined && index !== account) throw new AirlockError('internal', 'the signer context mixes Bitcoin accounts');
      if (key.depth !== 3 || key.index !== index + HARDENED || key.publicKey.length !== 33 || key.chainCode.length !== 32) {
        throw new AirlockError('internal', 'a Bitcoin account key does not sit at its path');
      }
      account = index;
      keys.set(`${m[1]}/${m[2]}`, key);
    }
    if (account === undefined || keys.size !== 4) throw new AirlockError('internal', 'the signer context lacks some Bitcoin account keys');
    return new BitcoinAccount(account, masterFingerprint, keys);
  }

  /** The account key m/<purpose>'/<coin>'/<account>'. */
  accountKey(purpose: 84 | 86, coin: 0 | 1): ExtendedPublicKey {
    return this.#keys.get(`${purpose}/${coin}`)!;
  }

  accountIndexes(purpose: 84 | 86, coin: 0 | 1): number[] {
    return [purpose + HARDENED, coin + HARDENED, this.account + HARDENED];
  }

  /** `[d34db33f/84'/1'/3']` (intents) or `[d34db33f/84h/1h/3h]` (descriptors, BIP-380's preferred marker). */
  keyOrigin(purpose: 84 | 86, coin: 0 | 1, hardenedMark: "'" | 'h' = "'"): string {
    return `[${fingerprintHex(this.fingerprint)}/${purpose}${hardenedMark}/${coin}${hardenedMark}/${this.account}${hardenedMark}]`;
  }

  /** The 33-byte public key at m/<purpose>'/<coin>'/<account>'/<change>/<index> (both unhardened). */
  publicKey(purpose: 84 | 86, coin: 0 | 1, change: 0 | 1, index: number): Uint8Array {
    const id = `${purpose}/${coin}/${change}`;
    let branch = this.#branches.get(id);
    if (!branch) {
      const key = this.accountKey(purpose, coin);
      const node = new HDKey({ publicKey: key.publicKey, chainCode: key.chainCode, depth: key.depth, index: key.index, parentFingerprint: key.parentFingerprint });
      branch = node.deriveChild(change);
      this.#branches.set(id, branch);
    }
    return branch.deriveChild(index).publicKey!;
  }
}

/** The output script of a key: P2WPKH (BIP-84) or the BIP-86 taproot output (key path only, no script tree). */
export function scriptOf(type: BitcoinAddressType, publicKey: Uint8Array): Uint8Array {
  return type === 'p2wpkh' ? p2wpkh(publicKey).script : p2tr(publicKey.slice(1)).script;
}

/** The address of an output script on `network`, when the script has one. */
export function addressOf(script: Uint8Array, network: BitcoinNetwork): string | undefined {
  try {
    const decoded = OutScript.decode(script);
    // A script that only decodes to a template after normalisation (a witness program pushed with PUSHDATA1)
    // is not that template on chain: showing the template's address would name an output it is not.
    if (decoded.type === 'unknown' || bytesToHex(OutScript.encode(decoded)) !== bytesToHex(script)) return undefined;
    return Address(addressPrefixes(network)).encode(decoded);
  } catch {
    return undefined;
  }
}
