// The Merkle tree of RFC 9162 (Certificate Transparency v2) section 2.1, written from the RFC:
//   MTH({})       = SHA-256()
//   MTH({d0})     = SHA-256(0x00 || d0)                         (leaf hash)
//   MTH(D[n])     = SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n])) (node hash), k the largest power of 2 < n
// plus the inclusion and consistency proofs (2.1.3, 2.1.4) and their verification algorithms
// (2.1.3.2, 2.1.4.2). Proofs are produced from stored complete subtrees (`NodeSource`), so a root, an
// inclusion proof and a consistency proof cost O(log n) node reads, never a scan of the log.
import { hash } from 'node:crypto';

export type Hash = Uint8Array;

// node:crypto's one-shot `hash` (no Hash object per call): verify hashes every leaf and about as many
// nodes, so the per-call overhead is most of the cost for entries of a few hundred bytes. Returns Buffers
// (Uint8Arrays whose toString('hex') is native).
export function leafHash(leaf: Uint8Array | string): Buffer {
  // 0x00 || leaf: for a string leaf, U+0000 prepended encodes as that one byte in UTF-8.
  return typeof leaf === 'string' ? hash('sha256', `\u0000${leaf}`, 'buffer') : hash('sha256', Buffer.concat([Buffer.of(0), leaf]), 'buffer');
}

// leafHashHex writes 0x00 || the leaf's UTF-8 bytes into one reusable buffer and hashes a view of it
// cached per length: no string concatenation and no Buffer per call, about a sixth of the cost of a
// leaf hash. (The same bytes as hashing the string: both encode UTF-8 with the same replacement.)
const LEAF_INPUT = Buffer.alloc(64 * 1024);
const leafInputViews: Buffer[] = [];

/** The leaf hash of a stored (version-3) leaf as lowercase hex, how entries store it. */
export function leafHashHex(leaf: string): string {
  // At most 3 UTF-8 bytes per UTF-16 unit: a leaf that might not fit takes the plain path.
  if (3 * leaf.length >= LEAF_INPUT.length) return hash('sha256', `\u0000${leaf}`, 'hex');
  const length = 1 + LEAF_INPUT.write(leaf, 1, 'utf8');
  return hash('sha256', (leafInputViews[length] ??= LEAF_INPUT.subarray(0, length)), 'hex');
}

export function nodeHash(left: Hash, right: Hash): Buffer {
  const b = Buffer.allocUnsafe(1 + left.length + right.length);
  b[0] = 1;
  b.set(left, 1);
  b.set(right, 1 + left.length);
  return hash('sha256', b, 'buffer');
}

export const EMPTY_ROOT: Hash = hash('sha256', new Uint8Array(0), 'buffer');

/** The largest power of two strictly below n (n >= 2). */
function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/**
 * MTH over already-hashed subtrees laid left to right: every element but the last is a complete subtree
 * of the same size, the last one complete or the right edge. This is how ranges of leaves combine into
 * the root (chunk roots from worker threads, or the complete subtrees of a range read from the store).
 */
export function rootOfSubtrees(hashes: readonly Hash[]): Hash {
  if (hashes.length === 0) return EMPTY_ROOT;
  const mth = (from: number, to: number): Hash => {
    if (to - from === 1) return hashes[from]!;
    const k = splitPoint(to - from);
    return nodeHash(mth(from, from + k), mth(from + k, to));
  };
  return mth(0, hashes.length);
}

/** MTH of a list of leaf hashes (the reference computation the stored tree must agree with). */
export function rootOfLeafHashes(leafHashes: readonly Hash[]): Hash {
  return rootOfSubtrees(leafHashes);
}

/** A complete subtree: the 2^level leaves starting at index * 2^level. */
export interface NodeId {
  level: number;
  index: number;
}

/**
 * The complete subtrees whose hashes, folded from the right, give MTH(D[start:end]), for a range whose
 * start is a multiple of a power of two >= its length (every range a proof or root ever needs is).
 */
export function rangeNodes(start: number, end: number): NodeId[] {
  const out: NodeId[] = [];
  let at = start;
  let remaining = end - start;
  while (remaining > 0) {
    let size = 1;
    let level = 0;
    while (size * 2 <= remaining) (size *= 2), level++;
    out.push({ level, index: at / size });
    at += size;
    remaining -= size;
  }
  return out;
}

/** Folds the hashes of `rangeNodes(start, end)` into MTH(D[start:end]). */
function foldRight(hashes: readonly Hash[]): Hash {
  if (hashes.length === 0) return EMPTY_ROOT;
  let h = hashes[hashes.length - 1]!;
  for (let i = hashes.length - 2; i >= 0; i--) h = nodeHash(hashes[i]!, h);
  return h;
}

