#!/usr/bin/env node
// Reference verifier for Airlock audit exports, receipts and consistency proofs, written from
// docs/audit-format.md alone: it uses no Airlock code, only node:crypto and @noble/curves (BIP-340).
//
//   node tools/audit-verifier/verify.mjs export.jsonl --public-key HEX
//   node tools/audit-verifier/verify.mjs receipt receipt.json --public-key HEX      (GET /v1/audit/receipts/{seq})
//   node tools/audit-verifier/verify.mjs consistency proof.json --public-key HEX    (GET /v1/audit/consistency)
//
// Exit code 0 when everything verifies, 2 when something does not (the first problem is printed).
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { schnorr } from '@noble/curves/secp256k1.js';

const sha256 = (...parts) => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
};
const hex = (b) => Buffer.from(b).toString('hex');
const unhex = (s) => new Uint8Array(Buffer.from(s, 'hex'));
const utf8 = (s) => new TextEncoder().encode(s);
const equal = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);

// ---- RFC 9162 section 2.1 ----
export const leafHash = (leaf) => sha256(Uint8Array.of(0), typeof leaf === 'string' ? utf8(leaf) : leaf);
export const nodeHash = (l, r) => sha256(Uint8Array.of(1), l, r);

/** MTH over leaf hashes, by the RFC's recursive definition. */
export function merkleRoot(leafHashes) {
  const mth = (from, to) => {
    if (to === from) return sha256();
    if (to - from === 1) return leafHashes[from];
    let k = 1;
    while (k * 2 < to - from) k *= 2;
    return nodeHash(mth(from, from + k), mth(from + k, to));
  };
  return mth(0, leafHashes.length);
}

/** RFC 9162 2.1.3.2. */
export function verifyInclusion(index, size, leaf, proof, root) {
  if (!(index >= 0 && index < size)) return false;
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      if (fn % 2 === 0) while (fn % 2 === 0 && fn !== 0) (fn = Math.floor(fn / 2)), (sn = Math.floor(sn / 2));
    } else r = nodeHash(r, p);
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && equal(r, root);
}

/** RFC 9162 2.1.4.2. */
export function verifyConsistency(size1, size2, root1, root2, proof) {
  if (!(size1 >= 0 && size1 <= size2)) return false;
  if (size1 === size2) return proof.length === 0 && equal(root1, root2);
  if (size1 === 0) return proof.length === 0;
  if (proof.length === 0) return false;
  const path = (size1 & (size1 - 1)) === 0 ? [root1, ...proof] : [...proof];
  let fn = size1 - 1;
  let sn = size2 - 1;
  while (fn % 2 === 1) (fn = Math.floor(fn / 2)), (sn = Math.floor(sn / 2));
  let fr = path[0];
  let sr = path[0];
  for (const c of path.slice(1)) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      if (fn % 2 === 0) while (fn % 2 === 0 && fn !== 0) (fn = Math.floor(fn / 2)), (sn = Math.floor(sn / 2));
    } else sr = nodeHash(sr, c);
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && equal(fr, root1) && equal(sr, root2);
}

// ---- signatures ----
export function treeHeadDigest({ treeSize, rootHash, at }) {
  const n = new DataView(new ArrayBuffer(16));
  n.setBigUint64(0, BigInt(treeSize));
  n.setBigUint64(8, BigInt(at));
  return sha256(utf8('airlock/audit-tree-head/v1\0'), new Uint8Array(n.buffer), unhex(rootHash));
}
export function verifyTreeHead(head, publicKey) {
  if (head.publicKey !== publicKey) return false;
  try {
    return schnorr.verify(unhex(head.signature), treeHeadDigest(head), unhex(publicKey));
  } catch {
    return false;
  }
}

