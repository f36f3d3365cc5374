// RFC 9162 proof edge cases: every tree size, every leaf, consistency between every pair of sizes, checked
// against a direct transcription of the RFC's recursive definitions over the leaves (no stored nodes).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  consistencyProof, EMPTY_ROOT, inclusionProof, leafHash, leafHashHex, MerkleFrontier, MissingNodeError, rootAt, rootOfLeafHashes, verifyConsistency, verifyInclusion,
  type Hash, type NodeId, type NodeSource,
} from './merkle.ts';

const sha = (...parts: Uint8Array[]) => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
};
const B = (...bytes: number[]) => new Uint8Array(bytes);

// The RFC's definitions, literally, over raw leaves.
function k(n: number) {
  let x = 1;
  while (x * 2 < n) x *= 2;
  return x;
}
function mth(d: Uint8Array[]): Uint8Array {
  if (d.length === 0) return sha();
  if (d.length === 1) return sha(B(0), d[0]!);
  const s = k(d.length);
  return sha(B(1), mth(d.slice(0, s)), mth(d.slice(s)));
}
function path(m: number, d: Uint8Array[]): Uint8Array[] {
  if (d.length <= 1) return [];
  const s = k(d.length);
  return m < s ? [...path(m, d.slice(0, s)), mth(d.slice(s))] : [...path(m - s, d.slice(s)), mth(d.slice(0, s))];
}
function subproof(m: number, d: Uint8Array[], b: boolean): Uint8Array[] {
  if (m === d.length) return b ? [] : [mth(d)];
  const s = k(d.length);
  return m <= s ? [...subproof(m, d.slice(0, s), b), mth(d.slice(s))] : [...subproof(m - s, d.slice(s), false), mth(d.slice(0, s))];
}

const leaves = Array.from({ length: 40 }, (_, i) => new TextEncoder().encode(`leaf ${i}`));

/** A node store built the way the audit tree builder fills it: every complete subtree the frontier finishes. */
function storeOf(count: number): NodeSource & { nodes: Map<string, Hash> } {
  const nodes = new Map<string, Hash>();
  const f = new MerkleFrontier();
  for (let i = 0; i < count; i++) f.push(leafHash(leaves[i]!), (id, h) => nodes.set(`${id.level}:${id.index}`, h));
  return { nodes, readNodes: async (ids: readonly NodeId[]) => ids.map((id) => nodes.get(`${id.level}:${id.index}`)) };
}

const hex = (h: Uint8Array) => Buffer.from(h).toString('hex');

