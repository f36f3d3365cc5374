// NIP-06 derivation and NIP-19 npub/nsec: the NIP's own vectors (transcribed from 06.md, ../shared/vectors),
// then an independent client (nostr-tools) agreeing at other accounts, then bad input refused without echo.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { privateKeyFromSeedWords } from 'nostr-tools/nip06';
import * as nip19 from 'nostr-tools/nip19';
import { getPublicKey } from 'nostr-tools/pure';
import { HDKey } from '@scure/bip32';
import { readVector, vectorsSkipReason } from '../../../testing/vectors.ts';
import { deriveRootFromEntropy, entropyFromMnemonic } from './seed.ts';
import { decodeNpub, decodeNsec, encodeNpub, encodeNsec, nostrPath, nostrPublicKey, nostrSecretKeyFromMnemonic, nostrSecretKeyFromRoot } from './nostr-identity.ts';

interface Nip06Vectors {
  derivation_path: string;
  bip39_passphrase: string;
  vectors: { mnemonic: string; private_key_hex: string; nsec: string; public_key_hex: string; npub: string }[];
}
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

test('NIP-06 vectors: mnemonic -> private key, x-only public key, nsec and npub', { skip: vectorsSkipReason }, () => {
  const file = JSON.parse(readVector('nostr-nip06-vectors.json')) as Nip06Vectors;
  assert.equal(file.vectors.length, 2);
  assert.equal(nostrPath(0), file.derivation_path);
  for (const v of file.vectors) {
    const secretKey = nostrSecretKeyFromMnemonic(v.mnemonic, 0, file.bip39_passphrase);
    assert.equal(hex(secretKey), v.private_key_hex);
    const publicKey = nostrPublicKey(secretKey);
    assert.equal(hex(publicKey), v.public_key_hex);
    assert.equal(encodeNsec(secretKey), v.nsec);
    assert.equal(encodeNpub(publicKey), v.npub);
    assert.equal(hex(decodeNsec(v.nsec)), v.private_key_hex);
    assert.equal(hex(decodeNpub(v.npub)), v.public_key_hex);
  }
});

test("NIP-06 vectors through the vault's root: the same key comes out of the BIP-32 root the vault holds", { skip: vectorsSkipReason }, () => {
  const file = JSON.parse(readVector('nostr-nip06-vectors.json')) as Nip06Vectors;
  for (const v of file.vectors) {
    // Exactly what UnsealedVault builds from its sealed entropy.
    const { root } = deriveRootFromEntropy(entropyFromMnemonic(v.mnemonic));
    assert.equal(hex(nostrSecretKeyFromRoot(root, 0)), v.private_key_hex);
    assert.ok(root.privateKey, 'the root is left usable');
  }
});

test('nostr-tools agrees at other accounts, with and without a BIP-39 passphrase', () => {
  const mnemonic = 'leader monkey parrot ring guide accident before fence cannon height naive bean';
  for (const [account, passphrase] of [[1, ''], [7, ''], [2 ** 31 - 1, ''], [3, 'TREZOR']] as const) {
    const ours = nostrSecretKeyFromMnemonic(mnemonic, account, passphrase);
    const theirs = privateKeyFromSeedWords(mnemonic, passphrase, account);
    assert.equal(hex(ours), hex(theirs), `account ${account}`);
    assert.equal(encodeNsec(ours), nip19.nsecEncode(theirs));
    assert.equal(encodeNpub(nostrPublicKey(ours)), nip19.npubEncode(getPublicKey(theirs)));
    assert.equal(hex(decodeNsec(nip19.nsecEncode(theirs))), hex(theirs));
  }
  // Different accounts are different identities.
  assert.notEqual(hex(nostrSecretKeyFromMnemonic(mnemonic, 0)), hex(nostrSecretKeyFromMnemonic(mnemonic, 1)));
});

test('the path is hardened down to the account: an agent key plus the account xpub cannot reach a sibling', () => {
  assert.equal(nostrPath(5), "m/44'/1237'/5'/0/0");
  const root = HDKey.fromMasterSeed(new Uint8Array(64).fill(9));
  // The account node is hardened, so only its (non-hardened) children are reachable from an xpub.
  const account = root.derive("m/44'/1237'/5'");
  assert.equal(hex(account.deriveChild(0).deriveChild(0).privateKey!), hex(nostrSecretKeyFromRoot(root, 5)));
  for (const bad of [-1, 1.5, 2 ** 31, Number.NaN]) assert.throws(() => nostrPath(bad), { code: 'invalid_request' });
});

test('bad npub / nsec input is refused with invalid_request, and the message never quotes it', () => {
  const nsec = 'nsec10allq0gjx7fddtzef0ax00mdps9t2kmtrldkyjfs8l5xruwvh2dq0lhhkp';
  const npub = 'npub1zutzeysacnf9rru6zqwmxd54mud0k44tst6l70ja5mhv8jjumytsd2x7nu';
  const typo = `${nsec.slice(0, 20)}${nsec[20] === 'q' ? 'p' : 'q'}${nsec.slice(21)}`;
  const cases: [string, () => unknown][] = [
    [typo, () => decodeNsec(typo)],
    [npub, () => decodeNsec(npub)], // an npub is not an nsec
    [nsec, () => decodeNpub(nsec)],
    ['nsec1', () => decodeNsec('nsec1')],
    // 32 zero bytes: valid bech32 but not a private key.
    [nip19.nsecEncode(new Uint8Array(32)), () => decodeNsec(nip19.nsecEncode(new Uint8Array(32)))],
    // 31 bytes under the nsec prefix.
    ['short', () => decodeNsec(encodeNsecRaw(new Uint8Array(31).fill(1)))],
  ];
  for (const [input, run] of cases) {
    assert.throws(run, (e: Error & { code?: string }) => {
      assert.equal(e.code, 'invalid_request');
      if (input.length > 30) assert.ok(!e.message.includes(input.slice(5, 30)), `message quotes the input: ${e.message}`);
      assert.equal(e.cause, undefined, 'no cause that could quote it');
      return true;
    });
  }
  // x = 5 has no point on secp256k1 (5^3 + 7 = 132 is not a square mod p).
  assert.throws(() => decodeNpub(nip19.npubEncode(`${'00'.repeat(31)}05`)), /not name a point/);
  assert.throws(() => encodeNsec(new Uint8Array(31)), { code: 'invalid_request' });
});

function encodeNsecRaw(bytes: Uint8Array): string {
  // Bypasses our length check, to build a well-formed bech32 string of the wrong size.
  return nip19.nsecEncode(bytes);
}
