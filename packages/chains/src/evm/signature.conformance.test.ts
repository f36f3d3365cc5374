// Wycheproof ECDSA secp256k1 vectors (plain and Bitcoin low-S variant) through the release check every
// EVM signature passes before it leaves Airlock (assertSignedBy: well-formed, low S, recovers to the signer).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { vectorsSkipReason } from '../../../../testing/vectors.ts';
import { runReleaseCheckVectors } from '../../../../testing/wycheproof-release.ts';
import { assertSignedBy } from './signature.ts';

test('Wycheproof ECDSA secp256k1 SHA-256: the release check refuses every invalid and every high-S signature, releases the valid low-S ones', { skip: vectorsSkipReason }, (t) => {
  const report = runReleaseCheckVectors('plain', (digest, signature, address) => assertSignedBy(digest, signature, address));
  t.diagnostic(JSON.stringify({ ...report, disagreements: report.disagreements.length }));
  assert.deepEqual(report.disagreements, []);
  // Exact figures (the file is pinned): a vector that moves from one outcome to another shows up here.
  // 234 invalid vectors have no 64-byte r||s form (DER faults, integers out of range); 2 valid ones need v > 28.
  assert.deepEqual({ ...report, disagreements: undefined }, { total: 476, acceptedValid: 96, refusedHighS: 70, refusedInvalid: 74, notRepresentable: 234, refusedRecoveryAbove1: 2, disagreements: undefined });
});

test('Wycheproof ECDSA secp256k1 SHA-256 (Bitcoin, low S only): the release check agrees with every vector', { skip: vectorsSkipReason }, (t) => {
  const report = runReleaseCheckVectors('bitcoin', (digest, signature, address) => assertSignedBy(digest, signature, address));
  t.diagnostic(JSON.stringify({ ...report, disagreements: report.disagreements.length }));
  assert.deepEqual(report.disagreements, []);
  // The Bitcoin file lists high-S signatures as invalid: they are among the 69 refused.
  assert.deepEqual({ ...report, disagreements: undefined }, { total: 463, acceptedValid: 161, refusedHighS: 0, refusedInvalid: 69, notRepresentable: 232, refusedRecoveryAbove1: 1, disagreements: undefined });
});
