// BIP-32 test vectors 1-4 (valid) and 5 (invalid extended keys), transcribed from bip-0032.mediawiki.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HDKey } from '@scure/bip32';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { readVector, vectorsSkipReason } from '../../../testing/vectors.ts';
import { HdKeyBackend } from './hd-backend.ts';

interface Bip32Vectors {
  valid: { vector: number; seed: string; path: string; xpub: string; xprv: string }[];
  invalid: { vector: number; key: string; reason: string }[];
}
const load = (): Bip32Vectors => JSON.parse(readVector('bip32-test-vectors.json')) as Bip32Vectors;

test('BIP-32 vectors 1-4: xprv/xpub at each path', { skip: vectorsSkipReason }, () => {
  const { valid } = load();
  assert.equal(valid.length, 17);
  for (const v of valid) {
    const node = HDKey.fromMasterSeed(Uint8Array.from(Buffer.from(v.seed, 'hex'))).derive(v.path);
    assert.equal(node.privateExtendedKey, v.xprv, `vector ${v.vector} ${v.path}`);
    assert.equal(node.publicExtendedKey, v.xpub, `vector ${v.vector} ${v.path}`);
  }
});

test("BIP-32 vectors 1-4 through Airlock's own derivation: path parser, node cache and signing land on each vector key", { skip: vectorsSkipReason }, async () => {
  const { valid } = load();
  const bySeed = Map.groupBy(valid, (v) => v.seed);
  let checked = 0;
  for (const [seedHex, vectors] of bySeed) {
    const root = () => HDKey.fromMasterSeed(Uint8Array.from(Buffer.from(seedHex, 'hex')));
    // One backend per seed, so later paths start from cached parents; a one-node cache evicts on every step;
    // the reverse order asks for ancestors of what is cached.
    const backends = [new HdKeyBackend(root()), new HdKeyBackend(root(), { cacheSize: 1 })];
    for (const order of [vectors, [...vectors].reverse()]) {
      for (const backend of backends) {
        for (const v of order) {
          const expected = HDKey.fromExtendedKey(v.xpub).publicKey!;
          assert.deepEqual(await backend.getPublicKey(v.path), expected, `vector ${v.vector} ${v.path}`);
          // The private key at the path is the vector's: a signature from the backend verifies under the vector's xpub.
          const digest = sha256(Uint8Array.from(Buffer.from(`bip32 ${v.vector} ${v.path}`)));
          const { compact } = await backend.signDigest(v.path, digest, 'ecdsa-secp256k1');
          assert.ok(secp256k1.verify(compact, digest, expected, { prehash: false }), `signature at vector ${v.vector} ${v.path}`);
          checked++;
        }
      }
    }
  }
  assert.equal(checked, valid.length * 4);
});

test('BIP-32 vector 5: every invalid extended key is rejected', { skip: vectorsSkipReason }, () => {
  const { invalid } = load();
  assert.equal(invalid.length, 16);
  for (const v of invalid) {
    assert.throws(() => HDKey.fromExtendedKey(v.key), Error, `accepted: ${v.reason}`);
  }
});
