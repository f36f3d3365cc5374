// Independent checks on a signature before it leaves Airlock: low S, and it recovers to the signer.
import { AirlockError } from '@airlock/core';
import type { EcdsaSignature } from '@airlock/core';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { bytesToHex } from 'viem';
import { keccak256Bytes } from './keccak.ts';

/**
 * Recovers the 65-byte uncompressed public key behind a compact signature; throws on an invalid one.
 * The most expensive step of a signature in pure JS, so it is injectable (a native libsecp256k1 version).
 */
export type RecoverPublicKey = (digest: Uint8Array, compact: Uint8Array, recovery: number) => Uint8Array;

/** noble: the pure-JS reference and the default. */
export const nobleRecoverPublicKey: RecoverPublicKey = (digest, compact, recovery) =>
  secp256k1.Signature.fromBytes(compact, 'compact').addRecoveryBit(recovery).recoverPublicKey(digest).toBytes(false);

/** Recovers the lowercase address that produced `compact`/`recovery` over `digest`; throws on a malformed signature. */
export function recoverSignerAddress(digest: Uint8Array, compact: Uint8Array, recovery: number, recover: RecoverPublicKey = nobleRecoverPublicKey): string {
  const publicKey = recover(digest, compact, recovery);
  if (publicKey.length !== 65 || publicKey[0] !== 4) throw new Error('recovered public key is not uncompressed secp256k1');
  return addressOfPublicKey(publicKey);
}

/**
 * The lowercase address of a 65-byte uncompressed key: the last 20 bytes of keccak-256 of its 64 coordinate bytes.
 * One keccak; viem's publicKeyToAddress adds a second one for the EIP-55 checksum, which a lowercase compare drops.
 */
export function addressOfPublicKey(publicKey: Uint8Array): string {
  return bytesToHex(keccak256Bytes(publicKey.subarray(1)).subarray(12));
}

/** Throws signature_check_failed unless the signature is 64 bytes, low-S, with recovery id 0 or 1. */
export function assertWellFormed(signature: EcdsaSignature): void {
  const { compact, recovery } = signature;
  if (!(compact instanceof Uint8Array) || compact.length !== 64 || (recovery !== 0 && recovery !== 1)) {
    throw new AirlockError('signature_check_failed', 'the key backend returned a malformed signature');
  }
  let high: boolean;
  try {
    high = secp256k1.Signature.fromBytes(compact, 'compact').hasHighS();
  } catch (cause) {
    throw new AirlockError('signature_check_failed', 'the signature is not a valid secp256k1 signature', { cause });
  }
  if (high) throw new AirlockError('signature_check_failed', 'the signature is high-S');
}

/** Throws signature_check_failed unless the signature is well-formed, low-S and recovers to `address`. */
export function assertSignedBy(digest: Uint8Array, signature: EcdsaSignature, address: string, recover: RecoverPublicKey = nobleRecoverPublicKey): void {
  assertWellFormed(signature);
  const { compact, recovery } = signature;
  let recovered: string;
  try {
    recovered = recoverSignerAddress(digest, compact, recovery, recover);
  } catch (cause) {
    throw new AirlockError('signature_check_failed', 'the signature is not a valid low-S secp256k1 signature', { cause });
  }
  if (recovered !== address.toLowerCase()) {
    throw new AirlockError('signature_check_failed', 'the signature does not recover to the signing agent');
  }
}
