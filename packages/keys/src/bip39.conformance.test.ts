// BIP-39 english vectors (trezor/python-mnemonic vectors.json, passphrase "TREZOR") through the
// same entropy -> mnemonic -> seed -> BIP-32 root path the vault uses.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readVector, vectorsSkipReason } from '../../../testing/vectors.ts';
import { deriveRootFromEntropy, entropyFromMnemonic, mnemonicFromEntropy } from './seed.ts';

type Bip39Vector = [entropyHex: string, mnemonic: string, seedHex: string, xprv: string];

test('BIP-39 english vectors: mnemonic, seed and BIP-32 root', { skip: vectorsSkipReason }, () => {
  const vectors = (JSON.parse(readVector('bip39-vectors.json')) as { english: Bip39Vector[] }).english;
  assert.equal(vectors.length, 24);
  for (const [entropyHex, mnemonic, seedHex, xprv] of vectors) {
    const entropy = Uint8Array.from(Buffer.from(entropyHex, 'hex'));
    assert.equal(mnemonicFromEntropy(entropy), mnemonic);
    assert.equal(Buffer.from(entropyFromMnemonic(mnemonic)).toString('hex'), entropyHex);
    const { seed, root } = deriveRootFromEntropy(entropy, 'TREZOR');
    assert.equal(Buffer.from(seed).toString('hex'), seedHex, mnemonic);
    assert.equal(root.privateExtendedKey, xprv, mnemonic);
  }
});

test('a mnemonic with a wrong checksum or an unknown word is refused without echoing words', () => {
  const badChecksum = 'abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon';
  assert.throws(() => entropyFromMnemonic(badChecksum), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'invalid_request');
    assert.ok(!e.message.includes('abandon'));
    return true;
  });
  const typo = 'abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abuot';
  assert.throws(() => entropyFromMnemonic(typo), (e: Error & { code?: string; hints?: string[] }) => {
    assert.equal(e.code, 'invalid_request');
    assert.ok(![e.message, ...(e.hints ?? [])].some((s) => s.includes('abuot') || s.includes('abandon')));
    assert.deepEqual(e.hints, ['check word number 12']);
    return true;
  });
  assert.throws(() => entropyFromMnemonic('abandon about'), { code: 'invalid_request' });
});
