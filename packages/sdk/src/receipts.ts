// Audit receipts for agents: every signature response carries `receipt {auditSeq, leafIndex, leafHash}`;
// `fetchAuditReceipt` fetches the entry's inclusion proof against the latest signed tree head and checks it
// here (RFC 9162 2.1.3.2, and the head's BIP-340 signature against the audit key the caller holds), so an
// agent can prove its signature was recorded without trusting the server's word. The proof is about the
// leaf's bytes only, so the entry's fields are checked against the leaf too: otherwise a server could show
// one entry's proof under another entry's seq, decision or data. Format: docs/audit-format.md.
import { schnorr } from '@noble/curves/secp256k1.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, concatBytes, hexToBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import { AirlockApiError, createAirlockHttp, type AirlockHttpOptions } from './http.ts';

export interface AuditReceipt {
  auditSeq: number;
  leafIndex: number;
  leafHash: string;
}

export interface SignedTreeHead {
  treeSize: number;
  rootHash: string;
  at: number;
  publicKey: string;
  signature: string;
}

export interface VerifiedAuditReceipt {
  receipt: AuditReceipt;
  /**
   * The entry as recorded (its `leaf`: the exact bytes that were hashed). Once verified, its `seq`, `at`,
   * `type`, `actor`, `agentId`, `sessionId`, `action`, `decision` and `data` are the leaf's; other members
   * are not covered by the proof.
   */
  entry: { seq: number; leafIndex: number; hashVersion: number; leaf?: string; hash: string; prevHash?: string; [k: string]: unknown };
  treeHead: SignedTreeHead;
  proof: string[];
}

const nodeHash = (l: Uint8Array, r: Uint8Array) => sha256(concatBytes(Uint8Array.of(1), l, r));
const CHAIN_LEAF_TAG = utf8ToBytes('airlock/audit-chain-leaf/v1\0');

// A head as the signer writes it (docs/audit-format.md, Signed tree head): whole sizes and times, 0 or more, that are
// safe integers, and a root of 64 lowercase hex digits. BigInt() also reads "1733...", "0x..." and 2^64 + at, and
// setBigUint64 wraps what does not fit, so a head written otherwise carried the signature of the head it imitates,
// with another `at` (found by review). As tools/audit-verifier/verify.mjs.
const isCount = (n: unknown): n is number => Number.isSafeInteger(n) && (n as number) >= 0;
const isWellFormedTreeHead = (h: SignedTreeHead): boolean => isObject(h) && isCount(h.treeSize) && isCount(h.at) && typeof h.rootHash === 'string' && /^[0-9a-f]{64}$/.test(h.rootHash);

function treeHeadDigest(h: SignedTreeHead): Uint8Array {
  if (!isWellFormedTreeHead(h)) throw new TypeError('a tree head needs a whole size and time (0 or more) and a 32-byte root in lowercase hex');
  const n = new DataView(new ArrayBuffer(16));
  n.setBigUint64(0, BigInt(h.treeSize));
  n.setBigUint64(8, BigInt(h.at));
  return sha256(concatBytes(utf8ToBytes('airlock/audit-tree-head/v1\0'), new Uint8Array(n.buffer), hexToBytes(h.rootHash)));
}

/** RFC 9162 2.1.3.2. */
export function verifyInclusionProof(index: number, size: number, leafHash: Uint8Array, proof: Uint8Array[], root: Uint8Array): boolean {
  // Whole numbers only: the halving below would take leaf 4.5 for leaf 4 and prove it.
  if (!(Number.isSafeInteger(index) && Number.isSafeInteger(size) && index >= 0 && index < size)) return false;
  let fn = index;
  let sn = size - 1;
  let r = leafHash;
  for (const p of proof) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      if (fn % 2 === 0) while (fn % 2 === 0 && fn !== 0) (fn = Math.floor(fn / 2)), (sn = Math.floor(sn / 2));
    } else r = nodeHash(r, p);
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && bytesToHex(r) === bytesToHex(root);
}

// The members of a leaf besides `data`, in the order of docs/audit-format.md.
const LEAF_FIELDS = ['seq', 'at', 'type', 'actor', 'agentId', 'sessionId', 'action', 'decision'] as const;

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * RFC 8785 (JCS) for JSON values as JSON.parse gives them: members sorted by UTF-16 code units, absent ones
 * omitted. Throws on a non-finite number (JSON.parse reads 1e999 as Infinity, which JSON.stringify writes
 * as null): it has no canonical form, and writing it as null would let it stand for a null that was hashed.
 */
function canonicalJson(v: unknown): string {
  if (typeof v === 'number' && !Number.isFinite(v)) throw new TypeError('a non-finite number has no canonical JSON');
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o).filter((k) => o[k] !== undefined).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`).join(',')}}`;
}

/**
 * The form version-1 entries were hashed with: members sorted by JavaScript's default sort, `__proto__`
 * dropped. So an entry with a `__proto__` member (the old writer never stored one) or a non-finite number
 * (written as null) would hash like one without: both throw, as the server's verifier refuses them.
 */
function legacyJson(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => {
    if (typeof x === 'number' && !Number.isFinite(x)) throw new TypeError('a non-finite number has no canonical JSON');
    if (!isObject(x)) return x;
    if (Object.hasOwn(x, '__proto__')) throw new TypeError('a __proto__ member is not in any version-1 entry');
    const sorted: Record<string, unknown> = {};
    for (const k of Object.keys(x).sort()) sorted[k] = x[k]; // assignment drops `__proto__`, as the old writer did
    return sorted;
  });
}

