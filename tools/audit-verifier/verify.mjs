#!/usr/bin/env node
// Reference verifier for Airlock audit exports, receipts and consistency proofs, written from
// docs/audit-format.md alone: it uses no Airlock code, only node:crypto and @noble/curves (BIP-340).
//
//   node tools/audit-verifier/verify.mjs export.jsonl --public-key HEX [--allow-unanchored] [--min-tree-size N [--expect-root HEX]]
//   node tools/audit-verifier/verify.mjs receipt receipt.json --public-key HEX      (GET /v1/audit/receipts/{seq})
//   node tools/audit-verifier/verify.mjs consistency proof.json --public-key HEX [--from-size N] --from-root HEX [--to-size N --to-root HEX]
//                                                                                   (GET /v1/audit/consistency)
//
// Exit code 0 when everything verifies, 2 when something does not (the first problem is printed: `FAILED`
// on stdout, also for input this verifier cannot read at all), 5 when every entry and head verifies but the
// signed heads do not vouch for the export as required: with --public-key every entry must be under a signed
// tree head or legacy checkpoint (unless --allow-unanchored), and --min-tree-size / --expect-root pin the
// size and root an earlier export or head showed. 1: a usage error (nothing was checked).
//
// An export line must be exactly what the exporter writes (JSON.stringify of the line's own parse: no
// duplicate members, no added spacing) and hold only the members docs/audit-format.md lists.
//
// A consistency proof only links the two heads the response names. Against a server showing different
// auditors different logs (a split view), that proves nothing unless --from-root (with --from-size, if
// given) pins the `from` head to one this auditor already holds (and --to-root to one it got elsewhere,
// e.g. from a receipt). A size alone pins nothing: --from-size without --from-root, and --to-size without
// --to-root, are usage errors.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { schnorr } from '@noble/curves/secp256k1.js';

const sha256 = (...parts) => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
};
const hex = (b) => Buffer.from(b).toString('hex');
// Strict: Buffer.from(s, 'hex') stops at the first bad character, so "<root>zz" would read as <root>.
const unhex = (s) => {
  if (typeof s !== 'string' || !/^(?:[0-9a-fA-F]{2})*$/.test(s)) throw new TypeError('expected hex');
  return new Uint8Array(Buffer.from(s, 'hex'));
};
const utf8 = (s) => new TextEncoder().encode(s);
const equal = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);

// ---- RFC 9162 section 2.1 ----
export const leafHash = (leaf) => sha256(Uint8Array.of(0), typeof leaf === 'string' ? utf8(leaf) : leaf);
export const nodeHash = (l, r) => sha256(Uint8Array.of(1), l, r);

/**
 * MTH (2.1.1), built one leaf at a time, so that one pass over the leaves gives the root at every size a
 * signed head names: an export carries every head ever signed, and rebuilding the tree for each one would
 * cost heads x entries. The frontier is the roots of the complete subtrees that cover the leaves so far,
 * largest first, one per 1 bit of the size (at most log2(n) + 1). MTH(D[n]) = node(MTH(D[0:k]), MTH(D[k:n]))
 * with k the largest power of two below n: D[0:k] is the first subtree and D[k:n] splits the same way, so
 * the root folds the frontier from the right.
 */
export class MerkleFrontier {
  #subtrees = [];
  size = 0;

