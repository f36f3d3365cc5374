// Wycheproof ECDSA secp256k1 (SHA-256) vectors through Airlock's release check: the check that every
// signature passes before it leaves (64-byte r||s, recovery id 0/1, low S, recovers to the agent's address).
// The release check never sees DER: a key backend hands it r||s. So each vector's DER signature is decoded
// here strictly into two integers; the release check then judges the 64-byte form under each recovery id
// (0-3; Ethereum can only express 0 and 1) against the vector's public key turned into an address.
import { sha256 } from '@noble/hashes/sha2.js';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { publicKeyToAddress } from 'viem/accounts';
import { bytesToHex } from 'viem';
import type { EcdsaSignature } from '@airlock/core';
import { readVector } from './vectors.ts';

export const WYCHEPROOF_FILES = {
  plain: 'wycheproof-ecdsa_secp256k1_sha256_test.json',
  bitcoin: 'wycheproof-ecdsa_secp256k1_sha256_bitcoin_test.json',
} as const;

interface WycheproofFile {
  numberOfTests: number;
  testGroups: {
    publicKey: { uncompressed: string };
    tests: { tcId: number; comment: string; flags: string[]; msg: string; sig: string; result: 'valid' | 'invalid' | 'acceptable' }[];
  }[];
}

/** Throws unless the signature is released for `address`: the function under test. */
export type ReleaseCheck = (digest: Uint8Array, signature: EcdsaSignature, address: string) => void;

export interface ReleaseVectorReport {
  total: number;
  /** Valid low-S vectors the check accepted. */
  acceptedValid: number;
  /** Valid high-S vectors (plain file) the check refused, and then accepted once S was normalised. */
  refusedHighS: number;
  /** Invalid vectors that reached the check as 64 bytes and were refused under every recovery id. */
  refusedInvalid: number;
  /** Invalid vectors with no 64-byte r||s form (DER/BER faults, negative or > 256-bit integers): no backend can return them. */
  notRepresentable: number;
  /** Valid vectors whose R.x >= n needs recovery id 2 or 3, which the check refuses (Ethereum's v cannot carry it). */
  refusedRecoveryAbove1: number;
  /** One line per vector where the check disagrees with what it must do. Empty means the check passed. */
  disagreements: string[];
}

const N = secp256k1.Point.CURVE().n;

/** Strict DER (X.690) `SEQUENCE { INTEGER r, INTEGER s }`: short-form lengths, minimal non-negative integers, nothing after. */
export function decodeDerSignature(der: Uint8Array): { r: bigint; s: bigint } | undefined {
  let pos = 0;
  const byte = () => (pos < der.length ? der[pos++]! : -1);
  if (byte() !== 0x30) return undefined;
  const seqLength = byte();
  if (seqLength < 0 || seqLength >= 0x80 || seqLength !== der.length - 2) return undefined;
  const integer = (): bigint | undefined => {
    if (byte() !== 0x02) return undefined;
    const length = byte();
    if (length <= 0 || length >= 0x80 || pos + length > der.length) return undefined;
    const body = der.subarray(pos, pos + length);
    pos += length;
    if (body[0]! & 0x80) return undefined; // negative
    if (body.length > 1 && body[0] === 0 && !(body[1]! & 0x80)) return undefined; // not minimal
    return BigInt(`0x${Buffer.from(body).toString('hex')}`);
  };
  const r = integer();
  const s = integer();
  if (r === undefined || s === undefined || pos !== der.length) return undefined;
  return { r, s };
}

function compactOf(r: bigint, s: bigint): Uint8Array | undefined {
  if (r >= 1n << 256n || s >= 1n << 256n) return undefined;
  return Uint8Array.from(Buffer.from(r.toString(16).padStart(64, '0') + s.toString(16).padStart(64, '0'), 'hex'));
}

