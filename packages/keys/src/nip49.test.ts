// NIP-49 ncryptsec: the NIP's test data (transcribed from 49.md, ../shared/vectors), then round trips with an
// independent client (nostr-tools' nip49) in both directions, then refusals that change nothing and quote nothing.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as nip49 from 'nostr-tools/nip49';
import { bech32 } from '@scure/base';
import { readVector, vectorsSkipReason } from '../../../testing/vectors.ts';
import { KeySecurity, decryptNcryptsec, encryptNcryptsec } from './nip49.ts';

interface Nip49Vector { ncryptsec: string; password: string; log_n: number; private_key_hex: string }
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const KEY = Uint8Array.from(Buffer.from('3501454135014541350145413501453fefb02227e449e57cf4d3a3ce05378683', 'hex'));

test('NIP-49 test data: the ncryptsec decrypts to the private key with password "nostr", log_n 16', { skip: vectorsSkipReason }, async () => {
  const v = JSON.parse(readVector('nostr-nip49-vector.json')) as Nip49Vector;
  const out = await decryptNcryptsec(v.ncryptsec, v.password);
  assert.equal(hex(out.secretKey), v.private_key_hex);
  assert.equal(out.logN, v.log_n);
  assert.equal(out.keySecurity, KeySecurity.knownInsecure);
});

test("NIP-49 test data: encrypting with the vector's salt and nonce gives the vector byte for byte", { skip: vectorsSkipReason }, async () => {
  const v = JSON.parse(readVector('nostr-nip49-vector.json')) as Nip49Vector;
  const payload = bech32.fromWords(bech32.decode(v.ncryptsec as `${string}1${string}`, 200).words);
  const again = await encryptNcryptsec(Uint8Array.from(Buffer.from(v.private_key_hex, 'hex')), v.password, {
    logN: v.log_n,
    keySecurity: KeySecurity.knownInsecure,
    salt: payload.slice(2, 18),
    nonce: payload.slice(18, 42),
  });
  assert.equal(again, v.ncryptsec);
});

test('round trips with nostr-tools: ours decrypts with theirs and theirs with ours (NFKC password)', async () => {
  // "ÅΩ" as composed and decomposed code points: NFKC makes them one password, as NIP-49 requires.
  const typed = '\u212b\u2126 backup pw';
  const decomposed = 'A\u030a\u03a9 backup pw';
  const ours = await encryptNcryptsec(KEY, typed, { logN: 16, keySecurity: KeySecurity.notKnownInsecure });
  assert.match(ours, /^ncryptsec1[02-9ac-hj-np-z]{152}$/);
  assert.equal(hex(nip49.decrypt(ours, decomposed)), hex(KEY));
  const theirs = nip49.encrypt(KEY, decomposed, 16, 0x02);
  const back = await decryptNcryptsec(theirs, typed);
  assert.equal(hex(back.secretKey), hex(KEY));
  assert.equal(back.keySecurity, KeySecurity.unknown);
  // A fresh salt and nonce every time: two exports of one key are unlinkable strings.
  assert.notEqual(await encryptNcryptsec(KEY, typed, { logN: 16 }), await encryptNcryptsec(KEY, typed, { logN: 16 }));
});

test('a wrong password, a flipped key-security byte or a typo is refused with invalid_request and no echo', async () => {
  const password = 'correct horse battery';
  const good = await encryptNcryptsec(KEY, password, { logN: 16, keySecurity: KeySecurity.notKnownInsecure });
  await assert.rejects(decryptNcryptsec(good, 'wrong horse battery'), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'invalid_request');
    assert.match(e.message, /password does not decrypt/);
    assert.doesNotMatch(e.message, /horse/);
    return true;
  });
  // The key-security byte is authenticated: changing it (and re-checksumming) breaks the tag.
  const payload = bech32.fromWords(bech32.decode(good as `${string}1${string}`, 200).words);
  payload[42] = KeySecurity.knownInsecure;
  const relabelled = bech32.encode('ncryptsec', bech32.toWords(payload), 200);
  await assert.rejects(decryptNcryptsec(relabelled, password), /password does not decrypt/);
  const typo = `${good.slice(0, 40)}${good[40] === 'q' ? 'p' : 'q'}${good.slice(41)}`;
  await assert.rejects(decryptNcryptsec(typo, password), (e: Error) => {
    assert.match(e.message, /not valid bech32/);
    assert.ok(!e.message.includes(good.slice(10, 40)));
    return true;
  });
  // A crafted string asking for 2^40 scrypt work is refused before any is done.
  payload[1] = 40;
  payload[42] = KeySecurity.notKnownInsecure;
  await assert.rejects(decryptNcryptsec(bech32.encode('ncryptsec', bech32.toWords(payload), 200), password), /at most 22/);
  payload[1] = 0;
  await assert.rejects(decryptNcryptsec(bech32.encode('ncryptsec', bech32.toWords(payload), 200), password), (e: Error & { code?: string }) => e.code === 'invalid_request' && /log_n 0/.test(e.message));
  await assert.rejects(encryptNcryptsec(KEY, password, { logN: 12 }), /log_n must be/);
  await assert.rejects(encryptNcryptsec(KEY, ''), /password is empty/);
  await assert.rejects(encryptNcryptsec(new Uint8Array(32), password, { logN: 16 }), /not a valid secp256k1 scalar/);
});
