import { createHash } from 'node:crypto';
import { hexToBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import { canonicalJson, legacyCanonicalJson } from '../canonical-json.ts';
import { leafHash, type Hash } from './merkle.ts';
import type { AuditCheckpoint, AuditEntry, AuditEntryInput, SignedTreeHead } from './types.ts';

export const GENESIS_HASH = '0'.repeat(64);
/** The version every new entry is written with: a Merkle leaf (see `auditLeaf`). */
export const AUDIT_HASH_VERSION = 3 as const;
/** The chain versions: entries written before the Merkle tree, still verified as a chain. */
export type ChainHashVersion = 1 | 2;
// Domain separation: an entry hash can never be confused with a checkpoint digest or any other sha256
// use, nor one hash version with another (a version-2 entry relabelled 1 cannot match its hash).
const ENTRY_TAGS: Record<ChainHashVersion, Uint8Array> = {
  1: utf8ToBytes('airlock/audit-entry/v1\u0000'),
  2: utf8ToBytes('airlock/audit-entry/v2\u0000'),
};
const CHECKPOINT_TAG = utf8ToBytes('airlock/audit-checkpoint/v1\u0000');
const TREE_HEAD_TAG = utf8ToBytes('airlock/audit-tree-head/v1\u0000');
/** A chained (version 1 or 2) entry's Merkle leaf is this tag and its 32-byte chain hash: never valid JSON, so never a version-3 leaf. */
const CHAIN_LEAF_TAG = utf8ToBytes('airlock/audit-chain-leaf/v1\u0000');

/**
 * hash_n = sha256(tag_v || hash_{n-1} || canon_v(entry_n without its hash)), where version 2 (every new
 * entry) is tag "airlock/audit-entry/v2\0" with RFC 8785 canonical JSON, and version 1 (entries written
 * before) is tag "airlock/audit-entry/v1\0" with `legacyCanonicalJson`.
 */
export function hashAuditEntry(prevHash: string, seq: number, entry: AuditEntryInput, version: ChainHashVersion = 2): string {
  const canonical = version === 1 ? legacyCanonicalJson : canonicalJson;
  const body = canonical({
    seq,
    at: entry.at,
    type: entry.type,
    actor: entry.actor,
    agentId: entry.agentId,
    sessionId: entry.sessionId,
    action: entry.action,
    decision: entry.decision,
    data: entry.data,
  });
  // node:crypto's SHA-256 (native, ~3x noble's here): it runs once per signing request and once per
  // entry when a million-entry log is verified. Same function, so chains hash identically either way.
  return createHash('sha256').update(ENTRY_TAGS[version]).update(hexToBytes(prevHash)).update(body).digest('hex');
}

export function checkpointDigest(cp: Pick<AuditCheckpoint, 'seq' | 'headHash' | 'at'>): Uint8Array {
  return new Uint8Array(createHash('sha256').update(CHECKPOINT_TAG).update(canonicalJson({ seq: cp.seq, headHash: cp.headHash, at: cp.at })).digest());
}


const HEX32 = /^[0-9a-f]{64}$/;
const isCount = (n: unknown): n is number => Number.isSafeInteger(n) && (n as number) >= 0;

/**
 * A tree head the digest below can encode as what was signed: whole sizes and times that fit a uint64 exactly,
 * a 32-byte root in lowercase hex (as the signer writes it). A head read from an export or a store row may be
 * anything; one that is not this vouches for nothing.
 */
export function isWellFormedTreeHead(head: Pick<SignedTreeHead, 'treeSize' | 'rootHash' | 'at'>): boolean {
  return isCount(head.treeSize) && isCount(head.at) && typeof head.rootHash === 'string' && HEX32.test(head.rootHash);
}

/** The same for a legacy checkpoint: a count of entries, a time, a 32-byte chain hash in lowercase hex. */
export function isWellFormedCheckpoint(cp: Pick<AuditCheckpoint, 'seq' | 'headHash' | 'at'>): boolean {
  return isCount(cp.seq) && isCount(cp.at) && typeof cp.headHash === 'string' && HEX32.test(cp.headHash);
}

/** Digest a signed tree head's signature covers: tag || uint64be(treeSize) || uint64be(at) || rootHash (32 bytes). */
export function treeHeadDigest(head: Pick<SignedTreeHead, 'treeSize' | 'rootHash' | 'at'>): Uint8Array {
  // setBigUint64 wraps a negative or too large value and hexToBytes takes a root of any length: the digest
  // of such a head would be another head's. Callers holding untrusted heads check isWellFormedTreeHead first.
  if (!isWellFormedTreeHead(head)) throw new TypeError('treeHeadDigest: a tree head needs a whole size and time (0 or more) and a 32-byte root in lowercase hex');
  const numbers = new DataView(new ArrayBuffer(16));
  numbers.setBigUint64(0, BigInt(head.treeSize));
  numbers.setBigUint64(8, BigInt(head.at));
  return new Uint8Array(createHash('sha256').update(TREE_HEAD_TAG).update(new Uint8Array(numbers.buffer)).update(hexToBytes(head.rootHash)).digest());
}

// A version-3 leaf is the RFC 8785 canonical JSON of
//   {seq, at, type, actor, agentId?, sessionId?, action?, decision?, data}
// Its members sort as action, actor, agentId, at, data, decision, seq, sessionId, type, so the leaf is
// prefix || canonical(data) || suffix, where prefix and suffix come from the entry's other fields alone.
// The writer builds it that way (data is canonicalised once), and the verifier checks a row's columns
// against its stored leaf by comparing the prefix and suffix, with an object between them
// (`leafMatchesFields`): no parse, no re-serialisation.
// (JSON.stringify of a string or a safe integer is exactly its RFC 8785 form.)
/** The columns a version-3 leaf records besides its data. */
export type AuditLeafFields = Pick<AuditEntry, 'seq' | 'at' | 'type' | 'actor' | 'agentId' | 'sessionId' | 'action' | 'decision'>;

export function auditLeafPrefix(e: AuditLeafFields): string {
  let s = '{';
  if (e.action !== undefined) s += `"action":${JSON.stringify(e.action)},`;
  s += `"actor":${JSON.stringify(e.actor)},`;
  if (e.agentId !== undefined) s += `"agentId":${JSON.stringify(e.agentId)},`;
  return `${s}"at":${JSON.stringify(e.at)},"data":`;
}

export function auditLeafSuffix(e: AuditLeafFields): string {
  let s = '';
  if (e.decision !== undefined) s += `,"decision":${JSON.stringify(e.decision)}`;
  s += `,"seq":${JSON.stringify(e.seq)}`;
  if (e.sessionId !== undefined) s += `,"sessionId":${JSON.stringify(e.sessionId)}`;
  return `${s},"type":${JSON.stringify(e.type)}}`;
}

/** The version-3 leaf of an entry whose data is already canonical JSON (`dataJson`). */
export function auditLeaf(e: AuditLeafFields, dataJson: string): string {
  return auditLeafPrefix(e) + dataJson + auditLeafSuffix(e);
}

/** The data member of a version-3 leaf, as JSON text (the leaf without its prefix and suffix). */
export function auditLeafData(e: AuditLeafFields & { leaf: string }): string {
  return e.leaf.slice(auditLeafPrefix(e).length, e.leaf.length - auditLeafSuffix(e).length);
}

/** The Merkle leaf of a chained (version 1 or 2) entry: CHAIN_LEAF_TAG || its chain hash. */
export function chainLeaf(chainHash: string): Uint8Array {
  const out = new Uint8Array(CHAIN_LEAF_TAG.length + 32);
  out.set(CHAIN_LEAF_TAG);
  out.set(hexToBytes(chainHash), CHAIN_LEAF_TAG.length);
  return out;
}

/** The RFC 9162 leaf hash of a stored entry (its stored hash, not recomputed from its content). */
export function storedLeafHash(e: Pick<AuditEntry, 'hash' | 'hashVersion'>): Hash {
  return (e.hashVersion ?? 1) === 3 ? hexToBytes(e.hash) : leafHash(chainLeaf(e.hash));
}