/** A range [start, end) of leaves whose MTH a proof contains. */
type Range = [number, number];

/** RFC 9162 2.1.3.1 PATH(m, D[n]), as the list of ranges whose MTHs it contains (leaf to root). */
function inclusionRanges(m: number, n: number, offset = 0): Range[] {
  if (n <= 1) return [];
  const k = splitPoint(n);
  if (m < k) return [...inclusionRanges(m, k, offset), [offset + k, offset + n]];
  return [...inclusionRanges(m - k, n - k, offset + k), [offset, offset + k]];
}

/** RFC 9162 2.1.4.1 SUBPROOF(m, D[n], b), as ranges. */
function consistencyRanges(m: number, n: number, complete: boolean, offset = 0): Range[] {
  if (m === n) return complete ? [] : [[offset, offset + n]];
  const k = splitPoint(n);
  if (m <= k) return [...consistencyRanges(m, k, complete, offset), [offset + k, offset + n]];
  return [...consistencyRanges(m - k, n - k, false, offset + k), [offset, offset + k]];
}

/** Reads stored complete-subtree hashes; undefined where a node is not stored. */
export interface NodeSource {
  readNodes(ids: readonly NodeId[]): Promise<(Hash | undefined)[]>;
}

async function rangeHashes(source: NodeSource, ranges: readonly Range[]): Promise<Hash[]> {
  const plans = ranges.map(([s, e]) => rangeNodes(s, e));
  const ids = plans.flat();
  const hashes = await source.readNodes(ids);
  let at = 0;
  return plans.map((plan) => {
    const parts = hashes.slice(at, at + plan.length);
    at += plan.length;
    if (parts.some((p) => p === undefined)) throw new MissingNodeError();
    return foldRight(parts as Hash[]);
  });
}

/** A node the tree needs is not stored (the tree was not built that far, or the store lost it). */
export class MissingNodeError extends Error {
  constructor() {
    super('a Merkle tree node is missing from the store');
  }
}

export function rootAt(source: NodeSource, size: number): Promise<Hash> {
  if (size === 0) return Promise.resolve(EMPTY_ROOT);
  return rangeHashes(source, [[0, size]]).then(([h]) => h!);
}

export function inclusionProof(source: NodeSource, index: number, size: number): Promise<Hash[]> {
  if (!(index >= 0 && index < size)) throw new RangeError(`leaf ${index} is not in a tree of size ${size}`);
  return rangeHashes(source, inclusionRanges(index, size));
}

export function consistencyProof(source: NodeSource, from: number, to: number): Promise<Hash[]> {
  if (!(from >= 0 && from <= to)) throw new RangeError(`no consistency proof from size ${from} to ${to}`);
  if (from === 0 || from === to) return Promise.resolve([]);
  return rangeHashes(source, consistencyRanges(from, to, true));
}

function equal(a: Hash, b: Hash): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** RFC 9162 2.1.3.2: does `proof` show the leaf with hash `leaf` at `index` in the tree (`size`, `root`)? */
export function verifyInclusion(index: number, size: number, leaf: Hash, proof: readonly Hash[], root: Hash): boolean {
  if (!(Number.isSafeInteger(index) && Number.isSafeInteger(size) && index >= 0 && index < size)) return false;
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      if (fn % 2 === 0) while (fn % 2 === 0 && fn !== 0) (fn = Math.floor(fn / 2)), (sn = Math.floor(sn / 2));
    } else {
      r = nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && equal(r, root);
}

/** RFC 9162 2.1.4.2: does `proof` show the tree (`size2`, `root2`) extends the tree (`size1`, `root1`)? */
export function verifyConsistency(size1: number, size2: number, root1: Hash, root2: Hash, proof: readonly Hash[]): boolean {
  if (!(Number.isSafeInteger(size1) && Number.isSafeInteger(size2) && size1 >= 0 && size1 <= size2)) return false;
  if (size1 === size2) return proof.length === 0 && equal(root1, root2);
  if (size1 === 0) return proof.length === 0; // the empty tree is a prefix of every tree
  if (proof.length === 0) return false;
  // If size1 is an exact power of 2, prepend root1 to the proof.
  const path = (size1 & (size1 - 1)) === 0 ? [root1, ...proof] : [...proof];
  let fn = size1 - 1;
  let sn = size2 - 1;
  while (fn % 2 === 1) (fn = Math.floor(fn / 2)), (sn = Math.floor(sn / 2));
  let fr = path[0]!;
  let sr = path[0]!;
  for (const c of path.slice(1)) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      if (fn % 2 === 0) while (fn % 2 === 0 && fn !== 0) (fn = Math.floor(fn / 2)), (sn = Math.floor(sn / 2));
    } else {
      sr = nodeHash(sr, c);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && equal(fr, root1) && equal(sr, root2);
}

