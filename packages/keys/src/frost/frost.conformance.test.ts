// FROST known-answer tests: the RFC 9591 FROST(secp256k1, SHA-256) vector (cfrg/draft-irtf-cfrg-frost
// poc/frost-secp256k1-sha256.json), the ZcashFoundation frost-secp256k1 vector (same suite, other nonces) and the
// ZcashFoundation frost-secp256k1-tr vector (BIP-340 challenge, even-y keys and nonces: the suite the cluster signs
// with). Each step is checked on its own: shares from the dealer polynomial, nonces from their randomness (H3),
// commitments, every signature share, share verification (RFC 9591 section 5.4), the aggregate signature.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { schnorr } from '@noble/curves/secp256k1.js';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { readVector, vectorsSkipReason } from '../../../../testing/vectors.ts';
import { FROST_SUITES, type FrostSuite } from './ciphersuite.ts';

interface FrostVector {
  config: { MAX_PARTICIPANTS: string; MIN_PARTICIPANTS: string };
  inputs: {
    participant_list: number[];
    group_secret_key: string;
    group_public_key?: string;
    verifying_key_key?: string;
    message: string;
    share_polynomial_coefficients: string[];
    participant_shares: { identifier: number; participant_share: string }[];
  };
  round_one_outputs: { outputs: { identifier: number; hiding_nonce_randomness: string; binding_nonce_randomness: string; hiding_nonce: string; binding_nonce: string; hiding_nonce_commitment: string; binding_nonce_commitment: string; binding_factor: string }[] };
  round_two_outputs: { outputs: { identifier: number; sig_share: string }[] };
  final_output: { sig: string };
}

/** Hands out the vector's nonce randomness in the order commit() asks for it (hiding, then binding). */
function replay(...values: string[]): (n?: number) => Uint8Array {
  const queue = values.map((v) => hexToBytes(v));
  return (n = 32) => {
    const next = queue.shift();
    assert.ok(next && next.length === n, 'commit asked for randomness the vector does not have');
    return next;
  };
}

function checkVector(file: string, suite: FrostSuite): void {
  const v = JSON.parse(readVector(file)) as FrostVector;
  const frost = suite.frost;
  const signers = { min: Number(v.config.MIN_PARTICIPANTS), max: Number(v.config.MAX_PARTICIPANTS) };
  const id = (n: number) => frost.Identifier.fromNumber(n);
  const { Fn } = frost.utils;

  // Dealer: f(x) = secret + a1*x; the shares are f(i) and the group key is secret*G.
  const poly = frost.utils.generateSecretPolynomial(signers, hexToBytes(v.inputs.group_secret_key), v.inputs.share_polynomial_coefficients.map((c) => Fn.fromBytes(hexToBytes(c))));
  assert.equal(bytesToHex(poly.commitment[0]!), v.inputs.group_public_key ?? v.inputs.verifying_key_key);
  const verifyingShares: Record<string, Uint8Array> = {};
  for (const { identifier, participant_share } of v.inputs.participant_shares) {
    const x = BigInt(identifier);
    const fx = poly.coefficients.reduceRight((acc, c) => Fn.add(Fn.mul(acc, x), c), 0n);
    assert.equal(bytesToHex(Fn.toBytes(fx)), participant_share, `share ${identifier}`);
    verifyingShares[id(identifier)] = suite.publicPointOf(hexToBytes(participant_share));
  }
  const pub = { signers, commitments: poly.commitment, verifyingShares };
  const secretOf = (n: number) => ({ identifier: id(n), signingShare: hexToBytes(v.inputs.participant_shares.find((s) => s.identifier === n)!.participant_share) });
  for (const { identifier } of v.inputs.participant_shares) frost.validateSecret(secretOf(identifier), pub);

  // Round one: nonces are H3(randomness || share); commitments are nonce*G.
  const msg = hexToBytes(v.inputs.message);
  const nonces = new Map<number, { hiding: Uint8Array; binding: Uint8Array }>();
  const commitmentList = v.round_one_outputs.outputs.map((o) => {
    const { nonces: n, commitments } = frost.commit(secretOf(o.identifier), replay(o.hiding_nonce_randomness, o.binding_nonce_randomness));
    assert.equal(bytesToHex(n.hiding), o.hiding_nonce, `hiding nonce ${o.identifier}`);
    assert.equal(bytesToHex(n.binding), o.binding_nonce, `binding nonce ${o.identifier}`);
    assert.equal(bytesToHex(commitments.hiding), o.hiding_nonce_commitment);
    assert.equal(bytesToHex(commitments.binding), o.binding_nonce_commitment);
    nonces.set(o.identifier, n);
    return commitments;
  });

  // Round two: each share matches and verifies against its verifying share; a share moved by one does not.
  const shares: Record<string, Uint8Array> = {};
  for (const o of v.round_two_outputs.outputs) {
    const share = frost.signShare(secretOf(o.identifier), pub, nonces.get(o.identifier)!, commitmentList, msg);
    assert.equal(bytesToHex(share), o.sig_share, `signature share ${o.identifier}`);
    assert.equal(frost.verifyShare(pub, commitmentList, msg, id(o.identifier), share), true);
    const tampered = Fn.toBytes(Fn.add(Fn.fromBytes(share), 1n));
    assert.equal(frost.verifyShare(pub, commitmentList, msg, id(o.identifier), tampered), false);
    shares[id(o.identifier)] = share;
  }
  const sig = frost.aggregate(pub, commitmentList, msg, shares);
  assert.equal(bytesToHex(sig), v.final_output.sig);
  assert.equal(frost.verify(sig, msg, poly.commitment[0]!), true);
}

test('RFC 9591 FROST(secp256k1, SHA-256) vector: shares, nonces, commitments, signature shares, signature', { skip: vectorsSkipReason }, () => {
  checkVector('frost-secp256k1-sha256.json', FROST_SUITES.rfc9591);
});

test('ZcashFoundation frost-secp256k1 vector (second known answer for the RFC suite)', { skip: vectorsSkipReason }, () => {
  checkVector('zcash-frost-secp256k1-vectors.json', FROST_SUITES.rfc9591);
});

test('ZcashFoundation frost-secp256k1-tr vector: a BIP-340 signature under the x-only group key', { skip: vectorsSkipReason }, () => {
  checkVector('zcash-frost-secp256k1-tr-vectors.json', FROST_SUITES.bip340);
  const v = JSON.parse(readVector('zcash-frost-secp256k1-tr-vectors.json')) as FrostVector;
  const sig = hexToBytes(v.final_output.sig);
  assert.equal(sig.length, 64);
  // An independent BIP-340 check (noble's schnorr, not the FROST code): x-only key, message "test".
  assert.equal(schnorr.verify(sig, hexToBytes(v.inputs.message), hexToBytes(v.inputs.verifying_key_key!).slice(1)), true);
});
