// A small signed audit log written here, with no server: two version-1 (hash-chained) entries, then four
// version-3 ones, each with a null in its data, under one signed tree head. Receipts are JSON text (what a
// server sends), so a test edits the text the way a lying server or a forger would. Used by the SDK's and the
// reference verifier's tests of non-canonical edits.
import { schnorr } from '@noble/curves/secp256k1.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { auditLeaf, canonicalJson, chainLeaf, GENESIS_HASH, hashAuditEntry, leafHash, rootOfLeafHashes, treeHeadDigest, type AuditEntryInput } from '@airlock/core';

export function signedAuditLog() {
  const secret = schnorr.utils.randomSecretKey();
  const publicKey = bytesToHex(schnorr.getPublicKey(secret));
  const entries: Record<string, unknown>[] = [];
  let prevHash = GENESIS_HASH;
  for (let seq = 1; seq <= 2; seq++) {
    const input: AuditEntryInput = { at: 1_700_000_000_000 + seq, type: 'policy.set', actor: 'operator', data: { version: seq, note: null } };
    const hash = hashAuditEntry(prevHash, seq, input, 1);
    entries.push({ ...input, seq, leafIndex: seq - 1, hashVersion: 1, prevHash, hash });
    prevHash = hash;
  }
  for (let seq = 3; seq <= 6; seq++) {
    const fields = { seq, at: 1_700_000_000_000 + seq, type: 'sign.request', actor: 'agent' as const, agentId: 'ag_1', decision: 'allow' as const };
    const data = { amount: null, n: seq };
    const leaf = auditLeaf(fields, canonicalJson(data));
    entries.push({ ...fields, data, leaf, leafIndex: seq - 1, hashVersion: 3, hash: bytesToHex(leafHash(leaf)) });
  }
  const leafHashes = entries.map((e) => (e.hashVersion === 3 ? leafHash(e.leaf as string) : leafHash(chainLeaf(e.hash as string))));
  const head = { treeSize: entries.length, rootHash: bytesToHex(rootOfLeafHashes(leafHashes)), at: 1_700_000_001_000, publicKey };
  const treeHead = { ...head, signature: bytesToHex(schnorr.sign(treeHeadDigest(head), secret)) };
  // RFC 9162 2.1.3.1 PATH(m, D[n]).
  const path = (m: number, d: Uint8Array[]): Uint8Array[] => {
    if (d.length <= 1) return [];
    let k = 1;
    while (k * 2 < d.length) k *= 2;
    return m < k ? [...path(m, d.slice(0, k)), rootOfLeafHashes(d.slice(k))] : [...path(m - k, d.slice(k)), rootOfLeafHashes(d.slice(0, k))];
  };
  /** The receipt response for leaf i, as JSON text. */
  const receiptAt = (i: number) => {
    const e = entries[i]!;
    const receipt = { auditSeq: e.seq, leafIndex: i, leafHash: bytesToHex(leafHashes[i]!) };
    return JSON.stringify({ receipt, entry: e, treeHead, proof: path(i, leafHashes).map(bytesToHex) });
  };
  return { publicKey, entries, treeHead, receiptAt };
}
