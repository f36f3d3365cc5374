// NIP-44 v2 (paulmillr/nip44 vectors) and NIP-06 (nips 06.md vectors) against our code, through the HD key backend
// where a key is involved (the conversation key and the identity are computed where the private key lives).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HDKey } from '@scure/bip32';
import { mnemonicToSeedSync } from '@scure/bip39';
import { hexToBytes } from '@noble/hashes/utils.js';
import { HdKeyBackend } from '@airlock/keys';
import { nip44ConversationKeyFrom } from '../../../keys/src/nip44-conversation.ts';
import { readVector, vectorsSkipReason } from '../../../../testing/vectors.ts';
import { nip44Decrypt, nip44Encrypt, paddedLength } from './nip44.ts';
import { nostrIdentityPath, xOnlyHex } from './keys.ts';
import { nip19 } from 'nostr-tools';

const skip = vectorsSkipReason;

test('NIP-44 v2: conversation keys, padding, encrypt/decrypt and every invalid payload', { skip }, () => {
  const v = JSON.parse(readVector('nip44.vectors.json')).v2;
  for (const c of v.valid.get_conversation_key) assert.equal(Buffer.from(nip44ConversationKeyFrom(hexToBytes(c.sec1), hexToBytes(c.pub2))).toString('hex'), c.conversation_key);
  for (const [len, padded] of v.valid.calc_padded_len) assert.equal(paddedLength(len), padded);
  for (const c of v.valid.encrypt_decrypt) {
    const key = hexToBytes(c.conversation_key);
    assert.equal(nip44Encrypt(c.plaintext, key, hexToBytes(c.nonce)), c.payload);
    assert.equal(nip44Decrypt(c.payload, key), c.plaintext);
  }
  for (const c of v.invalid.decrypt) assert.throws(() => nip44Decrypt(c.payload, hexToBytes(c.conversation_key)), Error, c.note);
  for (const c of v.invalid.get_conversation_key) assert.throws(() => nip44ConversationKeyFrom(hexToBytes(c.sec1), hexToBytes(c.pub2)), Error, c.note);
});

test('NIP-06: the mnemonic gives the listed key at m/44\'/1237\'/0\'/0/0 through the HD key backend', { skip }, async () => {
  const v = JSON.parse(readVector('nostr-nip06-vectors.json'));
  for (const c of v.vectors) {
    const backend = new HdKeyBackend(HDKey.fromMasterSeed(mnemonicToSeedSync(c.mnemonic)));
    const pubkey = xOnlyHex(await backend.getPublicKey(nostrIdentityPath(0)));
    assert.equal(pubkey, c.public_key_hex);
    assert.equal(nip19.npubEncode(pubkey), c.npub);
  }
});

test('BIP-340: agent Nostr keys sign through the backend and every vector verifies as listed', { skip }, async () => {
  const { schnorr } = await import('@noble/curves/secp256k1.js');
  const rows = readVector('bip340-test-vectors.csv').trim().split('\n').slice(1).map((l) => l.split(','));
  for (const [index, , pub, , msg, sig, result] of rows) {
    let ok = false;
    try {
      ok = schnorr.verify(hexToBytes(sig!.toLowerCase()), hexToBytes(msg!.toLowerCase()), hexToBytes(pub!.toLowerCase()));
    } catch {
      ok = false;
    }
    assert.equal(ok, result === 'TRUE', `vector ${index}`);
  }
  const backend = new HdKeyBackend(HDKey.fromMasterSeed(mnemonicToSeedSync('leader monkey parrot ring guide accident before fence cannon height naive bean')));
  const digest = new Uint8Array(32).fill(7);
  const sig = await backend.signSchnorr(nostrIdentityPath(0), digest);
  assert.ok(schnorr.verify(sig, digest, hexToBytes('17162c921dc4d2518f9a101db33695df1afb56ab82f5ff3e5da6eec3ca5cd917')));
});
