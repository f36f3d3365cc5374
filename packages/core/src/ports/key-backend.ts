/**
 * Where private keys live. The core only ever sees public keys and signatures.
 * Implementations: HD software backend (keys/), later PKCS#11 and threshold backends.
 */
export type SignatureScheme = 'ecdsa-secp256k1' | 'schnorr-secp256k1';

export interface EcdsaSignature {
  /** 64 bytes r || s, s always in the lower half of the curve order. */
  compact: Uint8Array;
  /** Recovery id (0 or 1) for the low-S signature. */
  recovery: number;
}

export interface KeyBackend {
  readonly kind: string;
  /** 33-byte compressed secp256k1 public key at a BIP-32 path such as `m/44'/60'/7'/0/0`. */
  getPublicKey(path: string): Promise<Uint8Array>;
  /** Signs a 32-byte digest exactly as given (no prehash). Deterministic (RFC 6979 / BIP-340 aux=0 not required). */
  signDigest(path: string, digest: Uint8Array, scheme: 'ecdsa-secp256k1'): Promise<EcdsaSignature>;
  signSchnorr(path: string, digest: Uint8Array): Promise<Uint8Array>;
}