// ---- canonical JSON: RFC 8785 (version 2 and 3) and the form before it (version 1) ----
function jcs(v) {
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(jcs).join(',')}]`;
  const keys = Object.keys(v).filter((k) => v[k] !== undefined).sort(); // default sort: UTF-16 code units, as RFC 8785
  return `{${keys.map((k) => `${JSON.stringify(k)}:${jcs(v[k])}`).join(',')}}`;
}
function legacyJson(v) {
  return JSON.stringify(v, (_k, x) => {
    if (x === null || typeof x !== 'object' || Array.isArray(x)) return x;
    const sorted = {};
    for (const k of Object.keys(x).sort()) sorted[k] = x[k];
    return sorted;
  });
}
const FIELDS = ['seq', 'at', 'type', 'actor', 'agentId', 'sessionId', 'action', 'decision'];

function chainHash(e, version) {
  const body = { seq: e.seq, at: e.at, type: e.type, actor: e.actor, agentId: e.agentId, sessionId: e.sessionId, action: e.action, decision: e.decision, data: e.data };
  return hex(sha256(utf8(`airlock/audit-entry/v${version}\0`), unhex(e.prevHash), utf8(version === 1 ? legacyJson(body) : jcs(body))));
}

/** Verifies an export (its text): every entry, the tree, every signed head against `publicKey`. */
export function verifyExport(text, { publicKey } = {}) {
  const lines = text.split('\n').filter((l) => l.trim());
  const header = JSON.parse(lines[0]);
  if (header.format !== 'airlock-audit-export/v2') throw new Error('not an airlock-audit-export/v2 file');
  const key = publicKey ?? header.publicKey;
  const leaves = [];
  let prev;
  const fail = (seq, reason) => ({ ok: false, entries: leaves.length, firstBad: { seq, reason } });
  for (const line of lines.slice(1)) {
    const e = JSON.parse(line);
    const version = e.hashVersion ?? 1;
    if (e.leafIndex !== leaves.length) return fail(e.seq, `entry ${e.seq} is at leaf ${e.leafIndex}, expected leaf ${leaves.length} (deleted or reordered)`);
    // seq orders chained entries only; a version-3 entry's place is its leaf index (docs/audit-format.md).
    if (prev && version !== 3 && e.seq <= prev.seq) return fail(e.seq, `entry ${e.seq} is out of order`);
    if (prev && version < prev.version) return fail(e.seq, 'hash version goes down (edited)');
    if (version === 3) {
      let leaf;
      try {
        leaf = JSON.parse(e.leaf);
      } catch {
        return fail(e.seq, 'leaf is not JSON (edited)');
      }
      if (jcs(leaf) !== e.leaf) return fail(e.seq, 'leaf is not canonical JSON (edited)');
      for (const f of FIELDS) if (leaf[f] !== e[f]) return fail(e.seq, `${f} does not match the leaf (edited)`);
      if (jcs(leaf.data) !== jcs(e.data)) return fail(e.seq, 'data does not match the leaf (edited)');
      const h = leafHash(e.leaf);
      if (hex(h) !== e.hash) return fail(e.seq, 'leaf does not match its hash (edited)');
      leaves.push(h);
    } else if (version === 1 || version === 2) {
      if (e.seq !== e.leafIndex + 1) return fail(e.seq, 'a chained entry must sit at leaf seq - 1');
      if (e.prevHash !== (prev ? prev.hash : '0'.repeat(64))) return fail(e.seq, 'prevHash does not match the previous entry');
      if (chainHash(e, version) !== e.hash) return fail(e.seq, 'entry does not match its chain hash (edited)');
      leaves.push(leafHash(new Uint8Array([...utf8('airlock/audit-chain-leaf/v1\0'), ...unhex(e.hash)])));
    } else return fail(e.seq, `unknown hash version ${version}`);
    prev = { seq: e.seq, version, hash: e.hash };
  }
  let anchored = 0;
  for (const head of [...header.treeHeads].sort((a, b) => a.treeSize - b.treeSize)) {
    if (!verifyTreeHead(head, key)) return fail(head.treeSize, `tree head of size ${head.treeSize} is not signed by the audit key`);
    if (head.treeSize > leaves.length) return fail(leaves.length + 1, `log truncated: a signed head covers ${head.treeSize} entries, ${leaves.length} present`);
    if (hex(merkleRoot(leaves.slice(0, head.treeSize))) !== head.rootHash) return fail(head.treeSize, `the tree does not match the signed tree head of size ${head.treeSize}`);
    anchored = head.treeSize;
  }
  return { ok: true, entries: leaves.length, rootHash: hex(merkleRoot(leaves)), treeHeads: header.treeHeads.length, unanchored: leaves.length - anchored };
}

/** Verifies a receipt response: the leaf, its hash, the inclusion proof, the head's signature. */
export function verifyReceipt(r, publicKey) {
  const { receipt, entry, treeHead, proof } = r;
  const leaf = entry.hashVersion === 3 ? leafHash(entry.leaf) : leafHash(new Uint8Array([...utf8('airlock/audit-chain-leaf/v1\0'), ...unhex(entry.hash)]));
  if (hex(leaf) !== receipt.leafHash || entry.seq !== receipt.auditSeq) return false;
  if (entry.hashVersion === 3 && JSON.parse(entry.leaf).seq !== receipt.auditSeq) return false;
  return verifyTreeHead(treeHead, publicKey) && verifyInclusion(receipt.leafIndex, treeHead.treeSize, leaf, proof.map(unhex), unhex(treeHead.rootHash));
}

/** Verifies a consistency response: both heads signed, and the proof. */
export function verifyConsistencyResponse(c, publicKey) {
  return verifyTreeHead(c.from, publicKey) && verifyTreeHead(c.to, publicKey) && verifyConsistency(c.from.treeSize, c.to.treeSize, unhex(c.from.rootHash), unhex(c.to.rootHash), c.proof.map(unhex));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  const k = args.indexOf('--public-key');
  const publicKey = k >= 0 ? args[k + 1] : undefined;
  const positional = args.filter((_, i) => i !== k && i !== k + 1);
  let ok;
  if (positional[0] === 'receipt' || positional[0] === 'consistency') {
    if (!publicKey) throw new Error('--public-key is required');
    const body = JSON.parse(readFileSync(positional[1], 'utf8'));
    ok = positional[0] === 'receipt' ? verifyReceipt(body, publicKey) : verifyConsistencyResponse(body, publicKey);
    console.log(ok ? 'OK' : 'FAILED');
  } else {
    const r = verifyExport(readFileSync(positional[0], 'utf8'), { publicKey });
    ok = r.ok;
    console.log(ok ? `OK: ${r.entries} entries, ${r.treeHeads} signed tree heads, root ${r.rootHash}` : `FAILED at entry ${r.firstBad.seq}: ${r.firstBad.reason}`);
  }
  process.exitCode = ok ? 0 : 2;
}
