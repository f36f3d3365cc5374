// Wycheproof ecdsa_secp256k1_sha256_test.json (C2SP/wycheproof testvectors_v1): plain ECDSA with
// DER signatures. High-S signatures are valid here (the Bitcoin variant is a separate file).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readVector, vectorsSkipReason } from '../../../testing/vectors.ts';
import { verifyEcdsaDer } from './verify-ecdsa-der.ts';

interface WycheproofFile {
  numberOfTests: number;
  testGroups: {
    publicKey: { uncompressed: string };
    tests: { tcId: number; comment: string; flags: string[]; msg: string; sig: string; result: 'valid' | 'invalid' | 'acceptable' }[];
  }[];
}

test('Wycheproof ECDSA secp256k1 SHA-256: verifyEcdsaDer agrees with every expected result', { skip: vectorsSkipReason }, (t) => {
  const file = JSON.parse(readVector('wycheproof-ecdsa_secp256k1_sha256_test.json')) as WycheproofFile;
  const counts = { valid: 0, invalid: 0, acceptable: 0 };
  const disagreements: string[] = [];
  for (const group of file.testGroups) {
    const publicKey = Uint8Array.from(Buffer.from(group.publicKey.uncompressed, 'hex'));
    for (const c of group.tests) {
      counts[c.result]++;
      const ok = verifyEcdsaDer(publicKey, Uint8Array.from(Buffer.from(c.msg, 'hex')), Uint8Array.from(Buffer.from(c.sig, 'hex')));
      if (c.result !== 'acceptable' && ok !== (c.result === 'valid')) {
        disagreements.push(`tcId ${c.tcId} (${c.comment}; ${c.flags.join(',')}): expected ${c.result}`);
      }
    }
  }
  t.diagnostic(`tests: ${counts.valid} valid, ${counts.invalid} invalid, ${counts.acceptable} acceptable`);
  assert.equal(counts.valid + counts.invalid + counts.acceptable, file.numberOfTests);
  assert.deepEqual(disagreements, []);
});