function releasedWith(check: ReleaseCheck, digest: Uint8Array, compact: Uint8Array, address: string, recoveries: readonly number[]): number | undefined {
  for (const recovery of recoveries) {
    try {
      check(digest, { compact, recovery }, address);
      return recovery;
    } catch (e) {
      if ((e as { code?: string }).code !== 'signature_check_failed') throw e; // a refusal has one code; anything else is a defect
    }
  }
  return undefined;
}

/** Whether plain ECDSA (noble, any S) verifies the vector with recovery id 2 or 3 only, i.e. its R.x >= n. */
function needsRecoveryAbove1(digest: Uint8Array, r: bigint, s: bigint, publicKey: Uint8Array): boolean {
  const low = s > N / 2n ? N - s : s;
  for (const recovery of [2, 3]) {
    try {
      const recovered = new secp256k1.Signature(r, low).addRecoveryBit(recovery).recoverPublicKey(digest).toBytes(false);
      if (bytesToHex(recovered) === bytesToHex(publicKey)) return true;
    } catch {
      // no point with this x: not this recovery id
    }
  }
  return false;
}

/**
 * Runs every vector of `file` through `check`. What the check must do:
 * invalid -> refused under every recovery id; valid and low-S -> released; valid and high-S (only the plain
 * file has them; the Bitcoin file lists them as invalid) -> refused, and released once S is normalised.
 */
export function runReleaseCheckVectors(file: keyof typeof WYCHEPROOF_FILES, check: ReleaseCheck): ReleaseVectorReport {
  const parsed = JSON.parse(readVector(WYCHEPROOF_FILES[file])) as WycheproofFile;
  const report: ReleaseVectorReport = { total: 0, acceptedValid: 0, refusedHighS: 0, refusedInvalid: 0, notRepresentable: 0, refusedRecoveryAbove1: 0, disagreements: [] };
  const disagree = (c: { tcId: number; comment: string }, what: string) => report.disagreements.push(`tcId ${c.tcId} (${c.comment}): ${what}`);
  for (const group of parsed.testGroups) {
    const publicKey = Uint8Array.from(Buffer.from(group.publicKey.uncompressed, 'hex'));
    const address = publicKeyToAddress(bytesToHex(publicKey)).toLowerCase();
    for (const c of group.tests) {
      report.total++;
      const digest = sha256(Uint8Array.from(Buffer.from(c.msg, 'hex')));
      const rs = decodeDerSignature(Uint8Array.from(Buffer.from(c.sig, 'hex')));
      const compact = rs && compactOf(rs.r, rs.s);
      if (c.result === 'acceptable') {
        disagree(c, 'an "acceptable" vector: decide what the release check must do with it');
        continue;
      }
      if (!compact) {
        if (c.result === 'valid') disagree(c, 'valid, but the strict DER decoding here refused it');
        else report.notRepresentable++;
        continue;
      }
      const released = releasedWith(check, digest, compact, address, [0, 1, 2, 3]);
      if (c.result === 'invalid') {
        if (released === undefined) report.refusedInvalid++;
        else disagree(c, `invalid, released with recovery id ${released}`);
        continue;
      }
      const { r, s } = rs!;
      if (s > N / 2n) {
        if (released !== undefined) {
          disagree(c, 'high-S released');
          continue;
        }
        const normalised = releasedWith(check, digest, compactOf(r, N - s)!, address, [0, 1]);
        if (normalised !== undefined) report.refusedHighS++;
        else if (needsRecoveryAbove1(digest, r, s, publicKey)) report.refusedRecoveryAbove1++;
        else disagree(c, 'high-S refused, but also refused once normalised to low S');
        continue;
      }
      if (released === 0 || released === 1) report.acceptedValid++;
      else if (released === undefined && needsRecoveryAbove1(digest, r, s, publicKey)) report.refusedRecoveryAbove1++;
      else disagree(c, released === undefined ? 'valid low-S refused' : `valid, released with recovery id ${released}`);
    }
  }
  if (report.total !== parsed.numberOfTests) report.disagreements.push(`ran ${report.total} of ${parsed.numberOfTests} vectors`);
  return report;
}
