// The eip155 ChainAdapter: decode requests into intents, then assemble and verify signatures.
import { AirlockError } from '@airlock/core';
import type { Action, ChainAdapter, DecodedRequest, EcdsaSignature, SignResult, SignerContext } from '@airlock/core';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { bytesToHex, concatBytes, hexToBytes, keccak256, parseTransaction, serializeTransaction } from 'viem';
import { publicKeyToAddress } from 'viem/accounts';
import type { Hex } from 'viem';
import type { AbiRegistry } from './abi-registry.ts';
import { checkAbiDeclarations, enrichCall } from './abi-moves.ts';
import { decodeMessageRequest } from './message.ts';
import { assertSignedBy, assertWellFormed, nobleRecoverPublicKey, recoverSignerAddress, type RecoverPublicKey } from './signature.ts';
import { decodeTransactionRequest, readTransactionRequest, toSerializable } from './transaction.ts';
import type { EvmTransaction } from './transaction.ts';
import { decodeTypedDataRequest } from './typed-data.ts';

export interface EvmAdapterOptions {
  /** ABIs used to decode the arguments of calls to contracts other than the built-in ERC-20 functions. */
  abis?: AbiRegistry;
  /** Public-key recovery used to check every signature before release. Default: noble (pure JS, the reference). */
  recoverPublicKey?: RecoverPublicKey;
  /** 33-byte compressed -> 65-byte uncompressed key (agent addresses at provisioning). Default: noble. */
  uncompressPublicKey?: (compressed: Uint8Array) => Uint8Array;
}

const EVM_ACTIONS = ['evm.transaction', 'evm.typed_data', 'evm.message'] as const satisfies readonly Action[];
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
        return decodeTypedDataRequest(payload, signer);
      case 'evm.message':
        return decodeMessageRequest(payload, signer);
      default:
        throw new AirlockError('unsupported_action', 'the eip155 adapter does not sign this action');
    }
  }

  return {
    namespace: 'eip155',
    actions: EVM_ACTIONS,

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
      const uncompressed = uncompress(publicKey);
      return publicKeyToAddress(bytesToHex(uncompressed)).toLowerCase();
    },

    decode,

    enrich: enrichCall,
    checkAbis: checkAbiDeclarations,

    finalize(action: Action, payload: unknown, decoded: DecodedRequest, signature: EcdsaSignature, signer: SignerContext): SignResult {
      // The digest must be the one this payload produces: a stale or swapped `decoded` would release a
      // signature over something other than what the agent sent.
      const fresh = decode(action, payload, signer);
      if (bytesToHex(fresh.digest) !== bytesToHex(decoded.digest)) {
        throw new AirlockError('signature_check_failed', 'the signed digest does not belong to this payload');
      }
      const rs = signature.compact;
      if (action !== 'evm.transaction') {
        assertSignedBy(decoded.digest, signature, signer.address, recover);
        return { signature: bytesToHex(concatBytes([rs, Uint8Array.of(27 + signature.recovery)])) };
      }
      // For transactions the one recovery happens on the serialized bytes (assertSignedTransaction), which
      // also proves the broadcastable transaction hashes to the approved digest; recovering twice buys nothing.
      assertWellFormed(signature);
      const tx = readTransactionRequest(payload, signer);
      return finalizeTransaction(tx, decoded.digest, signature, signer, recover);
    },
  };
}

function finalizeTransaction(tx: EvmTransaction, digest: Uint8Array, signature: EcdsaSignature, signer: SignerContext, recover: RecoverPublicKey): SignResult {
  const r = bytesToHex(signature.compact.subarray(0, 32));
  const s = bytesToHex(signature.compact.subarray(32, 64));
  const yParity = signature.recovery;
  const signedTransaction = tx.type === 'legacy'
    // EIP-155: v = chainId * 2 + 35 + recovery.
    ? serializeTransaction(toSerializable(tx), { r, s, v: BigInt(tx.chainId) * 2n + 35n + BigInt(yParity) })
    : serializeTransaction(toSerializable(tx), { r, s, yParity });
  assertSignedTransaction(signedTransaction, digest, signer.address, recover);
  return {
    signature: bytesToHex(concatBytes([signature.compact, Uint8Array.of(yParity)])),
    signedTransaction,
    transactionHash: keccak256(signedTransaction),
  };
}

/** Parses the signed bytes back, recomputes their sighash and recovers the sender: what is broadcast must be what was approved. */
function assertSignedTransaction(signed: Hex, digest: Uint8Array, address: string, recover: RecoverPublicKey): void {
  try {
    const parsed = parseTransaction(signed);
    const { r, s, v, yParity, ...unsigned } = parsed;
    if (r === undefined || s === undefined) throw new Error('signed transaction has no signature');
    const sighash = hexToBytes(keccak256(serializeTransaction(unsigned as never)));
    if (bytesToHex(sighash) !== bytesToHex(digest)) throw new Error('signed transaction does not match the approved digest');
    const recovery = parsed.type === 'legacy' ? Number((v as bigint) - 35n - BigInt(parsed.chainId as number) * 2n) : (yParity as number);
    const compact = hexToBytes(`0x${r.slice(2).padStart(64, '0')}${s.slice(2).padStart(64, '0')}`);
    if (recoverSignerAddress(sighash, compact, recovery, recover) !== address.toLowerCase()) throw new Error('sender is not the signer');
  } catch (cause) {
    throw new AirlockError('signature_check_failed', 'the signed transaction did not verify', { cause });
  }
}
