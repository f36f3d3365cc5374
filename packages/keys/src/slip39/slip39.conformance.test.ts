// SLIP-39 vectors (trezor/python-shamir-mnemonic vectors.json, passphrase "TREZOR"): every valid set combines to
// its master secret and BIP-32 root; every invalid one is refused with a slip39_* code. The vectors include sets of
// one share and exponents 2 and 3, which Airlock's own rules refuse: they are combined under SLIP-39's alone.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HDKey } from '@scure/bip32';
import { readVector, vectorsSkipReason } from '../../../../testing/vectors.ts';
import { ANY_SLIP39_SET, combineShares } from './shamir.ts';

// The refusal each invalid vector must get (by the number its description starts with); the 256-bit cases repeat the 128-bit ones.
const EXPECTED: Record<number, string> = {
  2: 'slip39_invalid_checksum', 3: 'slip39_invalid_share', 5: 'slip39_threshold_not_met', 6: 'slip39_share_mismatch', 7: 'slip39_share_mismatch',
  8: 'slip39_share_mismatch', 9: 'slip39_share_mismatch', 10: 'slip39_invalid_share', 11: 'slip39_duplicate_share', 12: 'slip39_share_mismatch',
  13: 'slip39_invalid_digest', 14: 'slip39_threshold_not_met', 15: 'slip39_threshold_not_met', 16: 'slip39_threshold_not_met',
  39: 'slip39_invalid_share', 40: 'slip39_invalid_share',
};
for (let n = 2; n <= 16; n++) if (EXPECTED[n]) EXPECTED[n + 19] = EXPECTED[n]!;

type Slip39Vector = [description: string, mnemonics: string[], masterSecretHex: string, xprv: string];

test('SLIP-39 vectors: valid sets combine to the master secret and BIP-32 root, invalid ones are refused', { skip: vectorsSkipReason }, () => {
  const vectors = JSON.parse(readVector('slip39-vectors.json')) as Slip39Vector[];
  assert.equal(vectors.length, 45);
  let valid = 0;
  let invalid = 0;
  for (const [description, mnemonics, secretHex, xprv] of vectors) {
    if (secretHex === '') {
      assert.throws(() => combineShares(mnemonics, 'TREZOR', ANY_SLIP39_SET), (e: Error & { code?: string }) => {
        assert.equal(e.code, EXPECTED[Number.parseInt(description, 10)], `${description}: ${e.message}`);
        // No word of any share in the message or hints.
        const text = [e.message, ...((e as { hints?: string[] }).hints ?? [])].join(' ');
        for (const w of mnemonics.join(' ').split(' ')) assert.ok(!new RegExp(`\\b${w}\\b`).test(text), `${description}: "${w}" in ${text}`);
        return true;
      }, description);
      invalid++;
    } else {
      const secret = combineShares(mnemonics, 'TREZOR', ANY_SLIP39_SET);
      assert.equal(Buffer.from(secret).toString('hex'), secretHex, description);
      assert.equal(HDKey.fromMasterSeed(secret).privateExtendedKey, xprv, description);
      valid++;
    }
  }
  assert.deepEqual({ valid, invalid }, { valid: 15, invalid: 30 });
});
