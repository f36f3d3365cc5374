// A fixed test key (never a real one) and a signer that signs digests the way a KeyBackend does.
import type { EcdsaSignature, SignerContext } from '@airlock/core';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { hexToBytes } from 'viem';
import { privateKeyToAddress } from 'viem/accounts';

export const TEST_PRIVATE_KEY = '0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318' as const;
export const OTHER_PRIVATE_KEY = '0x8da4ef21b864d2cc526dbdb2a120bd2874c36c9d0a1fb7f8c63d7f7a8b41de8f' as const;
export const signer: SignerContext = { address: privateKeyToAddress(TEST_PRIVATE_KEY).toLowerCase() };

export function signDigest(digest: Uint8Array, privateKey: `0x${string}` = TEST_PRIVATE_KEY): EcdsaSignature {
  const recovered = secp256k1.sign(digest, hexToBytes(privateKey), { prehash: false, format: 'recovered' });
  const sig = secp256k1.Signature.fromBytes(recovered, 'recovered');
  return { compact: sig.toBytes('compact'), recovery: sig.recovery as number };
}
