// The eip155 ChainAdapter: decode requests into intents, then assemble and verify signatures.
import { AirlockError } from '@airlock/core';
import type { Action, ChainAdapter, DecodedRequest, ProducedSignature, SignResult, SignerContext } from '@airlock/core';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { bytesToHex, concatBytes } from 'viem';
import { keccak256Bytes } from './keccak.ts';
import type { AbiRegistry } from './abi-registry.ts';
import { checkAbiDeclarations } from './abi-moves.ts';
import { decodeAuthorizationRequest } from './eip7702.ts';
import { decodeUserOperationRequest } from './user-operation.ts';
import { enrichIntent } from './enrich-intent.ts';
import { decodeMessageRequest } from './message.ts';
import { addressOfPublicKey, assertSignedBy, nobleRecoverPublicKey, type RecoverPublicKey } from './signature.ts';
import { isPreparedTransaction, signedTransactionBytes } from './signed-transaction.ts';
import { decodeTransactionRequest } from './transaction.ts';
import { decodeTypedDataRequest } from './typed-data.ts';
import { namedSigners } from './named-signers.ts';

export interface EvmAdapterOptions {
  /** ABIs used to decode the arguments of calls to contracts other than the built-in ERC-20 functions. */
  abis?: AbiRegistry;
  /** Public-key recovery used to check every signature before release. Default: noble (pure JS, the reference). */
  recoverPublicKey?: RecoverPublicKey;
  /** 33-byte compressed -> 65-byte uncompressed key (agent addresses at provisioning). Default: noble. */
  uncompressPublicKey?: (compressed: Uint8Array) => Uint8Array;
}

const EVM_ACTIONS = ['evm.transaction', 'evm.typed_data', 'evm.message', 'evm.user_operation', 'evm.authorization'] as const satisfies readonly Action[];
const HARDENED_LIMIT = 0x80000000;

export function createEvmAdapter(options: EvmAdapterOptions = {}): ChainAdapter {
  const { abis } = options;
  const recover = options.recoverPublicKey ?? nobleRecoverPublicKey;
  const uncompress = options.uncompressPublicKey ?? ((compressed: Uint8Array) => secp256k1.Point.fromBytes(compressed).toBytes(false));

  function decode(action: Action, payload: unknown, signer: SignerContext): DecodedRequest {
    switch (action) {
      case 'evm.transaction':
        return decodeTransactionRequest(payload, signer, abis);
      case 'evm.typed_data':
        return decodeTypedDataRequest(payload, signer, abis);
      case 'evm.message':
        return decodeMessageRequest(payload, signer);
      case 'evm.user_operation':
        return decodeUserOperationRequest(payload, signer, abis);
      case 'evm.authorization':
        return decodeAuthorizationRequest(payload, signer);
      default:
        throw new AirlockError('unsupported_action', 'the eip155 adapter does not sign this action');
    }
  }

  return {
    namespace: 'eip155',
    actions: EVM_ACTIONS,
    signerIsAgentAddress: true,

    derivationPath(accountIndex: number, keyIndex: number): string {
      for (const [name, n] of [['accountIndex', accountIndex], ['keyIndex', keyIndex]] as const) {
        if (!Number.isInteger(n) || n < 0 || n >= HARDENED_LIMIT) throw new AirlockError('invalid_request', `${name} must be an integer in 0..2^31-1`);
      }
      return `m/44'/60'/${accountIndex}'/0/${keyIndex}`;
    },

    addressFromPublicKey(publicKey: Uint8Array): string {
      if (!(publicKey instanceof Uint8Array) || publicKey.length !== 33) {
        throw new AirlockError('invalid_request', 'public key must be a 33-byte compressed secp256k1 key');
      }
      return addressOfPublicKey(uncompress(publicKey));
    },

    decode,
    namedSigners,

    // A user operation's and a Safe transaction's calls decode against registered ABIs one by one (the whole's
    // spends, approvals and summary rebuilt from them); anything else as a single call.
    enrich: enrichIntent,
    checkAbis: checkAbiDeclarations,

    finalize(action: Action, decoded: DecodedRequest, produced: ProducedSignature, signer: SignerContext): SignResult {
      // Every eip155 action is ECDSA (no signatureScheme hook): anything else is a wiring error, never released.
      if (!('compact' in produced)) throw new AirlockError('signature_check_failed', 'eip155 signatures are ECDSA');
      const signature = produced;
      // The one recovery: the signature must be a well-formed low-S signature over this request's digest that
      // recovers to the agent's address. A signature over any other digest recovers to another key and fails here.
      assertSignedBy(decoded.digest, signature, signer.address, recover);
      if (action !== 'evm.transaction') {
        return { signature: bytesToHex(concatBytes([signature.compact, Uint8Array.of(27 + signature.recovery)])) };
      }
      if (!isPreparedTransaction(decoded.prepared)) {
        throw new AirlockError('signature_check_failed', 'the decoded transaction does not carry its unsigned bytes');
      }
      const signed = signedTransactionBytes(decoded.prepared, signature);
      return {
        signature: bytesToHex(concatBytes([signature.compact, Uint8Array.of(signature.recovery)])),
        signedTransaction: bytesToHex(signed),
        transactionHash: bytesToHex(keccak256Bytes(signed)),
      };
    },
  };
}
