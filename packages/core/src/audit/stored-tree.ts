// The audit log's Merkle tree as the store keeps it: every complete subtree built so far
// (`audit_tree_nodes`). Roots and proofs read O(log n) nodes; the builder extends the nodes from verified
// leaves. The nodes are a cache of a function of the leaves: anything read from them is only trusted once
// a proof checks out against a signed root.
import { bytesToHex } from '@noble/hashes/utils.js';
import { AirlockError } from '../errors.ts';
import type { Store, TreeNode } from '../ports/store.ts';
import { storedLeafHash } from './hash.ts';
import { LeafRangeVerifier, type AuditProblem, type LeafRangeStart } from './log-verifier.ts';
import { consistencyProof, inclusionProof, rangeNodes, rootAt, verifyConsistency, verifyInclusion, type Hash, type NodeSource } from './merkle.ts';
import type { AuditReceipt, AuditEntry, SignedTreeHead } from './types.ts';

/**
 * Leaves verified per step before the event loop gets a turn. The daemon extends its verified tree on every
 * checkpoint tick, in the process that serves signing requests: one 5,000-leaf step held the loop for 40-60 ms
 * (the main source of the HTTP p99), a 512-leaf step for a few.
 */
const VERIFY_STEP = 512;
const yieldToEventLoop = () => new Promise<void>((resolve) => (globalThis.setImmediate ?? setTimeout)(resolve));

export function storeNodeSource(store: Store): NodeSource {
  return { readNodes: (ids) => store.readTreeNodes(ids) };
}

export function receiptOf(entry: Pick<AuditEntry, 'seq' | 'leafIndex' | 'hash' | 'hashVersion'>): AuditReceipt {
  return { auditSeq: entry.seq, leafIndex: entry.leafIndex ?? entry.seq - 1, leafHash: bytesToHex(storedLeafHash(entry)) };
}

/** The receipt of the entry at `seq` (for a replayed signature or an approval: its original entry). */
export async function receiptForSeq(store: Store, seq: number): Promise<AuditReceipt> {
  const [entry] = await store.readAudit(seq, 1);
  if (!entry || entry.seq !== seq) throw new AirlockError('internal', `audit entry ${seq} is missing`);
  return receiptOf(entry);
}

/** A verified point of the tree: its size, root and frontier, and the entry before it. */
export interface VerifiedTree {
  size: number;
  root: Hash;
  frontier: Hash[];
  previous?: LeafRangeStart['previous'];
}

/**
 * The frontier of the stored tree at `size`, if it folds to `root` (a signed root pins it). Also the
 * entry at leaf size-1, proven in that root by an inclusion proof, as the point later entries continue.
 */
export async function pinnedFrontier(store: Store, size: number, root: Hash): Promise<{ tree?: VerifiedTree; problem?: string }> {
  if (size === 0) return { tree: { size: 0, root, frontier: [] } };
  const source = storeNodeSource(store);
  const frontier = await store.readTreeNodes(rangeNodes(0, size));
  if (frontier.some((h) => h === undefined)) return { problem: `the stored tree does not reach the anchored size ${size}` };
  let computed: Hash;
  try {
    computed = await rootAt(source, size);
  } catch {
    return { problem: `the stored tree does not reach the anchored size ${size}` };
  }
  if (bytesToHex(computed) !== bytesToHex(root)) return { problem: `the stored tree at size ${size} does not match the anchored tree head` };
  const [last] = await store.readAuditLeaves(size - 1, 1);
  if (!last || last.leafIndex !== size - 1) return { problem: `log truncated: the anchored entry at leaf ${size - 1} is missing` };
  const proof = await inclusionProof(source, size - 1, size).catch(() => undefined);
  if (!proof || !verifyInclusion(size - 1, size, storedLeafHash(last), proof, root)) {
    return { problem: `entry ${last.seq} does not match the anchored tree head` };
  }
  return { tree: { size, root, frontier: frontier as Hash[], previous: { seq: last.seq, version: last.hashVersion ?? 1, hash: last.hash } } };
}

/**
 * Verifies the leaves after `from` up to `toSize` (each entry on its own, and its order), stores the tree
 * nodes they complete that the store does not have yet, and returns the tree at `toSize`. With
 * `chainAt`/`rootsAt`, records legacy chain hashes and roots on the way (for a legacy anchor).
 */
export async function extendVerifiedTree(
  store: Store,
  from: VerifiedTree,
  toSize: number,
  record: { chainAt?: number[]; rootsAt?: number[] } = {},
): Promise<{ tree?: VerifiedTree; problem?: AuditProblem; chainAt: Map<number, string>; roots: Map<number, Hash> }> {
  const built = await store.builtTreeSize();
  let pending: TreeNode[] = [];
  const flush = async () => {
    if (pending.length) await store.appendTreeNodes(pending);
    pending = [];
  };
  const verifier = new LeafRangeVerifier({
    start: from.size,
    frontier: from.frontier,
    ...(from.previous ? { previous: from.previous } : {}),
    ...record,
    // Only nodes that cover a leaf the stored tree does not have yet are new.
    onNode: (id, hash) => {
      if ((id.index + 1) * 2 ** id.level > built) pending.push({ ...id, hash });
    },
  });
  for (let next = from.size; next < toSize; ) {
    if (next > from.size) await yieldToEventLoop();
    const page = await store.readAuditLeaves(next, Math.min(VERIFY_STEP, toSize - next));
    if (page.length === 0) break;
    for (const e of page) if ((e.leafIndex ?? Infinity) < toSize && !verifier.push(e)) break;
    const r = verifier.result();
    if (r.firstBad) return { problem: r.firstBad, chainAt: r.chainAt, roots: r.roots };
    if (pending.length >= VERIFY_STEP) await flush();
    if (verifier.size === next) break;
    next = verifier.size;
  }
  const r = verifier.result();
  if (r.end < toSize) {
    const seq = (r.last?.seq ?? from.previous?.seq ?? 0) + 1;
    return { problem: { seq, reason: `entry ${seq} (leaf ${r.end}) is missing` }, chainAt: r.chainAt, roots: r.roots };
  }
  await flush();
  return {
    tree: { size: toSize, root: r.root, frontier: r.frontier, ...(r.last ? { previous: r.last } : from.previous ? { previous: from.previous } : {}) },
    chainAt: r.chainAt,
    roots: r.roots,
  };
}

/** Does the stored tree prove that (toSize, toRoot) extends (fromSize, fromRoot)? */
export async function storedTreeIsConsistent(store: Store, fromSize: number, fromRoot: Hash, toSize: number, toRoot: Hash): Promise<boolean> {
  if (fromSize > toSize) return false;
  try {
    const proof = await consistencyProof(storeNodeSource(store), fromSize, toSize);
    return verifyConsistency(fromSize, toSize, fromRoot, toRoot, proof);
  } catch {
    return false;
  }
}

/** An inclusion proof of one entry against a signed head, for receipts. */
export interface AuditInclusion {
  receipt: AuditReceipt;
  treeHead: SignedTreeHead;
  proof: string[];
}

export async function inclusionFor(store: Store, entry: AuditEntry, head: SignedTreeHead): Promise<AuditInclusion> {
  const receipt = receiptOf(entry);
  const proof = await inclusionProof(storeNodeSource(store), receipt.leafIndex, head.treeSize);
  return { receipt, treeHead: head, proof: proof.map(bytesToHex) };
}

export async function consistencyBetween(store: Store, from: SignedTreeHead, to: SignedTreeHead): Promise<string[]> {
  return (await consistencyProof(storeNodeSource(store), from.treeSize, to.treeSize)).map(bytesToHex);
}

