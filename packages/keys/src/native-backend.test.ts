// NativeKeyBackend (libsecp256k1) against the pure-JS reference (noble), BIP-32 and Wycheproof vectors.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { schnorr, secp256k1 } from '@noble/curves/secp256k1.js';
import { HDKey } from '@scure/bip32';
import { readVector, vectorsSkipReason } from '../../../testing/vectors.ts';
import { HdKeyBackend } from './hd-backend.ts';
import { NativeKeyBackend, libsecp256k1, nativeRecoverPublicKey } from './native-backend.ts';

const skip = NativeKeyBackend.available() ? false : `native secp256k1 not available: ${NativeKeyBackend.unavailableReason()}`;
const root = () => HDKey.fromMasterSeed(Uint8Array.from(Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex')));
const digestOf = (i: number) => Uint8Array.from(createHash('sha256').update(`digest ${i}`).digest());
const HALF_N = secp256k1.Point.CURVE().n >> 1n;

test('the addon in use is the native binding, not the elliptic fallback', { skip }, () => {
  // The package's index.js swaps in pure-JS elliptic silently; bindings.js is only the N-API addon.
  assert.equal(NativeKeyBackend.available(), true);
  assert.equal(NativeKeyBackend.unavailableReason(), undefined);
  assert.equal(new NativeKeyBackend(root()).kind, 'native');
});

test('byte-identical signatures to the pure-JS backend over 500 digests and 5 paths (RFC 6979), all low-S', { skip }, async () => {
  const js = new HdKeyBackend(root());
  const native = new NativeKeyBackend(root());
  for (let i = 0; i < 500; i++) {
    const path = `m/44'/60'/${i % 5}'/0/${i % 3}`;
    const digest = digestOf(i);
    const [a, b] = await Promise.all([js.signDigest(path, digest, 'ecdsa-secp256k1'), native.signDigest(path, digest, 'ecdsa-secp256k1')]);
    assert.deepEqual(Buffer.from(b.compact).toString('hex'), Buffer.from(a.compact).toString('hex'), `digest ${i} ${path}`);
    assert.equal(b.recovery, a.recovery, `recovery ${i}`);
    const s = BigInt(`0x${Buffer.from(b.compact.subarray(32)).toString('hex')}`);
    assert.ok(s <= HALF_N, `high S at ${i}`);
    assert.deepEqual(await native.getPublicKey(path), await js.getPublicKey(path));
  }
});

test('native recovery returns the same public key as noble, and rejects a corrupted signature', { skip }, async () => {
  const native = new NativeKeyBackend(root());
  for (let i = 0; i < 100; i++) {
    const digest = digestOf(1000 + i);
    const { compact, recovery } = await native.signDigest(`m/0/${i}`, digest, 'ecdsa-secp256k1');
    const expected = secp256k1.Signature.fromBytes(compact, 'compact').addRecoveryBit(recovery).recoverPublicKey(digest).toBytes(false);
    assert.deepEqual(nativeRecoverPublicKey(digest, compact, recovery), expected);
    assert.deepEqual(secp256k1.Point.fromBytes(expected).toBytes(true), await native.getPublicKey(`m/0/${i}`));
  }
  const zero = new Uint8Array(64); // r = s = 0 is not a signature
  assert.throws(() => nativeRecoverPublicKey(digestOf(1), zero, 0));
});

test('BIP-32 vectors 1-4: native derivation lands on each vector key, and its signatures verify under it', { skip: skip || vectorsSkipReason }, async () => {
  const { valid } = JSON.parse(readVector('bip32-test-vectors.json')) as { valid: { seed: string; path: string; xpub: string }[] };
  assert.equal(valid.length, 17);
  for (const [i, v] of valid.entries()) {
    const backend = new NativeKeyBackend(HDKey.fromMasterSeed(Uint8Array.from(Buffer.from(v.seed, 'hex'))));
    const publicKey = HDKey.fromExtendedKey(v.xpub).publicKey!;
    assert.deepEqual(await backend.getPublicKey(v.path), publicKey, `vector ${i} ${v.path}`);
    const digest = digestOf(2000 + i);
    const { compact } = await backend.signDigest(v.path, digest, 'ecdsa-secp256k1');
    assert.ok(secp256k1.verify(compact, digest, publicKey, { prehash: false }), `noble verify ${v.path}`);
    assert.ok(libsecp256k1().ecdsaVerify(compact, digest, publicKey), `native verify ${v.path}`);
    digest[0]! ^= 1;
    assert.equal(libsecp256k1().ecdsaVerify(compact, digest, publicKey), false, `native accepted a changed digest at ${v.path}`);
  }
});

test('native derivation equals @scure/bip32 on 300 agent paths, also with a tiny cache (eviction)', { skip }, async () => {
  const js = new HdKeyBackend(root());
  const native = new NativeKeyBackend(root());
  const tiny = new NativeKeyBackend(root(), { cacheSize: 2 });
  for (let i = 0; i < 300; i++) {
    const path = `m/44'/60'/${i}'/0/${i % 4}`;
    const expected = await js.getPublicKey(path);
    assert.deepEqual(await native.getPublicKey(path), expected, path);
    assert.deepEqual(await tiny.getPublicKey(path), expected, `tiny cache ${path}`);
  }
  assert.deepEqual(await tiny.getPublicKey("m/44'/60'/0'/0/0"), await js.getPublicKey("m/44'/60'/0'/0/0"));
});

test('Schnorr signatures verify under the x-only key; after wipe() nothing signs', { skip }, async () => {
  const native = new NativeKeyBackend(root());
  const digest = digestOf(7);
  const signature = await native.signSchnorr("m/7447'/0'/0'", digest);
  assert.ok(schnorr.verify(signature, digest, (await native.getPublicKey("m/7447'/0'/0'")).slice(1)));
  native.wipe();
  await assert.rejects(native.signDigest("m/0", digest, 'ecdsa-secp256k1'), { code: 'sealed' });
  await assert.rejects(native.getPublicKey("m/0"), { code: 'sealed' });
});

interface WycheproofFile {
  numberOfTests: number;
  testGroups: { publicKey: { uncompressed: string }; tests: { tcId: number; comment: string; flags: string[]; msg: string; sig: string; result: 'valid' | 'invalid' | 'acceptable' }[] }[];
}

test('Wycheproof ECDSA secp256k1 SHA-256: native ecdsaVerify agrees with every expected result', { skip: skip || vectorsSkipReason }, (t) => {
  const file = JSON.parse(readVector('wycheproof-ecdsa_secp256k1_sha256_test.json')) as WycheproofFile;
  const lib = libsecp256k1();
  const disagreements: string[] = [];
  let checked = 0;
  for (const group of file.testGroups) {
    const publicKey = Uint8Array.from(Buffer.from(group.publicKey.uncompressed, 'hex'));
    for (const c of group.tests) {
      if (c.result === 'acceptable') continue;
      checked++;
      let ok: boolean;
      try {
        // libsecp256k1 parses strict DER only, and verifies low-S only (its malleability rule); this file is
        // plain ECDSA where high-S is valid, so a parsed signature is normalised before verifying.
        const compact = lib.signatureNormalize(lib.signatureImport(Uint8Array.from(Buffer.from(c.sig, 'hex'))));
        const digest = Uint8Array.from(createHash('sha256').update(Buffer.from(c.msg, 'hex')).digest());
        ok = lib.ecdsaVerify(compact, digest, publicKey);
      } catch {
        ok = false;
      }
      if (ok !== (c.result === 'valid')) disagreements.push(`tcId ${c.tcId} (${c.comment}; ${c.flags.join(',')}): expected ${c.result}`);
    }
  }
  t.diagnostic(`${checked} valid/invalid cases checked natively`);
  assert.ok(checked > 300);
  assert.deepEqual(disagreements, []);
});

test('deriveSecret: the same 32 bytes from both backends, HMAC-SHA256 keyed with the key at the path; labels and paths separate them', { skip }, async () => {
  const js = new HdKeyBackend(root());
  const native = new NativeKeyBackend(root());
  const path = "m/7447'/1'/0'";
  const a = await js.deriveSecret(path, 'webhook/whk_1/1');
  assert.equal(a.length, 32);
  assert.deepEqual(await native.deriveSecret(path, 'webhook/whk_1/1'), a);
  // Independently: HMAC-SHA256(private key at the path, "airlock/derived-secret/v1\0" || label).
  const privateKey = root().derive(path).privateKey!;
  const { createHmac } = await import('node:crypto');
  assert.equal(Buffer.from(a).toString('hex'), createHmac('sha256', privateKey).update('airlock/derived-secret/v1\0webhook/whk_1/1').digest('hex'));
  assert.notDeepEqual(await js.deriveSecret(path, 'webhook/whk_1/2'), a, 'another label (a rotation): another secret');
  assert.notDeepEqual(await js.deriveSecret("m/7447'/0'/0'", 'webhook/whk_1/1'), a, 'another key: another secret');
  await assert.rejects(js.deriveSecret(path, ''), /label/);
});