/** `at` as the entry gives it (ms, or the API's ISO string) in ms, if it names exactly that instant. */
function atMs(at: unknown): number | undefined {
  if (typeof at === 'number') return at;
  if (typeof at !== 'string') return undefined;
  const ms = Date.parse(at);
  return Number.isFinite(ms) && new Date(ms).toISOString() === at ? ms : undefined;
}

/**
 * Does the entry say what its leaf says? Version 3: the leaf parsed (it must be canonical, so the parsed
 * object is exactly the hashed bytes) and every field compared, absent ones too. Versions 1 and 2: the
 * chain hash recomputed from the fields (its leaf is that hash). Throws on content with no canonical form.
 */
function entryMatchesLeaf(entry: VerifiedAuditReceipt['entry']): boolean {
  if (!isObject(entry.data)) return false;
  if (entry.hashVersion === 3) {
    if (typeof entry.leaf !== 'string') return false;
    let leaf: unknown;
    try {
      leaf = JSON.parse(entry.leaf);
    } catch {
      return false;
    }
    if (!isObject(leaf) || canonicalJson(leaf) !== entry.leaf) return false;
    for (const f of LEAF_FIELDS) if ((f === 'at' ? atMs(entry.at) : entry[f]) !== leaf[f]) return false;
    return isObject(leaf.data) && canonicalJson(entry.data) === canonicalJson(leaf.data);
  }
  if (entry.hashVersion !== 1 && entry.hashVersion !== 2) return false;
  const at = atMs(entry.at);
  if (at === undefined || typeof entry.prevHash !== 'string' || !/^[0-9a-f]{64}$/.test(entry.prevHash)) return false;
  const body = { seq: entry.seq, at, type: entry.type, actor: entry.actor, agentId: entry.agentId, sessionId: entry.sessionId, action: entry.action, decision: entry.decision, data: entry.data };
  const text = entry.hashVersion === 1 ? legacyJson(body) : canonicalJson(body);
  const chainHash = sha256(concatBytes(utf8ToBytes(`airlock/audit-entry/v${entry.hashVersion}\0`), hexToBytes(entry.prevHash), utf8ToBytes(text)));
  return bytesToHex(chainHash) === entry.hash;
}

/**
 * Checks a receipt response against the audit public key (x-only, hex) the caller trusts: the entry's
 * fields against its leaf, the leaf against `receipt.leafHash`, the inclusion proof against the signed
 * tree head. `expected`: the receipt the signature response carried (then the proof is of that entry).
 *
 * A true result says the entry, as shown, is in the log the audit key signed. It does not say the entry is
 * the caller's request: compare `entry.data.requestHash` and `entry.data.digest` (the signing hash) with
 * your own request and signature, or pass `expected`.
 */
export function verifyAuditReceipt(r: VerifiedAuditReceipt, auditPublicKey: string, expected?: AuditReceipt): boolean {
  // The response is the server's word: anything malformed in it (a proof that is not an array of hex
  // strings, bad hex anywhere, content with no canonical form) is a receipt that does not verify, never an
  // exception. `hexToBytes` refuses anything but hex, so decoding is the shape check.
  try {
    return receiptVerifies(r, auditPublicKey, expected);
  } catch {
    return false;
  }
}

function receiptVerifies(r: VerifiedAuditReceipt, auditPublicKey: string, expected?: AuditReceipt): boolean {
  const { receipt, entry, treeHead, proof } = r;
  if (expected && (expected.auditSeq !== receipt.auditSeq || expected.leafIndex !== receipt.leafIndex || expected.leafHash !== receipt.leafHash)) return false;
  // Every field is the leaf's before the leaf's proof is taken for the entry.
  if (!entryMatchesLeaf(entry)) return false;
  const leaf = entry.hashVersion === 3 ? utf8ToBytes(entry.leaf ?? '') : concatBytes(CHAIN_LEAF_TAG, hexToBytes(entry.hash));
  const leafHash = sha256(concatBytes(Uint8Array.of(0), leaf));
  if (bytesToHex(leafHash) !== receipt.leafHash || entry.seq !== receipt.auditSeq || entry.leafIndex !== receipt.leafIndex) return false;
  if (treeHead.publicKey !== auditPublicKey) return false;
  const signed = schnorr.verify(hexToBytes(treeHead.signature), treeHeadDigest(treeHead), hexToBytes(auditPublicKey));
  return signed && verifyInclusionProof(receipt.leafIndex, treeHead.treeSize, leafHash, proof.map(hexToBytes), hexToBytes(treeHead.rootHash));
}

/**
 * Fetches the inclusion proof of audit entry `seq` (an agent: its own entries only) and verifies it.
 * Throws `AirlockApiError` with code `receipt_invalid` if it does not verify, and the server's error (409
 * `conflict`) while no signed tree head covers the entry yet.
 */
export async function fetchAuditReceipt(options: AirlockHttpOptions & { auditPublicKey: string }, seq: number, expected?: AuditReceipt): Promise<VerifiedAuditReceipt> {
  const { body } = await createAirlockHttp(options).request<VerifiedAuditReceipt>('GET', `/v1/audit/receipts/${seq}`);
  // The receipt must be the one asked for: a valid receipt of another entry (a server hiding a dropped entry
  // answers with its neighbour's) verified and was returned as entry `seq`'s (found by review).
  if (body?.receipt?.auditSeq !== seq || body?.entry?.seq !== seq || !verifyAuditReceipt(body, options.auditPublicKey, expected)) {
    throw new AirlockApiError(200, 'receipt_invalid', `The inclusion proof of audit entry ${seq} does not verify against the audit key.`);
  }
  return body;
}