test('the empty tree is SHA-256 of nothing; one leaf is its leaf hash', async () => {
  assert.equal(hex(EMPTY_ROOT), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  assert.equal(hex(await rootAt(storeOf(1), 1)), hex(sha(B(0), leaves[0]!)));
});

test('roots, from stored nodes and from the frontier, match MTH for every size 1..40', async () => {
  const source = storeOf(40);
  const f = new MerkleFrontier();
  for (let n = 1; n <= 40; n++) {
    f.push(leafHash(leaves[n - 1]!));
    const expected = hex(mth(leaves.slice(0, n)));
    assert.equal(hex(await rootAt(source, n)), expected, `size ${n}`);
    assert.equal(hex(f.root()), expected, `frontier at ${n}`);
    assert.equal(hex(rootOfLeafHashes(leaves.slice(0, n).map((l) => leafHash(l)))), expected);
  }
});

test('a frontier restarted from stored subtrees continues to the same roots', async () => {
  const source = storeOf(40);
  for (const start of [0, 1, 5, 8, 13, 16, 31]) {
    const ids = (await import('./merkle.ts')).rangeNodes(0, start);
    const frontier = (await source.readNodes(ids)) as Hash[];
    const f = new MerkleFrontier(start, frontier);
    for (let i = start; i < 40; i++) f.push(leafHash(leaves[i]!));
    assert.equal(hex(f.root()), hex(mth(leaves)), `from ${start}`);
  }
});

test('leafHashHex is SHA-256(0x00 || UTF-8 of the leaf) for every kind of leaf, short after long, and past its buffer', () => {
  const leaves = ['{"a":1}', '', 'é日本😀', 'lone \ud800 surrogate', 'x'.repeat(5000), '{"b":2}', 'y'.repeat(30_000), 'é'.repeat(22_000), '{"a":1}'];
  for (const leaf of leaves) assert.equal(leafHashHex(leaf), hex(sha(B(0), Buffer.from(leaf, 'utf8'))), `${leaf.length} characters`);
});

test('leaves given as hex (as the verifier has them) build the same tree as leaves given as bytes: roots, frontier, finished nodes', () => {
  const asBytes = new MerkleFrontier();
  const asHex = new MerkleFrontier();
  const mixed = new MerkleFrontier();
  const nodes: [string[], string[]] = [[], []];
  for (let n = 1; n <= 40; n++) {
    const leaf = leafHash(leaves[n - 1]!);
    asBytes.push(leaf, (id, h) => nodes[0].push(`${id.level}:${id.index}:${hex(h)}`));
    asHex.pushHex(hex(leaf), (id, h) => nodes[1].push(`${id.level}:${id.index}:${hex(h)}`));
    if (n % 3 === 0) mixed.push(leaf);
    else mixed.pushHex(hex(leaf));
    assert.equal(hex(asHex.root()), hex(mth(leaves.slice(0, n))), `size ${n}`);
    assert.equal(hex(mixed.root()), hex(asHex.root()), `mixed at ${n}`);
    assert.deepEqual(asHex.hashes().map(hex), asBytes.hashes().map(hex));
  }
  assert.deepEqual(nodes[1], nodes[0]);
  assert.throws(() => asHex.pushHex('ab'), RangeError);
  const bad = new MerkleFrontier();
  bad.pushHex('zz'.repeat(32));
  assert.throws(() => bad.root(), RangeError, 'a leaf that is not hex is refused when it is used');
});

test('inclusion proofs: every leaf of every tree size 1..40 equals PATH and verifies; any change fails', async () => {
  const source = storeOf(40);
  for (let n = 1; n <= 40; n++) {
    const root = mth(leaves.slice(0, n));
    for (let m = 0; m < n; m++) {
      const proof = await inclusionProof(source, m, n);
      assert.deepEqual(proof.map(hex), path(m, leaves.slice(0, n)).map(hex), `PATH(${m}, ${n})`);
      const leaf = leafHash(leaves[m]!);
      assert.ok(verifyInclusion(m, n, leaf, proof, root), `verify ${m} in ${n}`);
      // Wrong index, wrong size, wrong leaf, a flipped proof byte, a dropped or an extra element: all fail.
      if (n > 1) assert.ok(!verifyInclusion((m + 1) % n, n, leaf, proof, root), `index moved ${m} in ${n}`);
      assert.ok(!verifyInclusion(m, n, leafHash(leaves[(m + 1) % 40]!), proof, root));
      assert.ok(!verifyInclusion(m, n, leaf, [...proof, root], root));
      if (proof.length > 0) {
        const flipped = proof.map((p) => new Uint8Array(p));
        flipped[proof.length - 1]![0]! ^= 1;
        assert.ok(!verifyInclusion(m, n, leaf, flipped, root));
        assert.ok(!verifyInclusion(m, n, leaf, proof.slice(0, -1), root));
      }
    }
    assert.ok(!verifyInclusion(n, n, leafHash(leaves[0]!), [], root), 'index == size');
  }
});

test('consistency proofs between every pair of sizes up to 20 equal SUBPROOF and verify; wrong roots fail', async () => {
  const source = storeOf(20);
  for (let n = 1; n <= 20; n++) {
    const root2 = mth(leaves.slice(0, n));
    for (let m = 1; m <= n; m++) {
      const root1 = mth(leaves.slice(0, m));
      const proof = await consistencyProof(source, m, n);
      assert.deepEqual(proof.map(hex), (m === n ? [] : subproof(m, leaves.slice(0, n), true)).map(hex), `SUBPROOF(${m}, ${n})`);
      assert.ok(verifyConsistency(m, n, root1, root2, proof), `verify ${m} -> ${n}`);
      const otherRoot = mth(leaves.slice(1, m + 1));
      assert.ok(!verifyConsistency(m, n, otherRoot, root2, proof), `forged old root ${m} -> ${n}`);
      assert.ok(!verifyConsistency(m, n, root1, otherRoot, proof), `forged new root ${m} -> ${n}`);
      if (m < n) {
        assert.ok(!verifyConsistency(m, n, root1, root2, []), 'an empty proof proves nothing');
        const flipped = proof.map((p) => new Uint8Array(p));
        flipped[0]![5]! ^= 1;
        assert.ok(!verifyConsistency(m, n, root1, root2, flipped));
      }
    }
    assert.ok(!verifyConsistency(n, n - 1, root2, root2, []), 'a tree cannot shrink');
  }
});

test('a proof that needs a node the store does not have is refused, not made up', async () => {
  const source = storeOf(10);
  await assert.rejects(inclusionProof(source, 3, 16), MissingNodeError);
  await assert.rejects(rootAt(source, 11), MissingNodeError);
});
