/**
 * A node's FROST key as JSON (hex everywhere): its secret share and the group's public package. The public
 * package is what every node and the coordinator agree on after key generation: the group key (commitments[0],
 * SEC1) and each node's verifying share (share*G), by FROST identifier.
 */
import { AirlockError, canonicalJson } from '@airlock/core';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, hexToBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import { CLUSTER_SUITE } from './ciphersuite.ts';

export interface PublicPackageJson {
  signers: { min: number; max: number };
  commitments: string[];
  verifyingShares: Record<string, string>;
}

export interface SecretShareJson {
  identifier: string;
  signingShare: string;
}

export type FrostPublic = Parameters<typeof CLUSTER_SUITE.frost.verifyShare>[0];
export type FrostSecret = Parameters<typeof CLUSTER_SUITE.frost.commit>[0];

export function publicToJson(pub: FrostPublic): PublicPackageJson {
  return {
    signers: { min: pub.signers.min, max: pub.signers.max },
    commitments: pub.commitments.map((c) => bytesToHex(c)),
    verifyingShares: Object.fromEntries(Object.entries(pub.verifyingShares).map(([id, p]) => [id, bytesToHex(p)])),
  };
}

export function publicFromJson(json: PublicPackageJson): FrostPublic {
  try {
    return {
      signers: { min: json.signers.min, max: json.signers.max },
      commitments: json.commitments.map((c) => hexToBytes(c)),
      verifyingShares: Object.fromEntries(Object.entries(json.verifyingShares).map(([id, p]) => [id, hexToBytes(p)])),
    };
  } catch (cause) {
    throw new AirlockError('invalid_request', 'the FROST public package is malformed', { cause });
  }
}

export function secretToJson(secret: FrostSecret): SecretShareJson {
  return { identifier: secret.identifier, signingShare: bytesToHex(secret.signingShare) };
}

export function secretFromJson(json: SecretShareJson): FrostSecret {
  return { identifier: json.identifier, signingShare: hexToBytes(json.signingShare) };
}

/** The key BIP-340 verifies against (Nostr pubkey, Taproot output key): x-only, even y by construction. */
export function groupXOnlyKey(pub: PublicPackageJson): string {
  return pub.commitments[0]!.slice(2);
}

export function publicPackageHash(pub: PublicPackageJson): string {
  return bytesToHex(sha256(utf8ToBytes(canonicalJson(pub))));
}
