// Audit receipts for agents: every signature response carries `receipt {auditSeq, leafIndex, leafHash}`;
// `fetchAuditReceipt` fetches the entry's inclusion proof against the latest signed tree head and checks it
// here (RFC 9162 2.1.3.2, and the head's BIP-340 signature against the audit key the caller holds), so an
// agent can prove its signature was recorded without trusting the server's word. Format: docs/audit-format.md.
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
  /** The entry as recorded (its `leaf`: the exact bytes that were hashed). */
  entry: { seq: number; leafIndex: number; hashVersion: number; leaf?: string; hash: string; [k: string]: unknown };
  treeHead: SignedTreeHead;
  proof: string[];
}

const nodeHash = (l: Uint8Array, r: Uint8Array) => sha256(concatBytes(Uint8Array.of(1), l, r));
const CHAIN_LEAF_TAG = utf8ToBytes('airlock/audit-chain-leaf/v1\0');

function treeHeadDigest(h: SignedTreeHead): Uint8Array {
  const n = new DataView(new ArrayBuffer(16));
  n.setBigUint64(0, BigInt(h.treeSize));
  n.setBigUint64(8, BigInt(h.at));
  return sha256(concatBytes(utf8ToBytes('airlock/audit-tree-head/v1\0'), new Uint8Array(n.buffer), hexToBytes(h.rootHash)));
}

/** RFC 9162 2.1.3.2. */
export function verifyInclusionProof(index: number, size: number, leafHash: Uint8Array, proof: Uint8Array[], root: Uint8Array): boolean {
  if (!(index >= 0 && index < size)) return false;
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

/** Checks a receipt response against the audit public key (x-only, hex) the caller trusts. */
export function verifyAuditReceipt(r: VerifiedAuditReceipt, auditPublicKey: string, expected?: AuditReceipt): boolean {
  const { receipt, entry, treeHead, proof } = r;
  if (expected && (expected.auditSeq !== receipt.auditSeq || expected.leafIndex !== receipt.leafIndex || expected.leafHash !== receipt.leafHash)) return false;
  const leaf = entry.hashVersion === 3 ? utf8ToBytes(entry.leaf ?? '') : concatBytes(CHAIN_LEAF_TAG, hexToBytes(entry.hash));
  const leafHash = sha256(concatBytes(Uint8Array.of(0), leaf));
  if (bytesToHex(leafHash) !== receipt.leafHash || entry.seq !== receipt.auditSeq || entry.leafIndex !== receipt.leafIndex) return false;
  if (treeHead.publicKey !== auditPublicKey) return false;
  let signed = false;
  try {
    signed = schnorr.verify(hexToBytes(treeHead.signature), treeHeadDigest(treeHead), hexToBytes(auditPublicKey));
  } catch {
    signed = false;
  }
  return signed && verifyInclusionProof(receipt.leafIndex, treeHead.treeSize, leafHash, proof.map(hexToBytes), hexToBytes(treeHead.rootHash));
}

/**
 * Fetches the inclusion proof of audit entry `seq` (an agent: its own entries only) and verifies it.
 * Throws `AirlockApiError` with code `receipt_invalid` if it does not verify, and the server's error (409
 * `conflict`) while no signed tree head covers the entry yet.
 */
export async function fetchAuditReceipt(options: AirlockHttpOptions & { auditPublicKey: string }, seq: number, expected?: AuditReceipt): Promise<VerifiedAuditReceipt> {
  const { body } = await createAirlockHttp(options).request<VerifiedAuditReceipt>('GET', `/v1/audit/receipts/${seq}`);
  if (!verifyAuditReceipt(body, options.auditPublicKey, expected)) {
    throw new AirlockApiError(200, 'receipt_invalid', `The inclusion proof of audit entry ${seq} does not verify against the audit key.`);
  }
  return body;
}