// The frontier hashes nodes as 32-character latin1 ("binary") strings through one reusable 65-byte buffer:
// a digest returned as a Buffer costs a fresh native allocation per node, a string does not, and verify
// hashes about one node per entry. A leaf given as hex (`pushHex`, the verifier's path) stays hex until it
// is paired: it is written into the buffer as hex, never converted on its own.
const NODE_INPUT = Buffer.alloc(65);
NODE_INPUT[0] = 1;
const binary = (h: Hash) => Buffer.from(h.buffer, h.byteOffset, h.byteLength).toString('latin1');
const HEX_LEAF = 64;

/** Writes a frontier hash (32 latin1 characters, or a leaf as 64 hex digits) into NODE_INPUT at `at`. */
function writeHash(h: string, at: number): void {
  const written = h.length === HEX_LEAF ? NODE_INPUT.write(h, at, 32, 'hex') : NODE_INPUT.write(h, at, 32, 'latin1');
  if (written !== 32 || (h.length !== HEX_LEAF && h.length !== 32)) throw new RangeError('a leaf hash is 64 hex digits');
}

function nodeHashBinary(left: string, right: string): string {
  writeHash(left, 1);
  writeHash(right, 33);
  return hash('sha256', NODE_INPUT, 'binary'); // 'binary' is latin1
}

const bytesOf = (h: string): Hash => {
  writeHash(h, 1);
  return Buffer.from(NODE_INPUT.subarray(1, 33));
};

/**
 * Incremental tree over a stream of leaf hashes: the frontier (one complete subtree per set bit of the
 * size). `push` reports the complete subtrees it finished, so a builder can store them; `root()` is MTH
 * of everything pushed so far.
 */
export class MerkleFrontier {
  /** Complete subtrees on the right edge, largest (leftmost) first: their levels and hashes (see `writeHash`). */
  private readonly levels: number[] = [];
  private readonly stack: string[] = [];
  size: number;

  /** Starts at `size` from the frontier of that size (`rangeNodes(0, size)`, left to right), or empty. */
  constructor(size = 0, frontier: readonly Hash[] = []) {
    const ids = rangeNodes(0, size);
    if (ids.length !== frontier.length) throw new RangeError(`a frontier of size ${size} has ${ids.length} subtrees, got ${frontier.length}`);
    this.size = size;
    ids.forEach((id, i) => {
      this.levels.push(id.level);
      this.stack.push(binary(frontier[i]!));
    });
  }

  push(leaf: Hash, finished?: (id: NodeId, hash: Hash) => void): void {
    finished?.({ level: 0, index: this.size }, leaf);
    this.pushLeaf(binary(leaf), finished);
  }

  /** The same for a leaf hash given as 64 lowercase hex digits (what the verifier computes and compares). */
  pushHex(leafHex: string, finished?: (id: NodeId, hash: Hash) => void): void {
    if (leafHex.length !== HEX_LEAF) throw new RangeError('a leaf hash is 64 hex digits');
    finished?.({ level: 0, index: this.size }, bytesOf(leafHex));
    this.pushLeaf(leafHex, finished);
  }

  private pushLeaf(leaf: string, finished?: (id: NodeId, hash: Hash) => void): void {
    let level = 0;
    let h = leaf;
    let index = this.size;
    while (this.levels.length > 0 && this.levels[this.levels.length - 1] === level) {
      this.levels.pop();
      h = nodeHashBinary(this.stack.pop()!, h);
      level++;
      index = Math.floor(index / 2);
      finished?.({ level, index }, bytesOf(h));
    }
    this.levels.push(level);
    this.stack.push(h);
    this.size++;
  }

  root(): Hash {
    if (this.stack.length === 0) return EMPTY_ROOT;
    let h = this.stack[this.stack.length - 1]!;
    for (let i = this.stack.length - 2; i >= 0; i--) h = nodeHashBinary(this.stack[i]!, h);
    return bytesOf(h);
  }

  /** The complete subtrees of the right edge, left to right (what `new MerkleFrontier(size, …)` takes). */
  hashes(): Hash[] {
    return this.stack.map(bytesOf);
  }
}
