// BIP-32 test vectors 1-4 (valid) and 5 (invalid extended keys), transcribed from bip-0032.mediawiki.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HDKey } from '@scure/bip32';
import { readVector, vectorsSkipReason } from '../../../testing/vectors.ts';
import { HdKeyBackend } from './hd-backend.ts';

interface Bip32Vectors {
  valid: { vector: number; seed: string; path: string; xpub: string; xprv: string }[];
  invalid: { vector: number; key: string; reason: string }[];
}
const load = (): Bip32Vectors => JSON.parse(readVector('bip32-test-vectors.json')) as Bip32Vectors;

test('BIP-32 vectors 1-4: xprv/xpub at each path', { skip: vectorsSkipReason }, async () => {
  const { valid } = load();
  assert.equal(valid.length, 17);
  for (const v of valid) {
    const root = HDKey.fromMasterSeed(Uint8Array.from(Buffer.from(v.seed, 'hex')));
    const node = root.derive(v.path);
    assert.equal(node.privateExtendedKey, v.xprv, `vector ${v.vector} ${v.path}`);
    assert.equal(node.publicExtendedKey, v.xpub, `vector ${v.vector} ${v.path}`);
    // The backend (own path parser + cache) must land on the same public key.
    const backendKey = await new HdKeyBackend(root).getPublicKey(v.path);
    assert.deepEqual(backendKey, HDKey.fromExtendedKey(v.xpub).publicKey, `backend, vector ${v.vector} ${v.path}`);
  }
});

test('BIP-32 vector 5: every invalid extended key is rejected', { skip: vectorsSkipReason }, () => {
  const { invalid } = load();
  assert.equal(invalid.length, 16);
  for (const v of invalid) {
    assert.throws(() => HDKey.fromExtendedKey(v.key), Error, `accepted: ${v.reason}`);
  }
});
