// The bitcoin ChainAdapter: PSBTs (BIP-174/370) signed for the agent's BIP-84 and BIP-86 inputs after every
// output, change and the fee are decoded into an intent; BIP-322 message signatures. Each input has its own key
// (m/<84|86>'/<coin>'/<account>'/<change>/<index>): the adapter asks the service for the account keys
// (signerKeyPaths), derives and proves the agent's scripts itself, and hands back one signature task per input.
import { AirlockError, BITCOIN_NETWORKS, type Action, type BitcoinNetwork, type ChainAdapter, type DecodedRequest, type ProducedSignature, type SignerContext, type SignResult } from '@airlock/core';
import { bytesToHex } from '@noble/hashes/utils.js';
import { assertIndex, bitcoinAccountPaths } from './account.ts';
import { decodeBip322Request, finalizeBip322 } from './message.ts';
import { assertNetworkEnabled } from './networks.ts';
import { decodePsbtRequest } from './psbt-decode.ts';
import { finalizePsbt } from './psbt-sign.ts';

const BITCOIN_ACTIONS = ['bitcoin.psbt', 'bitcoin.message'] as const satisfies readonly Action[];

/** `networks`: the Bitcoin networks this deployment signs for (AIRLOCK_BITCOIN_NETWORKS); every one when absent. */
export function createBitcoinAdapter(options: { networks?: readonly BitcoinNetwork[] } = {}): ChainAdapter {
  const networks = options.networks ?? BITCOIN_NETWORKS;
  return {
    namespace: 'bitcoin',
    actions: BITCOIN_ACTIONS,
    signerKeyPaths: bitcoinAccountPaths,
    // The agent's "key" for the service is its mainnet BIP-84 account key: it names the agent (SignerContext.address);
    // every signature is made with a key below one of the account keys, named by its task.
    derivationPath(accountIndex: number): string {
      assertIndex(accountIndex, 'accountIndex');
      return `m/84'/0'/${accountIndex}'`;
    },
    addressFromPublicKey(publicKey: Uint8Array): string {
      if (!(publicKey instanceof Uint8Array) || publicKey.length !== 33) throw new AirlockError('invalid_request', 'public key must be a 33-byte compressed secp256k1 key');
      return bytesToHex(publicKey);
    },

    decode(action: Action, payload: unknown, signer: SignerContext): DecodedRequest {
      // Before anything is read: a network not signed for is refused whatever the rest holds.
      const named = (payload as { network?: unknown } | null)?.network;
      if ((BITCOIN_NETWORKS as unknown[]).includes(named)) assertNetworkEnabled(named as BitcoinNetwork, networks);
      if (action === 'bitcoin.psbt') return decodePsbtRequest(payload, signer);
      if (action === 'bitcoin.message') return decodeBip322Request(payload, signer);
      throw new AirlockError('unsupported_action', 'the bitcoin adapter does not handle this action');
    },

    finalize(action: Action, decoded: DecodedRequest, first: ProducedSignature, _signer: SignerContext, all?: readonly ProducedSignature[]): SignResult {
      const signatures = all ?? [first];
      if (action === 'bitcoin.psbt') return finalizePsbt(decoded, signatures);
      if (action === 'bitcoin.message') return finalizeBip322(decoded, signatures);
      throw new AirlockError('unsupported_action', 'the bitcoin adapter does not handle this action');
    },
  };
}
