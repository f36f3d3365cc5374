// The log verifier on hash-chained (legacy) entries: the checkpoint checks (signature, key, truncation, head), continuing from a
// trusted checkpoint, and the exact first problem it names. Survivors of the mutation run showed that
// dropping the checkpoint signature check or the key check left every test green.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chainLeaf, GENESIS_HASH, hashAuditEntry } from './hash.ts';
import { AuditLogVerifier, LeafRangeVerifier, finishVerification } from './log-verifier.ts';
import { leafHash, rootOfLeafHashes } from './merkle.ts';
import type { AuditCheckpoint, AuditEntry } from './types.ts';

const KEY = 'aa'.repeat(32);
const OTHER_KEY = 'bb'.repeat(32);

function chain(n: number): AuditEntry[] {
  const entries: AuditEntry[] = [];
  let prev = GENESIS_HASH;
  for (let seq = 1; seq <= n; seq++) {
    const input = { at: 1_767_225_600_000 + seq, type: 'sign.request', actor: 'agent' as const, agentId: 'ag_1', decision: 'allow' as const, data: { n: seq } };
    const hash = hashAuditEntry(prev, seq, input);
    entries.push({ ...input, seq, prevHash: prev, hash, hashVersion: 2 });
    prev = hash;
  }
  return entries;
}

/** A checkpoint whose "signature" is valid exactly when it is the string `good` (the Schnorr check is injected). */
function checkpoint(entries: AuditEntry[], seq: number, over: Partial<AuditCheckpoint> = {}): AuditCheckpoint {
  return { seq, headHash: entries[seq - 1]!.hash, at: 0, publicKey: KEY, signature: 'good', ...over };
}
const verifySignature = (cp: AuditCheckpoint) => cp.signature === 'good';

const sigs = (publicKey?: string) => ({ ...(publicKey ? { publicKey } : {}), verifyCheckpoint: verifySignature, verifyTreeHead: () => false });
const rootOf = (entries: AuditEntry[]) => Buffer.from(rootOfLeafHashes(entries.map((e) => leafHash(chainLeaf(e.hash))))).toString('hex');

function verify(entries: AuditEntry[], checkpoints: AuditCheckpoint[], expectedPublicKey?: string) {
  const v = new AuditLogVerifier([], checkpoints);
  for (const e of entries) v.push(e);
  return v.finish([], checkpoints, sigs(expectedPublicKey));
}

test('a clean chain with checkpoints verifies; entries after the last checkpoint are counted as unanchored', () => {
  const entries = chain(10);
  // Given out of order: the verifier sorts checkpoints by seq.
  const result = verify(entries, [checkpoint(entries, 7), checkpoint(entries, 3)], KEY);
  assert.deepEqual(result, { ok: true, entries: 10, checkpoints: 2, treeHeads: 0, rootHash: rootOf(entries), unanchored: 3 });
});

test('a checkpoint with an invalid signature is refused at its seq', () => {
  const entries = chain(6);
  const result = verify(entries, [checkpoint(entries, 2), checkpoint(entries, 4, { signature: 'forged' })], KEY);
  assert.equal(result.ok, false);
  assert.deepEqual(result.firstBad, { seq: 4, reason: 'checkpoint at 4 has an invalid signature' });
});

test('a checkpoint signed by another key than the published one is refused, even with a valid signature', () => {
  const entries = chain(6);
  const result = verify(entries, [checkpoint(entries, 4, { publicKey: OTHER_KEY })], KEY);
  assert.equal(result.ok, false);
  assert.deepEqual(result.firstBad, { seq: 4, reason: 'checkpoint at 4 is signed by an unknown key' });
  // Without a published key to compare with, the signature alone decides.
  assert.equal(verify(entries, [checkpoint(entries, 4, { publicKey: OTHER_KEY })]).ok, true);
});

test('a checkpoint whose head does not match the entry at its seq is refused', () => {
  const entries = chain(6);
  const result = verify(entries, [checkpoint(entries, 4, { headHash: entries[2]!.hash })], KEY);
  assert.deepEqual(result.firstBad, { seq: 4, reason: 'entry 4 does not match the signed checkpoint head' });
});

