import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, concatBytes, hexToBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import { legacyCanonicalJson } from '../canonical-json.ts';
import { checkpointDigest, GENESIS_HASH, hashAuditEntry } from './hash.ts';
import { AuditLogVerifier as AuditChainVerifier } from './log-verifier.ts';
import { leafHash, rootOfLeafHashes } from './merkle.ts';
import { chainLeaf } from './hash.ts';

const NO_SIGS = { verifyTreeHead: () => true, verifyCheckpoint: () => true };
import type { AuditEntry, AuditEntryInput } from './types.ts';

// The entry hash is specified as sha256(tag || prevHash || canonical body): recompute it with an
// independent SHA-256 (noble) from the documented layout, so an outsider's verifier agrees with ours.
test('entry hashes follow the documented layout (checked with an independent SHA-256)', () => {
  const entry = { at: 1767225600000, type: 'sign.request', actor: 'agent' as const, agentId: 'ag_1', action: 'evm.message', decision: 'deny' as const, data: { z: 1n, a: ['x'] } };
  const body = '{"action":"evm.message","actor":"agent","agentId":"ag_1","at":1767225600000,"data":{"a":["x"],"z":"1"},"decision":"deny","seq":1,"type":"sign.request"}';
  const expected = bytesToHex(sha256(concatBytes(utf8ToBytes('airlock/audit-entry/v2\u0000'), hexToBytes(GENESIS_HASH), utf8ToBytes(body))));
  assert.equal(hashAuditEntry(GENESIS_HASH, 1, entry), expected);
  assert.equal(hashAuditEntry(GENESIS_HASH, 1, entry, 2), expected);
  // Version 1: the tag and canonical form entries were hashed with before RFC 8785.
  assert.equal(hashAuditEntry(GENESIS_HASH, 1, entry, 1), bytesToHex(sha256(concatBytes(utf8ToBytes('airlock/audit-entry/v1\u0000'), hexToBytes(GENESIS_HASH), utf8ToBytes(body)))));
  const cp = { seq: 1, headHash: expected, at: 5 };
  assert.equal(bytesToHex(checkpointDigest(cp)), bytesToHex(sha256(concatBytes(utf8ToBytes('airlock/audit-checkpoint/v1\u0000'), utf8ToBytes(`{"at":5,"headHash":"${expected}","seq":1}`)))));
});

/** A version-1 entry exactly as the code before RFC 8785 hashed it (tag v1, the old canonical form). */
function legacyEntry(prevHash: string, seq: number, input: AuditEntryInput): AuditEntry {
  const { at, type, actor, agentId, sessionId, action, decision, data } = input;
  const body = legacyCanonicalJson({ seq, at, type, actor, agentId, sessionId, action, decision, data });
  const hash = bytesToHex(sha256(concatBytes(utf8ToBytes('airlock/audit-entry/v1\u0000'), hexToBytes(prevHash), utf8ToBytes(body))));
  return { ...input, seq, prevHash, hash };
}

test('a chain of version-1 entries followed by version-2 entries verifies; a version going back does not', () => {
  // Integer-like keys: the one place the old form and RFC 8785 differ, so each entry only verifies under its own version.
  const input = (i: number): AuditEntryInput => ({ at: 1000 + i, type: 'sign.request', actor: 'agent', data: { amounts: { 9: `${i}`, 10: 'x' } } });
  const chain: AuditEntry[] = [];
  let prev = GENESIS_HASH;
  for (let seq = 1; seq <= 3; seq++) {
    const entry = legacyEntry(prev, seq, input(seq));
    chain.push(entry);
    prev = entry.hash;
  }
  for (let seq = 4; seq <= 5; seq++) {
    const hash = hashAuditEntry(prev, seq, input(seq));
    chain.push({ ...input(seq), seq, prevHash: prev, hash, hashVersion: 2 });
    prev = hash;
  }
  const verifier = new AuditChainVerifier();
  for (const e of chain) assert.ok(verifier.push(e), `entry ${e.seq}`);
  assert.deepEqual(verifier.finish([], [], NO_SIGS), { ok: true, entries: 5, checkpoints: 0, treeHeads: 0, rootHash: Buffer.from(rootOfLeafHashes(chain.map((e) => leafHash(chainLeaf(e.hash))))).toString('hex'), unanchored: 5 });

  // An entry that claims to be version 2 but was hashed as version 1 (or the reverse) does not verify.
  const relabelled = new AuditChainVerifier();
  assert.equal(relabelled.push({ ...chain[0]!, hashVersion: 2 }), false);
  const downgraded = new AuditChainVerifier();
  for (const e of chain.slice(0, 4)) downgraded.push(e);
  assert.equal(downgraded.push({ ...chain[4]!, hashVersion: 1 }), false);
  assert.match(downgraded.finish([], [], NO_SIGS).firstBad!.reason, /hash version 1 follows version 2/);
});

test('a version-1 entry given a __proto__ member does not verify, although the old form cannot see it', () => {
  const input: AuditEntryInput = { at: 1, type: 'sign.request', actor: 'agent', data: { amount: '1' } };
  const entry = legacyEntry(GENESIS_HASH, 1, input);
  const edited = { ...entry, data: JSON.parse('{"amount":"1","__proto__":{"to":"0xattacker"}}') as Record<string, unknown> };
  assert.equal(legacyEntry(GENESIS_HASH, 1, edited).hash, entry.hash, 'the old form hashes both alike');
  const verifier = new AuditChainVerifier();
  assert.equal(verifier.push(edited), false);
  assert.match(verifier.finish([], [], NO_SIGS).firstBad!.reason, /edited/);
  assert.equal(new AuditChainVerifier().push(entry), true);
});

test('an entry too deep to hash is reported as edited, not thrown', () => {
  let data: Record<string, unknown> = {};
  for (let i = 0; i < 5000; i++) data = { d: data };
  const verifier = new AuditChainVerifier();
  assert.equal(verifier.push({ at: 1, type: 't', actor: 'system', data, seq: 1, prevHash: GENESIS_HASH, hash: '00'.repeat(32), hashVersion: 2 }), false);
  assert.match(verifier.finish([], [], NO_SIGS).firstBad!.reason, /cannot be hashed/);
});
