// What a Bitcoin network changes for Airlock: address prefixes, the BIP-44 coin type of its accounts (0 on
// mainnet, 1 on every test network) and the version bytes of its extended public keys.
import { AirlockError, BITCOIN_NETWORKS, type BitcoinNetwork } from '@airlock/core';
import { NETWORK, TEST_NETWORK } from '@scure/btc-signer';

/** Address prefixes as btc-signer names them. */
export type AddressPrefixes = typeof NETWORK;

// testnet3, testnet4 and signet share `tb`; regtest has its own bech32 prefix and the test base58 bytes.
const REGTEST: AddressPrefixes = Object.freeze({ ...TEST_NETWORK, bech32: 'bcrt' });

export function addressPrefixes(network: BitcoinNetwork): AddressPrefixes {
  if (network === 'bitcoin') return NETWORK;
  return network === 'regtest' ? REGTEST : TEST_NETWORK;
}

/** BIP-44 coin type: 0 for bitcoin, 1 for every test network (SLIP-44). */
export function coinType(network: BitcoinNetwork): 0 | 1 {
  return network === 'bitcoin' ? 0 : 1;
}

/** BIP-32 `xpub` / `tpub`: what output descriptors use (BIP-380), whatever the script type. */
export function extendedPublicVersion(network: BitcoinNetwork): number {
  return network === 'bitcoin' ? 0x0488b21e : 0x043587cf;
}

// SLIP-132 public versions (xpub ypub zpub Ypub Zpub / tpub upub vpub Upub Vpub): a PSBT_GLOBAL_XPUB with one
// of the other network's versions is a PSBT made for that network.
const MAINNET_PUBLIC_VERSIONS: ReadonlySet<number> = new Set([0x0488b21e, 0x049d7cb2, 0x04b24746, 0x0295b43f, 0x02aa7ed3]);
const TEST_PUBLIC_VERSIONS: ReadonlySet<number> = new Set([0x043587cf, 0x044a5262, 0x045f1cf6, 0x024289ef, 0x02575483]);

/** True when `version` is an extended public key version of a network other than `network`'s kind. */
export function isOtherNetworkVersion(version: number, network: BitcoinNetwork): boolean {
  return (network === 'bitcoin' ? TEST_PUBLIC_VERSIONS : MAINNET_PUBLIC_VERSIONS).has(version);
}

export function readNetwork(value: unknown): BitcoinNetwork {
  if (typeof value !== 'string' || !(BITCOIN_NETWORKS as string[]).includes(value)) {
    throw new AirlockError('invalid_request', `network must be one of ${BITCOIN_NETWORKS.join(', ')}`);
  }
  return value as BitcoinNetwork;
}

/**
 * Refuses a network this deployment does not sign for (AIRLOCK_BITCOIN_NETWORKS). The test networks share coin type
 * 1 and a script is the same on every chain, so coins sent on mainnet to the `bc1` form of a test-network address sit
 * on a test-network key, and a PSBT spending them on mainnet carries nothing that names mainnet: signed under a test
 * label, it is judged by that network's rules (found by review). Only the networks the operator names are signed.
 */
export function assertNetworkEnabled(network: BitcoinNetwork, enabled: readonly BitcoinNetwork[]): void {
  if (enabled.includes(network)) return;
  throw new AirlockError('bitcoin_network_disabled', `This daemon does not sign for the Bitcoin network "${network}"; it signs for ${enabled.join(', ') || 'no Bitcoin network'} (AIRLOCK_BITCOIN_NETWORKS). Nothing was signed.`, { details: { network, enabled: [...enabled] } });
}