test('a log shorter than a checkpoint is truncated at the first missing entry', () => {
  const entries = chain(6);
  const result = verify(entries.slice(0, 4), [checkpoint(entries, 6)], KEY);
  assert.deepEqual(result.firstBad, { seq: 5, reason: 'log truncated: checkpoint covers 6 entries, only 4 present' });
});

test('a missing entry and an out-of-order entry are named as such; nothing after the first problem is accepted', () => {
  const entries = chain(6);
  const v = new AuditLogVerifier();
  assert.equal(v.push(entries[0]!), true);
  assert.equal(v.push(entries[2]!), false);
  assert.equal(v.push(entries[1]!), false, 'the verifier stays failed');
  assert.deepEqual(v.finish([], [], sigs()).firstBad, { seq: 2, reason: 'entry 2 (leaf 1) is missing (next is entry 3, leaf 2)' });
  const back = new AuditLogVerifier();
  back.push(entries[0]!);
  back.push(entries[1]!);
  back.push(entries[0]!);
  assert.deepEqual(back.finish([], [], sigs()).firstBad, { seq: 1, reason: 'entry 1 is out of order' });
});

test('an entry whose stored prevHash was rewritten is named at that entry, even when its own hash is right', () => {
  const entries = chain(4);
  const rewritten = entries.map((e) => (e.seq === 3 ? { ...e, prevHash: GENESIS_HASH } : e));
  assert.deepEqual(verify(rewritten, []).firstBad, { seq: 3, reason: 'prevHash does not match the previous entry' });
});

test('ranges verified apart (as worker threads do) join into the same result, and a broken seam is named', () => {
  const entries = chain(8);
  const range = (from: number, to: number) => {
    const r = new LeafRangeVerifier({ start: from, chainAt: [6] });
    for (const e of entries.slice(from, to)) r.push(e);
    return r.result();
  };
  const cps = [checkpoint(entries, 6)];
  assert.deepEqual(finishVerification([range(0, 4), range(4, 8)], [], cps, sigs(KEY)), verify(entries, cps, KEY));
  const rewritten = entries.map((e) => (e.seq === 5 ? { ...e, prevHash: GENESIS_HASH } : e));
  const second = new LeafRangeVerifier({ start: 4 });
  for (const e of rewritten.slice(4)) second.push(e);
  const bad = finishVerification([range(0, 4), second.result()], [], [], sigs()).firstBad!;
  assert.equal(bad.seq, 5);
  assert.match(bad.reason, /prevHash|edited/);
});

test('ranges joined from leaf 0: whole ranges deleted at the start, or leaves at the start of a later range, are named as one thread names them', () => {
  const entries = chain(12);
  const range = (from: number, to: number, keep: (e: AuditEntry) => boolean) => {
    const r = new LeafRangeVerifier({ start: from });
    for (const e of entries.slice(from, to).filter(keep)) if (!r.push(e)) break;
    return r.result();
  };
  const join = (keep: (e: AuditEntry) => boolean) => finishVerification([range(0, 4, keep), range(4, 8, keep), range(8, 12, keep)], [], [], sigs());
  const oneThread = (keep: (e: AuditEntry) => boolean) => verify(entries.filter(keep), []);
  // The first range (and the first two) read no row: nothing vouches that the rest starts at leaf 0.
  for (const cut of [4, 8]) {
    const keep = (e: AuditEntry) => e.seq > cut;
    const joined = join(keep);
    assert.deepEqual(joined, oneThread(keep));
    assert.deepEqual(joined.firstBad, { seq: cut + 1, reason: `entry ${cut + 1} (leaf 0) is missing (next is entry ${cut + 1}, leaf ${cut})` });
    assert.equal(joined.entries, 0);
  }
  // Leaves 4 and 5 deleted: the second range starts at leaf 6, and the missing entry is the one after entry 4.
  const keep = (e: AuditEntry) => e.seq !== 5 && e.seq !== 6;
  assert.deepEqual(join(keep), oneThread(keep));
  assert.deepEqual(join(keep).firstBad, { seq: 5, reason: 'entry 5 (leaf 4) is missing (next is entry 7, leaf 6)' });
});
