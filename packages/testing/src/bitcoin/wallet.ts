/**
 * Test-side Bitcoin wallets, built with bitcoinjs-lib (scripts, addresses) and @scure/bip32 (key derivation),
 * not with Airlock's code: the agent's accounts as Airlock reports them (watch-only, from the account xpubs and
 * the master fingerprint), the same accounts derived from the vault's mnemonic (to check the xpubs Airlock
 * reports), and "strangers": other parties with their own seeds who co-sign a PSBT or receive from it.
 *
 * BIP-84 account m/84'/coin'/account' (P2WPKH), BIP-86 account m/86'/coin'/account' (P2TR key path, the output
 * key is the internal key tweaked with an empty script tree); coin 0 on mainnet, 1 on every test network.
 */
import { HDKey } from '@scure/bip32';
import { mnemonicToSeedSync } from '@scure/bip39';
import { base58check } from '@scure/base';
import * as bitcoin from 'bitcoinjs-lib';
import { ECPairFactory, type ECPairInterface } from 'ecpair';
import * as ecc from 'tiny-secp256k1';

bitcoin.initEccLib(ecc);
export const ECPair = ECPairFactory(ecc);

/** Airlock's network names (the `network` field of a request). testnet4 and signet use testnet's prefixes. */
export type NetworkName = 'bitcoin' | 'testnet' | 'testnet4' | 'signet' | 'regtest';
export type AddressType = 'p2wpkh' | 'p2tr';

export function bitcoinjsNetwork(network: NetworkName): bitcoin.Network {
  if (network === 'bitcoin') return bitcoin.networks.bitcoin;
  if (network === 'regtest') return bitcoin.networks.regtest;
  return bitcoin.networks.testnet;
}

/** BIP-32 version bytes of xpub/xprv (mainnet) and tpub/tprv (every test network). */
function versionsOf(network: NetworkName) {
  const n = bitcoinjsNetwork(network).bip32;
  return { public: n.public, private: n.private };
}

export const coinTypeOf = (network: NetworkName) => (network === 'bitcoin' ? 0 : 1);
const PURPOSE: Record<AddressType, number> = { p2wpkh: 84, p2tr: 86 };

export function accountPath(type: AddressType, network: NetworkName, account: number): string {
  return `m/${PURPOSE[type]}'/${coinTypeOf(network)}'/${account}'`;
}

/** x-only key (BIP-340) of a compressed public key. */
export const xOnly = (publicKey: Uint8Array) => publicKey.slice(1, 33);

/** One key of a wallet with everything a PSBT field or an output needs. */
export interface WalletKey {
  type: AddressType;
  /** Full path from the master key, e.g. m/84'/1'/0'/1/3. */
  path: string;
  change: 0 | 1;
  index: number;
  /** 33-byte compressed key (for P2TR: the BIP-86 internal key, before the tweak). */
  publicKey: Uint8Array;
  /** The output script this key is spent from / paid to. */
  script: Uint8Array;
  address: string;
  /** The wallet's master fingerprint, 4 bytes, as PSBT derivation fields carry it. */
  masterFingerprint: Uint8Array;
  /** The private key, for wallets the test holds the seed of (strangers, the self-tests). */
  privateKey?: Uint8Array;
}

export function fingerprintBytes(fingerprint: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, fingerprint >>> 0);
  return out;
}

/** The 78-byte BIP-32 serialisation of an extended key (what PSBT_GLOBAL_XPUB carries in its key). */
export function extendedKeyBytes(xpub: string): Uint8Array {
  return base58check(bitcoin.crypto.sha256).decode(xpub);
}

/** The account as GET /v1/bitcoin/account returns it (the fields this side uses). */
export interface AccountResponse {
  fingerprint: string;
  accounts: Record<AddressType, { path: string; xpub: string }>;
}

