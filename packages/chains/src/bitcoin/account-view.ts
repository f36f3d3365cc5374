// What the server and the CLI show of an agent's Bitcoin account: addresses, the account's xpub/tpub and the
// output descriptors a watch-only wallet imports (BIP-380 key origin and checksum; BIP-389 `<0;1>` multipath).
import { AirlockError, type BitcoinNetwork, type ExtendedPublicKey, type SignerContext } from '@airlock/core';
import { bytesToHex } from '@noble/hashes/utils.js';
import { HDKey } from '@scure/bip32';
import { addressOf, assertIndex, BitcoinAccount, formatPath, PURPOSES, scriptOf, type BitcoinAddressType } from './account.ts';
import { withDescriptorChecksum } from './descriptor-checksum.ts';
import { coinType, extendedPublicVersion } from './networks.ts';

export interface DerivedBitcoinAddress {
  address: string;
  /** m/84'/1'/3'/0/7 */
  path: string;
  /** The output script, hex. */
  scriptPubKey: string;
  /** The 33-byte compressed key at `path`, hex (for P2TR: the BIP-86 internal key, before the tweak). */
  publicKey: string;
}

/** The address at m/<84|86>'/<coin>'/<account>'/<change>/<index> of the agent whose signer context this is. */
export function deriveBitcoinAddress(signer: SignerContext, network: BitcoinNetwork, type: BitcoinAddressType, change: 0 | 1, index: number): DerivedBitcoinAddress {
  if (change !== 0 && change !== 1) throw new AirlockError('invalid_request', 'change must be 0 (receive) or 1 (change)');
  assertIndex(index, 'index');
  const account = BitcoinAccount.fromSigner(signer);
  const purpose = PURPOSES[type];
  const coin = coinType(network);
  const publicKey = account.publicKey(purpose, coin, change, index);
  const script = scriptOf(type, publicKey);
  return {
    address: addressOf(script, network)!,
    path: formatPath([...account.accountIndexes(purpose, coin), change, index]),
    scriptPubKey: bytesToHex(script),
    publicKey: bytesToHex(publicKey),
  };
}

export interface BitcoinAccountView {
  network: BitcoinNetwork;
  type: BitcoinAddressType;
  /** m/84'/1'/3' */
  path: string;
  /** The vault's master fingerprint, 8 hex digits. */
  fingerprint: string;
  /** `[d34db33f/84h/1h/3h]` */
  keyOrigin: string;
  /** The account key as BIP-32 serialises it: `xpub` on mainnet, `tpub` on the test networks (not SLIP-132 zpub/vpub). */
  xpub: string;
  descriptors: {
    /** `wpkh([…]tpub…/<0;1>/*)#checksum`: receive and change in one (BIP-389). */
    multipath: string;
    /** `…/0/*`: receive addresses, for wallets without BIP-389. */
    receive: string;
    /** `…/1/*`: change addresses. */
    change: string;
  };
}

export function bitcoinAccountView(signer: SignerContext, network: BitcoinNetwork, type: BitcoinAddressType): BitcoinAccountView {
  const account = BitcoinAccount.fromSigner(signer);
  const purpose = PURPOSES[type];
  const coin = coinType(network);
  const xpub = encodeExtendedPublicKey(account.accountKey(purpose, coin), network);
  const keyOrigin = account.keyOrigin(purpose, coin, 'h');
  const descriptor = (children: string) => withDescriptorChecksum(`${type === 'p2wpkh' ? 'wpkh' : 'tr'}(${keyOrigin}${xpub}/${children}/*)`);
  return {
    network,
    type,
    path: formatPath(account.accountIndexes(purpose, coin)),
    fingerprint: keyOrigin.slice(1, 9),
    keyOrigin,
    xpub,
    descriptors: { multipath: descriptor('<0;1>'), receive: descriptor('0'), change: descriptor('1') },
  };
}

/** BIP-32 serialisation (base58check) of an extended public key with the network's xpub/tpub version. */
export function encodeExtendedPublicKey(key: ExtendedPublicKey, network: BitcoinNetwork): string {
  // Only the public version is serialised; HDKey wants a private one too (xprv/tprv, never used here).
  const versions = { public: extendedPublicVersion(network), private: network === 'bitcoin' ? 0x0488ade4 : 0x04358394 };
  return new HDKey({ versions, publicKey: key.publicKey, chainCode: key.chainCode, depth: key.depth, index: key.index, parentFingerprint: key.parentFingerprint }).publicExtendedKey;
}