  push(leafHash) {
    let node = leafHash;
    // Each trailing 1 bit of the size before this leaf is a complete subtree of the same size as `node`: join them.
    for (let n = this.size; n % 2 === 1; n = Math.floor(n / 2)) node = nodeHash(this.#subtrees.pop(), node);
    this.#subtrees.push(node);
    this.size++;
  }

  root() {
    if (this.#subtrees.length === 0) return sha256(); // MTH({})
    let root = this.#subtrees.at(-1);
    for (let i = this.#subtrees.length - 2; i >= 0; i--) root = nodeHash(this.#subtrees[i], root);
    return root;
  }
}

/** RFC 9162 2.1.3.2. */
export function verifyInclusion(index, size, leaf, proof, root) {
  // Whole numbers only: the halving below would take leaf 4.5 for leaf 4 and prove it.
  if (!(Number.isSafeInteger(index) && Number.isSafeInteger(size) && index >= 0 && index < size)) return false;
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
  if (!(Number.isSafeInteger(size1) && Number.isSafeInteger(size2) && size1 >= 0 && size1 <= size2)) return false;
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
// A head or checkpoint as the signer writes it (docs/audit-format.md, Signed tree head): sizes and times
// are JSON numbers that are whole, 0 or more and safe integers, hashes 64 lowercase hex digits. BigInt()
// also reads "1733..." and setBigUint64 wraps what does not fit, so a head written otherwise could carry
// the signature of the head it imitates; `airlock audit verify` refuses it as malformed, and so does this.
const isCount = (n) => Number.isSafeInteger(n) && n >= 0;
const isHash = (s) => typeof s === 'string' && /^[0-9a-f]{64}$/.test(s);
const isWellFormedTreeHead = (head) => isCount(head.treeSize) && isCount(head.at) && isHash(head.rootHash);
const isWellFormedCheckpoint = (cp) => isCount(cp.seq) && isCount(cp.at) && isHash(cp.headHash);

export function treeHeadDigest(head) {
  if (!isWellFormedTreeHead(head)) throw new TypeError('a tree head needs a whole size and time (0 or more) and a 32-byte root in lowercase hex');
  const { treeSize, rootHash, at } = head;
  const n = new DataView(new ArrayBuffer(16));
  n.setBigUint64(0, BigInt(treeSize));
  n.setBigUint64(8, BigInt(at));
  return sha256(utf8('airlock/audit-tree-head/v1\0'), new Uint8Array(n.buffer), unhex(rootHash));
}
/** A legacy checkpoint (before the tree): it signs the chain hash `headHash` of the chained entry `seq`. */
export function checkpointDigest({ seq, headHash, at }) {
  return sha256(utf8('airlock/audit-checkpoint/v1\0'), utf8(jcs({ seq, headHash, at })));
}
/** BIP-340 over `digest(signed)` by `publicKey`, the key the verifier holds, which `signed` must also name. */
function signedBy(signed, digest, publicKey) {
  if (signed.publicKey !== publicKey) return false;
  try {
    return schnorr.verify(unhex(signed.signature), digest(signed), unhex(publicKey));
  } catch {
    return false;
  }
}
export const verifyTreeHead = (head, publicKey) => signedBy(head, treeHeadDigest, publicKey);
export const verifyCheckpoint = (checkpoint, publicKey) => signedBy(checkpoint, checkpointDigest, publicKey);

// ---- canonical JSON: RFC 8785 (version 2 and 3) and the form before it (version 1) ----
// Both throw on what has no canonical form: JSON.parse reads 1e999 as Infinity, which JSON.stringify
// writes as null, so an edited 1e999 would stand for a null that was hashed.
const finite = (x) => {
  if (typeof x === 'number' && !Number.isFinite(x)) throw new TypeError('a non-finite number has no canonical JSON');
};
function jcs(v) {
  finite(v);
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(jcs).join(',')}]`;
  const keys = Object.keys(v).filter((k) => v[k] !== undefined).sort(); // default sort: UTF-16 code units, as RFC 8785
  return `{${keys.map((k) => `${JSON.stringify(k)}:${jcs(v[k])}`).join(',')}}`;
}
// Version 1 sorted by assignment, which drops a `__proto__` member (it sets the prototype instead): the
// old writer never stored one, so one there now is an edit this form cannot see.
function legacyJson(v) {
  return JSON.stringify(v, (_k, x) => {
    finite(x);
    if (x === null || typeof x !== 'object' || Array.isArray(x)) return x;
    if (Object.hasOwn(x, '__proto__')) throw new TypeError('a __proto__ member is not in any version-1 entry');
    const sorted = {};
    for (const k of Object.keys(x).sort()) sorted[k] = x[k];
    return sorted;
  });
}
/** `form(v)`, or undefined when `v` has no canonical form (never equal to a canonical text). */
const canonical = (form, v) => {
  try {
    return form(v);
  } catch {
    return undefined;
  }
};
const FIELDS = ['seq', 'at', 'type', 'actor', 'agentId', 'sessionId', 'action', 'decision'];

/** The chain hash of a version 1 or 2 entry, or undefined when its content has no canonical form. */
function chainHash(e, version) {
  const body = { seq: e.seq, at: e.at, type: e.type, actor: e.actor, agentId: e.agentId, sessionId: e.sessionId, action: e.action, decision: e.decision, data: e.data };
  const text = canonical(version === 1 ? legacyJson : jcs, body);
  return text === undefined ? undefined : hex(sha256(utf8(`airlock/audit-entry/v${version}\0`), unhex(e.prevHash), utf8(text)));
}

/** Same fields as the leaf (`at` in ms in an export, as an ISO string in an API response), and the same data. */
function fieldsMatchLeaf(e, leaf) {
  for (const f of FIELDS) {
    const given = f === 'at' && typeof e.at === 'string' && typeof leaf.at === 'number' ? (e.at === new Date(leaf.at).toISOString() ? leaf.at : e.at) : e[f];
    if (leaf[f] !== given) return `${f} does not match the leaf (edited)`;
  }
  const data = canonical(jcs, e.data);
  if (e.data === null || typeof e.data !== 'object' || Array.isArray(e.data) || data === undefined || jcs(leaf.data) !== data) return 'data does not match the leaf (edited)';
  return undefined;
}

/** A version-3 entry's leaf, parsed: it must be canonical JSON, so the parsed object is exactly the hashed bytes. */
function parseLeaf(e) {
  let leaf;
  try {
    leaf = JSON.parse(e.leaf);
  } catch {
    return { problem: 'leaf is not JSON (edited)' };
  }
  if (leaf === null || typeof leaf !== 'object' || canonical(jcs, leaf) !== e.leaf) return { problem: 'leaf is not canonical JSON (edited)' };
  return { leaf };
}

// ---- the export's lines: exactly as `airlock audit export` writes them ----
// The exporter writes each line with JSON.stringify, so an honest line is the JSON.stringify of its own
// parse. JSON.parse lets the last of two duplicate members win and keeps members no verifier reads: a line
// with `"decision":"allow","approvedBy":"cfo",` put in front of the real members verifies like the original
// but reads otherwise to a person or a tool that takes the first member. So a line must round-trip exactly,
// and hold only the members docs/audit-format.md lists.
const HEADER_MEMBERS = new Set(['format', 'publicKey', 'treeHeads', 'checkpoints']);
const HEAD_MEMBERS = new Set(['treeSize', 'rootHash', 'at', 'publicKey', 'signature']);
const CHECKPOINT_MEMBERS = new Set(['seq', 'headHash', 'at', 'publicKey', 'signature']);
const ENTRY_MEMBERS = ['seq', 'leafIndex', 'at', 'type', 'actor', 'agentId', 'sessionId', 'action', 'decision', 'data', 'hash', 'hashVersion'];
const V3_MEMBERS = new Set([...ENTRY_MEMBERS, 'leaf']);
const CHAINED_MEMBERS = new Set([...ENTRY_MEMBERS, 'prevHash']);
const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const extraMember = (v, allowed) => Object.keys(v).find((k) => !allowed.has(k));

/** A line parsed, or `{problem}`: not JSON, or not exactly the JSON.stringify of what it parses to. */
function parseLine(line, n) {
  let v;
  try {
    v = JSON.parse(line);
  } catch {
    return { problem: `line ${n} is not an audit entry (not JSON)` };
  }
  if (!isObject(v)) return { problem: `line ${n} is not an audit entry` };
  if (JSON.stringify(v) !== line) return { problem: `line ${n} is not as the exporter writes it (duplicate members, spacing or escapes: edited)` };
  return { value: v };
}

/** Why the header is not one the exporter writes, or undefined. */
function headerProblem(header) {
  if (header.format !== 'airlock-audit-export/v2') return 'line 1 is not an airlock-audit-export/v2 header';
  const extra = extraMember(header, HEADER_MEMBERS);
  if (extra !== undefined) return `line 1 has a member the header does not have: ${JSON.stringify(extra)} (edited)`;
  if (!Array.isArray(header.treeHeads) || (header.checkpoints !== undefined && !Array.isArray(header.checkpoints))) return 'line 1 is not an airlock-audit-export/v2 header (treeHeads, checkpoints)';
  for (const [list, allowed, what] of [[header.treeHeads, HEAD_MEMBERS, 'tree head'], [header.checkpoints ?? [], CHECKPOINT_MEMBERS, 'checkpoint']]) {
    for (const item of list) {
      if (!isObject(item)) return `line 1 has a ${what} that is not an object (edited)`;
      const x = extraMember(item, allowed);
      if (x !== undefined) return `line 1 has a ${what} with a member it does not have: ${JSON.stringify(x)} (edited)`;
    }
  }
  return undefined;
}

/**
 * Verifies an export (its text): every entry, the tree, every signed head and legacy checkpoint against
 * `publicKey`. Then what they vouch for: with `publicKey`, every entry must be under a signed head or
 * checkpoint (`allowUnanchored` lifts that); `minTreeSize` and `expectRoot` (the root of the first
 * `minTreeSize` leaves) pin what an earlier export or head showed. Each of those failures has
 * `anchoring: {code, reason}`. A line that is not what the exporter writes (not JSON, not an object, not
 * exactly JSON.stringify's text, a member outside the documented set) fails like an edited entry.
 */
export function verifyExport(text, { publicKey, allowUnanchored = false, minTreeSize, expectRoot } = {}) {
  // Line numbers as in the file; blank lines skipped, a CRLF ending read as LF (as `airlock audit verify --file`).
  const lines = text.split('\n').map((l, i) => ({ n: i + 1, line: l.endsWith('\r') ? l.slice(0, -1) : l })).filter(({ line }) => line.trim());
  const tree = new MerkleFrontier();
  let prev;
  const fail = (seq, reason) => ({ ok: false, entries: tree.size, firstBad: { seq, reason } });
  if (lines.length === 0) return fail(1, 'the file is empty: no airlock-audit-export/v2 header');
  const first = parseLine(lines[0].line, lines[0].n);
  if (first.problem) return fail(1, first.problem.replace('an audit entry', 'an airlock-audit-export/v2 header'));
  const header = first.value;
  const hp = headerProblem(header);
  if (hp) return fail(1, hp);
  const key = publicKey ?? header.publicKey;
  const checkpoints = header.checkpoints ?? [];
  // What the signatures are over, recorded as the pass over the entries reaches it: the root at each size a
  // head (or the --expect-root pin) names, the chain hash of each entry a legacy checkpoint names.
  const rootAt = new Map(header.treeHeads.map((head) => [head.treeSize, undefined]));
  if (minTreeSize !== undefined) rootAt.set(minTreeSize, undefined);
  const chainHashAt = new Map(checkpoints.map((cp) => [cp.seq, undefined]));
  const addLeaf = (h) => {
    tree.push(h);
    if (rootAt.has(tree.size)) rootAt.set(tree.size, hex(tree.root()));
  };
  if (rootAt.has(0)) rootAt.set(0, hex(tree.root()));
  for (const { n, line } of lines.slice(1)) {
    const next = prev ? prev.seq + 1 : 1; // where an unreadable line is reported (the entry it stands for)
    const { value: e, problem } = parseLine(line, n);
    if (problem) return fail(next, problem);
    const version = e.hashVersion ?? 1;
    if (typeof e.seq !== 'number') return fail(next, `line ${n} is not an audit entry (no seq)`);
    if (version !== 1 && version !== 2 && version !== 3) return fail(e.seq, `unknown hash version ${version}`);
    const extra = extraMember(e, version === 3 ? V3_MEMBERS : CHAINED_MEMBERS);
    if (extra !== undefined) return fail(e.seq, `line ${n} has a member a version-${version} entry does not have: ${JSON.stringify(extra)} (edited)`);
    if (version === 3 && !Object.hasOwn(e, 'data')) return fail(e.seq, `line ${n}: a version-3 entry without data (edited)`);
    if (e.leafIndex !== tree.size) return fail(e.seq, `entry ${e.seq} is at leaf ${e.leafIndex}, expected leaf ${tree.size} (deleted or reordered)`);
    // seq orders chained entries only; a version-3 entry's place is its leaf index (docs/audit-format.md).
    if (prev && version !== 3 && e.seq <= prev.seq) return fail(e.seq, `entry ${e.seq} is out of order`);
    if (prev && version < prev.version) return fail(e.seq, 'hash version goes down (edited)');
    if (version === 3) {
      const { leaf, problem } = parseLeaf(e);
      if (problem) return fail(e.seq, problem);
      const mismatch = fieldsMatchLeaf(e, leaf);
      if (mismatch) return fail(e.seq, mismatch);
      const h = leafHash(e.leaf);
      if (hex(h) !== e.hash) return fail(e.seq, 'leaf does not match its hash (edited)');
      addLeaf(h);
    } else if (version === 1 || version === 2) {
      if (e.seq !== e.leafIndex + 1) return fail(e.seq, 'a chained entry must sit at leaf seq - 1');
      if (e.prevHash !== (prev ? prev.hash : '0'.repeat(64))) return fail(e.seq, 'prevHash does not match the previous entry');
      const h = chainHash(e, version);
      if (h === undefined || h !== e.hash) return fail(e.seq, 'entry does not match its chain hash (edited)');
      if (chainHashAt.has(e.seq)) chainHashAt.set(e.seq, h);
      addLeaf(leafHash(new Uint8Array([...utf8('airlock/audit-chain-leaf/v1\0'), ...unhex(e.hash)])));
    } else return fail(e.seq, `unknown hash version ${version}`);
    prev = { seq: e.seq, version, hash: e.hash };
  }
  // As `airlock audit verify --file`: after the entries, the first head that is not well formed, by its place
  // in the list (its values are not echoed), at the size it claims when that is a count.
  const malformed = (list, wellFormed, what) => {
    const i = list.findIndex((item) => !wellFormed(item));
    if (i < 0) return undefined;
    const size = list[i].treeSize ?? list[i].seq;
    return fail(Number.isSafeInteger(size) && size > 0 ? size : 1, `${what} ${i + 1} of ${list.length} is malformed (a whole size and time, 0 or more, and a 32-byte hash in lowercase hex)`);
  };
  const refused = malformed(checkpoints, isWellFormedCheckpoint, 'checkpoint') ?? malformed(header.treeHeads, isWellFormedTreeHead, 'tree head');
  if (refused) return refused;
  let anchored = 0;
  // A legacy checkpoint signs the chain hash of entry `seq` (= its leaf index + 1), so it vouches for the
  // first `seq` entries, as a tree head of that size would (docs/audit-format.md, Signed tree head).
  for (const cp of [...checkpoints].sort((a, b) => a.seq - b.seq)) {
    if (!verifyCheckpoint(cp, key)) return fail(cp.seq, `checkpoint at entry ${cp.seq} is not signed by the audit key`);
    if (cp.seq > tree.size) return fail(tree.size + 1, `log truncated: a signed checkpoint covers ${cp.seq} entries, ${tree.size} present`);
    const entryHash = chainHashAt.get(cp.seq);
    if (entryHash === undefined || entryHash !== cp.headHash) return fail(cp.seq, `entry ${cp.seq} does not match the signed checkpoint at it`);
    anchored = Math.max(anchored, cp.seq);
  }
  // An export carries every head ever signed and a file can repeat one: each distinct head is checked once.
  const distinctHeads = new Map(header.treeHeads.map((head) => [JSON.stringify([head.treeSize, head.rootHash, head.at, head.publicKey, head.signature]), head]));
  for (const head of [...distinctHeads.values()].sort((a, b) => a.treeSize - b.treeSize)) {
    if (!verifyTreeHead(head, key)) return fail(head.treeSize, `tree head of size ${head.treeSize} is not signed by the audit key`);
    if (head.treeSize > tree.size) return fail(tree.size + 1, `log truncated: a signed head covers ${head.treeSize} entries, ${tree.size} present`);
    const root = rootAt.get(head.treeSize);
    if (root === undefined || root !== head.rootHash) return fail(head.treeSize, `the tree does not match the signed tree head of size ${head.treeSize}`);
    anchored = Math.max(anchored, head.treeSize);
  }
  const result = { ok: true, entries: tree.size, rootHash: hex(tree.root()), treeHeads: header.treeHeads.length, checkpoints: checkpoints.length, unanchored: tree.size - anchored };
  // Every entry and head checked out. What follows is what the signatures vouch for: an entry's own hash
  // proves nothing against whoever rewrote the file, and a file cut back to an older head is still signed.
  const refuse = (code, reason) => ({ ...result, ok: false, anchoring: { code, reason } });
  if (minTreeSize !== undefined && anchored < minTreeSize) return refuse('audit_below_min_tree_size', `the signed tree heads cover ${anchored} entries, fewer than the ${minTreeSize} required (entries or heads removed since)`);
  if (expectRoot !== undefined) {
    if (minTreeSize === undefined) throw new Error('expectRoot needs minTreeSize: the tree size that root is of');
    const root = rootAt.get(minTreeSize); // reached: the heads cover at least minTreeSize entries (above)
    if (root !== expectRoot.toLowerCase()) return refuse('audit_root_mismatch', `the tree of the first ${minTreeSize} entries has root ${root}, not the expected ${expectRoot.toLowerCase()} (rewritten below that size, or another log)`);
  }
  if (publicKey !== undefined && !allowUnanchored) {
    if (header.treeHeads.length === 0 && checkpoints.length === 0) return refuse('audit_no_signed_head', `no signed tree head covers the log: none of its ${tree.size} entries is vouched for by the audit key`);
    if (result.unanchored > 0) return refuse('audit_unanchored', `the newest ${result.unanchored} entries (from leaf ${anchored}) are not under a signed tree head`);
  }
  return result;
}

/**
 * `at` as an entry gives it (ms, or the API's ISO 8601 string) in ms, or undefined unless the string is
 * exactly the one the API writes for that instant (toISOString): Date.parse also reads text around a date
 * ("(approved by the CFO) 2023-11-14 22:13:20.001Z") and a time with no zone, which the hash would not see.
 */
function atMs(at) {
  if (typeof at === 'number') return at;
  if (typeof at !== 'string') return undefined;
  const ms = Date.parse(at);
  return Number.isFinite(ms) && new Date(ms).toISOString() === at ? ms : undefined;
}

/** Version 1 and 2 entries: their chain hash recomputed from the fields as given (`at` in ms or ISO), or undefined. */
function chainHashOf(e, version) {
  const at = atMs(e.at);
  return at === undefined ? undefined : chainHash({ ...e, at }, version);
}

/**
 * Verifies a receipt response: the entry's fields against its leaf (version 3: the leaf parsed; versions 1
 * and 2: the chain hash recomputed), the leaf's hash, the inclusion proof, the head's signature. Only then
 * do the fields say what the log holds; whose request it was, the caller checks (requestHash, digest).
 */
export function verifyReceipt(r, publicKey) {
  // Anything malformed in the response (a proof that is not an array of hex strings, bad hex) does not verify.
  try {
    return receiptVerifies(r, publicKey);
  } catch {
    return false;
  }
}

function receiptVerifies(r, publicKey) {
  const { receipt, entry, treeHead, proof } = r;
  if (entry.seq !== receipt.auditSeq || entry.leafIndex !== receipt.leafIndex) return false;
  if (entry.hashVersion === 3) {
    const { leaf, problem } = typeof entry.leaf === 'string' ? parseLeaf(entry) : { problem: 'no leaf' };
    if (problem || fieldsMatchLeaf(entry, leaf)) return false;
  } else if (entry.hashVersion === 1 || entry.hashVersion === 2) {
    const h = typeof entry.prevHash === 'string' ? chainHashOf(entry, entry.hashVersion) : undefined;
    if (h === undefined || h !== entry.hash) return false;
  } else return false;
  const leaf = entry.hashVersion === 3 ? leafHash(entry.leaf) : leafHash(new Uint8Array([...utf8('airlock/audit-chain-leaf/v1\0'), ...unhex(entry.hash)]));
  if (hex(leaf) !== receipt.leafHash) return false;
  return verifyTreeHead(treeHead, publicKey) && verifyInclusion(receipt.leafIndex, treeHead.treeSize, leaf, proof.map(unhex), unhex(treeHead.rootHash));
}

/**
 * Verifies a consistency response: both heads signed, and the proof. `pins` ({fromSize, fromRoot, toSize,
 * toRoot}, each optional) are heads the auditor already holds: the response's heads must be those. Without
 * a `from` pin, a server keeping a split view answers with heads from the view it shows this auditor, and
 * the proof links them fine: it says nothing about any head the auditor saw before.
 */
export function verifyConsistencyResponse(c, publicKey, pins = {}) {
  try {
    const pinned = (head, size, root) => (size === undefined || head.treeSize === size) && (root === undefined || head.rootHash === root.toLowerCase());
    if (!pinned(c.from, pins.fromSize, pins.fromRoot) || !pinned(c.to, pins.toSize, pins.toRoot)) return false;
    return verifyTreeHead(c.from, publicKey) && verifyTreeHead(c.to, publicKey) && verifyConsistency(c.from.treeSize, c.to.treeSize, unhex(c.from.rootHash), unhex(c.to.rootHash), c.proof.map(unhex));
  } catch {
    return false;
  }
}

const sizeOption = (values, name, min) => {
  if (values[name] === undefined) return undefined;
  const n = Number(values[name]);
  if (!(Number.isSafeInteger(n) && n >= min)) throw new Error(`--${name}: an integer of at least ${min}`);
  return n;
};
const rootOption = (values, name) => {
  const root = values[name];
  if (root !== undefined && !/^[0-9a-fA-F]{64}$/.test(root)) throw new Error(`--${name}: a 32-byte root in hex`);
  return root;
};

/** A command line that cannot run: printed without a stack trace, exit 1 (never 0, 2 or 5). */
class UsageError extends Error {}
const USAGE = `usage:
  verify.mjs export.jsonl [--public-key HEX] [--allow-unanchored] [--min-tree-size N [--expect-root HEX]]
  verify.mjs receipt receipt.json --public-key HEX
  verify.mjs consistency proof.json --public-key HEX [--from-size N] --from-root HEX [--to-size N --to-root HEX]`;

function main(argv) {
  let values, positionals;
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        'public-key': { type: 'string' },
        'allow-unanchored': { type: 'boolean' },
        'min-tree-size': { type: 'string' },
        'expect-root': { type: 'string' },
        'from-size': { type: 'string' },
        'from-root': { type: 'string' },
        'to-size': { type: 'string' },
        'to-root': { type: 'string' },
      },
    }));
  } catch (e) {
    throw new UsageError(e.message);
  }
  const usageCheck = (f) => {
    try {
      return f();
    } catch (e) {
      throw new UsageError(e.message);
    }
  };
  const publicKey = values['public-key'];
  const file = positionals[0] === 'receipt' || positionals[0] === 'consistency' ? positionals[1] : positionals[0];
  if (file === undefined) throw new UsageError('no file given');
  if (positionals[0] === 'receipt') {
    if (!publicKey) throw new UsageError('--public-key is required');
    const ok = verifyReceipt(JSON.parse(readFileSync(file, 'utf8')), publicKey);
    console.log(ok ? 'OK' : 'FAILED');
    return ok ? 0 : 2;
  }
  if (positionals[0] === 'consistency') {
    if (!publicKey) throw new UsageError('--public-key is required');
    const pins = usageCheck(() => ({ fromSize: sizeOption(values, 'from-size', 0), fromRoot: rootOption(values, 'from-root'), toSize: sizeOption(values, 'to-size', 0), toRoot: rootOption(values, 'to-root') }));
    // A size alone pins nothing: every view has a head of that size. The root is what the auditor holds.
    if (pins.fromSize !== undefined && pins.fromRoot === undefined) throw new UsageError('--from-size needs --from-root HEX: the root of the head you hold (a size alone pins nothing across a split view)');
    if (pins.toSize !== undefined && pins.toRoot === undefined) throw new UsageError('--to-size needs --to-root HEX: the root of the head you got elsewhere (a size alone pins nothing across a split view)');
    const c = JSON.parse(readFileSync(file, 'utf8'));
    const ok = verifyConsistencyResponse(c, publicKey, pins);
    if (ok && pins.fromRoot === undefined) {
      console.error('note: the `from` head is not pinned (--from-root): this OK says the two heads in the response are signed and linked, not that they extend a head you hold (nothing across a split view)');
    }
    console.log(ok ? `OK: size ${c.to.treeSize} (root ${c.to.rootHash}) extends size ${c.from.treeSize} (root ${c.from.rootHash})` : 'FAILED');
    return ok ? 0 : 2;
  }
  const minTreeSize = usageCheck(() => sizeOption(values, 'min-tree-size', 1));
  const expectRoot = usageCheck(() => rootOption(values, 'expect-root'));
  if (expectRoot !== undefined && minTreeSize === undefined) throw new UsageError('--expect-root needs --min-tree-size N: the tree size that root is of');
  if (!publicKey) console.error('note: checking heads against the key in the export itself; pass --public-key to check against the published key');
  const r = verifyExport(readFileSync(file, 'utf8'), { publicKey, allowUnanchored: !!values['allow-unanchored'], minTreeSize, expectRoot });
  if (r.ok) console.log(`OK: ${r.entries} entries, ${r.treeHeads} signed tree heads${r.checkpoints ? ` and ${r.checkpoints} legacy checkpoints` : ''}, root ${r.rootHash}${r.unanchored ? ` (${r.unanchored} newest entries not under a signed head)` : ''}`);
  else if (r.anchoring) console.log(`FAILED [${r.anchoring.code}]: ${r.anchoring.reason}`);
  else console.log(`FAILED at entry ${r.firstBad.seq}: ${r.firstBad.reason}`);
  return r.ok ? 0 : r.anchoring ? 5 : 2;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  try {
    process.exitCode = main(process.argv.slice(2));
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`${e.message}\n${USAGE}`);
      process.exitCode = 1;
    } else {
      // Whatever the input made this verifier trip over (an unreadable file, a response that is not JSON,
      // a value of the wrong type) does not verify: never a stack trace and exit 1.
      console.log(`FAILED: ${e instanceof Error ? e.message : String(e)}`);
      process.exitCode = 2;
    }
  }
}