/**
 * A BIP-84 + BIP-86 wallet: two account nodes and a master fingerprint. Watch-only when built from xpubs; able
 * to sign (with bitcoinjs) when built from a seed.
 */
export class TestWallet {
  readonly fingerprint: number;
  readonly network: NetworkName;
  private readonly accounts: Record<AddressType, { path: string; node: HDKey }>;

  private constructor(network: NetworkName, fingerprint: number, accounts: Record<AddressType, { path: string; node: HDKey }>) {
    this.network = network;
    this.fingerprint = fingerprint >>> 0;
    this.accounts = accounts;
  }

  /** Watch-only: the agent's accounts as Airlock reports them. */
  static fromAccountResponse(body: AccountResponse, network: NetworkName): TestWallet {
    const versions = versionsOf(network);
    const node = (type: AddressType) => ({ path: body.accounts[type].path, node: HDKey.fromExtendedKey(body.accounts[type].xpub, versions) });
    return new TestWallet(network, Number.parseInt(body.fingerprint, 16), { p2wpkh: node('p2wpkh'), p2tr: node('p2tr') });
  }

  static fromSeed(seed: Uint8Array, network: NetworkName, account = 0): TestWallet {
    const root = HDKey.fromMasterSeed(seed, versionsOf(network));
    const node = (type: AddressType) => {
      const path = accountPath(type, network, account);
      return { path, node: root.derive(path) };
    };
    return new TestWallet(network, root.fingerprint, { p2wpkh: node('p2wpkh'), p2tr: node('p2tr') });
  }

  /** The accounts a BIP-39 mnemonic (no passphrase) gives: how a test checks what Airlock derived. */
  static fromMnemonic(mnemonic: string, network: NetworkName, account: number): TestWallet {
    return TestWallet.fromSeed(mnemonicToSeedSync(mnemonic), network, account);
  }

  /** A stranger: another party with its own seed, derived from a label so that runs are reproducible. */
  static stranger(label: string, network: NetworkName): TestWallet {
    return TestWallet.fromSeed(bitcoin.crypto.sha256(new TextEncoder().encode(`airlock test stranger: ${label}`)), network, 0);
  }

  accountXpub(type: AddressType): string {
    return this.accounts[type].node.publicExtendedKey;
  }

  key(type: AddressType, change: 0 | 1, index: number): WalletKey {
    const account = this.accounts[type];
    const node = account.node.deriveChild(change).deriveChild(index);
    const publicKey = node.publicKey!;
    const network = bitcoinjsNetwork(this.network);
    const payment = type === 'p2wpkh' ? bitcoin.payments.p2wpkh({ pubkey: publicKey, network }) : bitcoin.payments.p2tr({ internalPubkey: xOnly(publicKey), network });
    return {
      type,
      path: `${account.path}/${change}/${index}`,
      change,
      index,
      publicKey,
      script: payment.output!,
      address: payment.address!,
      masterFingerprint: fingerprintBytes(this.fingerprint),
      ...(node.privateKey ? { privateKey: node.privateKey } : {}),
    };
  }

  receive(type: AddressType, index = 0): WalletKey {
    return this.key(type, 0, index);
  }

  change(type: AddressType, index = 0): WalletKey {
    return this.key(type, 1, index);
  }
}

/**
 * The bitcoinjs signer of a key: the key itself for P2WPKH, the BIP-86 tweaked key for a P2TR key-path spend
 * (BIP-341: t = hash_TapTweak(x(P)), Q = P + tG; ecpair's tweak negates d first when P has an odd y).
 */
export function signerOf(key: WalletKey): ECPairInterface {
  if (!key.privateKey) throw new Error(`no private key for ${key.path}: a watch-only wallet cannot sign`);
  const pair = ECPair.fromPrivateKey(key.privateKey);
  return key.type === 'p2wpkh' ? pair : pair.tweak(bitcoin.crypto.taggedHash('TapTweak', xOnly(key.publicKey)));
}
