// Checking what the key backend produced before it goes into a PSBT or a BIP-322 proof, and the commitment the
// service compares across replays (`DecodedRequest.digest` when a request has several signature tasks).
import { AirlockError, type ProducedSignature, type SignatureTask } from '@airlock/core';
import { schnorr, secp256k1 } from '@noble/curves/secp256k1.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { concatBytes, utf8ToBytes } from '@noble/hashes/utils.js';

/**
 * A low-S ECDSA signature over `digest` by `publicKey`, DER-encoded with the sighash byte appended (what a
 * PSBT's partial signature and a P2WPKH witness carry). Throws signature_check_failed otherwise.
 */
export function checkedEcdsaSignature(produced: ProducedSignature | undefined, digest: Uint8Array, publicKey: Uint8Array, sighash: number): Uint8Array {
  if (!produced || !('compact' in produced) || produced.compact.length !== 64) throw new AirlockError('signature_check_failed', 'an ECDSA signature was expected');
  let valid = false;
  try {
    valid = secp256k1.verify(produced.compact, digest, publicKey, { prehash: false, lowS: true });
  } catch {
    valid = false;
  }
  if (!valid) throw new AirlockError('signature_check_failed');
  const der = secp256k1.Signature.fromBytes(produced.compact, 'compact').toBytes('der');
  return concatBytes(der, Uint8Array.of(sighash));
}

/**
 * A BIP-340 signature over `digest` by the taproot output key (x-only, the tweaked key the output commits to),
 * with the sighash byte appended unless it is SIGHASH_DEFAULT (BIP-341: 64 bytes for DEFAULT, 65 otherwise).
 */
export function checkedTaprootSignature(produced: ProducedSignature | undefined, digest: Uint8Array, outputKey: Uint8Array, sighash: number): Uint8Array {
  if (!produced || !('schnorr' in produced) || produced.schnorr.length !== 64) throw new AirlockError('signature_check_failed', 'a BIP-340 signature was expected');
  let valid = false;
  try {
    valid = schnorr.verify(produced.schnorr, digest, outputKey);
  } catch {
    valid = false;
  }
  if (!valid) throw new AirlockError('signature_check_failed');
  return sighash === 0 ? Uint8Array.from(produced.schnorr) : concatBytes(produced.schnorr, Uint8Array.of(sighash));
}

const u32 = (n: number) => Uint8Array.of(n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
const SCHEMES = { 'ecdsa-secp256k1': 1, 'schnorr-secp256k1': 2, 'taproot-key-path': 3 } as const;

/** One signature task and what it signs in the transaction: the input and the sighash type. */
export interface CommittedTask extends SignatureTask {
  input: number;
  sighash: number;
}

/**
 * sha256 over a domain tag, the unsigned transaction and every task (input, sighash type, scheme, path, digest),
 * each field length-prefixed: two requests with the same commitment produce byte-identical signatures (the
 * backend signs deterministically), which is what the service's replay and idempotency checks rely on.
 */
export function taskCommitment(domain: string, unsignedTransaction: Uint8Array, tasks: readonly CommittedTask[]): Uint8Array {
  const tag = utf8ToBytes(domain);
  const parts: Uint8Array[] = [u32(tag.length), tag, u32(unsignedTransaction.length), unsignedTransaction, u32(tasks.length)];
  for (const t of tasks) {
    const path = utf8ToBytes(t.path);
    parts.push(u32(t.input), u32(t.sighash), Uint8Array.of(SCHEMES[t.scheme]), u32(path.length), path, t.digest);
  }
  return sha256(concatBytes(...parts));
}
