/**
 * What both key backends need for Bitcoin: the BIP-86 key-path tweak (signing with the tweaked key that a
 * taproot output commits to) and an extended public key's fields. The private key stays in the caller's hands.
 */
import { AirlockError, bip32Fingerprint, type ExtendedPublicKey } from '@airlock/core';
import { schnorr, secp256k1 } from '@noble/curves/secp256k1.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToNumberBE, numberToBytesBE } from '@noble/curves/utils.js';
import { utf8ToBytes } from '@noble/hashes/utils.js';

const { Fn } = secp256k1.Point;

/** The BIP-86 output key of an internal key: x-only Q = P + hash_TapTweak(x(P))·G. */
export function taprootOutputKey(publicKey: Uint8Array): Uint8Array {
  const internal = publicKey.length === 33 ? publicKey.slice(1) : publicKey;
  const tweak = Fn.fromBytes(schnorr.utils.taggedHash('TapTweak', internal));
  const p = schnorr.utils.lift_x(bytesToNumberBE(internal));
  return p.add(secp256k1.Point.BASE.multiply(tweak)).toBytes(true).slice(1);
}

const AUX_TAG = utf8ToBytes('airlock/taproot-aux/v1');
const BIP340_AUX_TAG = utf8ToBytes('airlock/bip340-aux/v1');

/**
 * BIP-340 auxiliary randomness derived from the digest, so a replay signs the same bytes (the backends say
 * `deterministic`, and the signing path re-signs a replay instead of keeping the signature). BIP-340 allows
 * any aux: the nonce is still hashed from the secret key and the message; fresh randomness only adds
 * protection against fault and side-channel attacks on the signing machine.
 */
export function bip340Aux(digest: Uint8Array): Uint8Array {
  return sha256(new Uint8Array([...BIP340_AUX_TAG, ...digest]));
}

/**
 * Signs `digest` for a taproot key-path spend of the BIP-86 output of `privateKey`'s public key.
 * BIP-340 asks for auxiliary randomness only as a defence against fault and side-channel attacks on the
 * signer; it is derived from the digest here so that a replay of a charged PSBT is byte-identical (Airlock's
 * invariant: a second release of one request is the same signature, never a new one).
 */
export function signTaprootKeyPathWith(privateKey: Uint8Array, digest: Uint8Array): Uint8Array {
  if (!(digest instanceof Uint8Array) || digest.length !== 32) throw new AirlockError('invalid_request', 'a digest to sign must be exactly 32 bytes');
  const point = secp256k1.Point.BASE.multiply(Fn.fromBytes(privateKey));
  const internal = point.toBytes(true).slice(1);
  // BIP-340 keys are x-only with an even y: an odd-y internal key is the negation of d.
  const d = point.y % 2n === 0n ? Fn.fromBytes(privateKey) : Fn.neg(Fn.fromBytes(privateKey));
  const tweaked = Fn.add(d, Fn.fromBytes(schnorr.utils.taggedHash('TapTweak', internal)));
  if (tweaked === 0n) throw new AirlockError('signature_check_failed');
  const tweakedKey = numberToBytesBE(tweaked, 32);
  try {
    const aux = sha256(new Uint8Array([...AUX_TAG, ...digest]));
    const signature = schnorr.sign(digest, tweakedKey, aux);
    if (!schnorr.verify(signature, digest, taprootOutputKey(point.toBytes(true)))) throw new AirlockError('signature_check_failed');
    return signature;
  } finally {
    tweakedKey.fill(0);
  }
}

/** The extended public key at `indexes` (already parsed), given the node's public key and chain code and its parent's public key. */
export function extendedPublicKey(indexes: readonly number[], publicKey: Uint8Array, chainCode: Uint8Array, parentPublicKey: Uint8Array | undefined): ExtendedPublicKey {
  return {
    publicKey: Uint8Array.from(publicKey),
    chainCode: Uint8Array.from(chainCode),
    parentFingerprint: parentPublicKey ? bip32Fingerprint(parentPublicKey) : 0,
    depth: indexes.length,
    index: indexes.length > 0 ? indexes[indexes.length - 1]! : 0,
  };
}
