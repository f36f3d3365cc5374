// Verifies the audit log: every entry against its own hash, the order of the leaves, the legacy hash chain,
// and every signed tree head (and legacy checkpoint) against the tree rebuilt from the entries.
//
// The log is verified in ranges of leaves (`LeafRangeVerifier`), each on its own (a worker thread can take
// one), then `finishVerification` joins them: the seams between ranges, the roots at each signed size
// from the ranges' subtree roots, and the signatures.
import { bytesToHex } from '@noble/hashes/utils.js';
import { canonicalJson } from '../canonical-json.ts';
import { findJsonShapeProblem } from '../parse-untrusted-json.ts';
import type { AuditLeafRow } from '../ports/audit-leaf-reader.ts';
import { auditLeafData, chainLeaf, GENESIS_HASH, hashAuditEntry, isWellFormedCheckpoint, isWellFormedTreeHead, type AuditLeafFields } from './hash.ts';
import { isCanonicalJsonObject, leafDataIfFieldsMatch, leafMatchesFields } from './leaf-fields.ts';
import { entryFromLeafRow, rowInt } from './leaf-rows.ts';
import { leafHash, leafHashHex, MerkleFrontier, rootOfSubtrees, type Hash, type NodeId } from './merkle.ts';
import type { AuditCheckpoint, AuditEntry, AuditHashVersion, SignedTreeHead } from './types.ts';

/** An entry as the verifier needs it: a version-3 entry needs no parsed `data` (its leaf is checked instead). */
export type VerifiableEntry = Omit<AuditEntry, 'data'> & { data?: AuditEntry['data'] };

export interface AuditProblem {
  seq: number;
  reason: string;
}

export interface AuditVerifyResult {
  ok: boolean;
  /** Leaves verified (the tree size of the log). */
  entries: number;
  /** Legacy signed checkpoints (hash-chain heads) checked. */
  checkpoints: number;
  /** Signed tree heads checked. */
  treeHeads: number;
  /** Root of the whole tree (hex). */
  rootHash: string;
  /** First problem found, with the entry seq it concerns. */
  firstBad?: AuditProblem;
  /** Entries after the last signed head (not yet vouched for by a signature). */
  unanchored: number;
  /**
   * Set (and `ok` false) when every entry verified but the signed heads do not vouch for the log as the
   * verifier required (`AnchoringRequirements`). The daemon's own verification never sets it.
   */
  anchoring?: AnchoringProblem;
}

/**
 * Stable codes of a log whose entries all verified but whose signed heads do not vouch for it as required:
 * - `audit_no_signed_head`: no signed tree head (or legacy checkpoint) at all;
 * - `audit_unanchored`: entries past the newest signed head;
 * - `audit_below_min_tree_size`: the signed heads cover fewer entries than the verifier was told to expect;
 * - `audit_root_mismatch`: the first `minTreeSize` entries do not have the root the verifier was told to expect.
 */
export type AuditAnchoringCode = 'audit_no_signed_head' | 'audit_unanchored' | 'audit_below_min_tree_size' | 'audit_root_mismatch';

export interface AnchoringProblem {
  code: AuditAnchoringCode;
  reason: string;
}

/**
 * What a verifier requires of the signed heads beyond each one checking out. An entry's own hash proves
 * nothing against whoever can rewrite the file or the database: only a signed head over it does. So a
 * verifier holding the audit key requires every entry to be under one (`requireAnchored`), and pins the
 * size and root that an earlier export or auditor saw (`minTreeSize`, `expectRoot`): without the pin, a
 * log cut back to an older signed head, its newer heads dropped, is still a log the key signed.
 */
export interface AnchoringRequirements {
  /** There must be a signed head, and no entry past the newest one. */
  requireAnchored?: boolean;
  /** The signed heads must cover at least this many entries. */
  minTreeSize?: number;
  /** The root (lowercase hex) of the tree of the first `minTreeSize` entries: requires `minTreeSize`. */
  expectRoot?: string;
}

/**
 * Applies `required` to a verification that passed. `rootAt(size)` gives the rebuilt tree's root (hex) at
 * a size; it is needed for `expectRoot` only (the verifier must have recorded the root at `minTreeSize`).
 */
export function checkAnchoring(result: AuditVerifyResult, required: AnchoringRequirements, rootAt?: (size: number) => string | undefined): AuditVerifyResult {
  if (required.expectRoot !== undefined && (required.minTreeSize === undefined || !rootAt)) throw new TypeError('expectRoot needs minTreeSize and the roots of the rebuilt tree');
  if (!result.ok) return result;
  const anchored = result.entries - result.unanchored;
  const problem = anchoringProblem(result, anchored, required, rootAt);
  return problem ? { ...result, ok: false, anchoring: problem } : result;
}

function anchoringProblem(result: AuditVerifyResult, anchored: number, required: AnchoringRequirements, rootAt?: (size: number) => string | undefined): AnchoringProblem | undefined {
  const { minTreeSize, expectRoot } = required;
  // Only what a signature vouches for counts: entries past the newest head could be anyone's.
  if (minTreeSize !== undefined && anchored < minTreeSize) {
    return { code: 'audit_below_min_tree_size', reason: `the signed tree heads cover ${anchored} entries, fewer than the ${minTreeSize} required (entries or heads removed since)` };
  }
  if (minTreeSize !== undefined && expectRoot !== undefined) {
    const root = rootAt!(minTreeSize);
    if (root !== expectRoot) return { code: 'audit_root_mismatch', reason: `the tree of the first ${minTreeSize} entries has root ${root ?? '(unknown)'}, not the expected ${expectRoot} (rewritten below that size, or another log)` };
  }
  if (!required.requireAnchored) return undefined;
  if (result.treeHeads === 0 && result.checkpoints === 0) {
    return { code: 'audit_no_signed_head', reason: `no signed tree head covers the log: none of its ${result.entries} entries is vouched for by the audit key` };
  }
  if (result.unanchored > 0) {
    return { code: 'audit_unanchored', reason: `the newest ${result.unanchored} entries (from leaf ${anchored}) are not under a signed tree head` };
  }
  return undefined;
}

/** Where a range starts: a leaf index, and for a range that continues a verified prefix, its frontier. */
export interface LeafRangeStart {
  start: number;
  /**
   * The tree's complete subtrees covering [0, start) (`rangeNodes(0, start)`). With it, roots are of the
   * whole tree; without it (a worker's range), of the leaves from `start` on.
   */
  frontier?: Hash[];
  /** The entry before `start` (seq, hash version, and its chain hash for a chained entry); absent: unknown here, the seam is checked later. */
  previous?: { seq: number; version: AuditHashVersion; hash: string };
  /** Tree sizes in or at the end of this range whose root to record. */
  rootsAt?: Iterable<number>;
  /** Seqs of chained entries whose chain hash to record (legacy checkpoints). */
  chainAt?: Iterable<number>;
  /** Called with every complete subtree the range finishes (the tree builder stores them). */
  onNode?: (id: NodeId, hash: Hash) => void;
  /**
   * The leaf index from which a version-3 leaf's data must be the canonical JSON of an object
   * (`isCanonicalJsonObject`: parsed, then written again); default 0, every leaf. A verifier that knows the
   * audit key signed a tree head of size N passes N: a leaf under it is pinned by its hash and the signed root,
   * and `audit verify` spends no parse on it. A leaf the key has not signed over must show it is one object,
   * or it would be signed as one (the checkpointer extends its verified tree from the anchor with the default).
   */
  canonicalDataFrom?: number;
}

export interface LeafRangeResult {
  start: number;
  /** One past the last leaf verified (start + count). */
  end: number;
  /** MTH of the leaves [start, end) (with a frontier: of [0, end)). */
  root: Hash;
  /** The frontier at `end` (with a starting frontier: of the whole tree). */
  frontier: Hash[];
  /** Root at each requested size reached: of [start, size), or [0, size) with a frontier. */
  roots: Map<number, Hash>;
  chainAt: Map<number, string>;
  firstBad?: AuditProblem;
  /**
   * The first row read, accepted or not: where the range's rows begin. A worker's range does not know the
   * entry before it, so leaves missing at its start are named by the join, which does.
   */
  firstRow?: { seq: number; leaf: number };
  /** The first and last entries of the range, for the seams. */
  first?: { seq: number; version: AuditHashVersion; prevHash?: string };
  last?: { seq: number; version: AuditHashVersion; hash: string };
}

const hex = (h: Hash) => bytesToHex(h);

/** Why a version-3 entry whose data is not the canonical JSON of an object fails (docs/audit-format.md). */
const NOT_CANONICAL = 'entry data in its stored leaf is not the canonical JSON of an object (edited)';

function dataMatches(data: unknown, leafData: string): boolean {
  try {
    return canonicalJson(data) === leafData;
  } catch {
    return false;
  }
}

/**
 * The problem with the entry `seq` found at leaf `index` when leaf `expected` comes next (after `previous`,
 * if known): leaves missing before it, or an entry out of order. One wording for a range and for the join.
 */
function leafGap(previous: { seq: number } | undefined, expected: number, seq: number, index: number): AuditProblem | undefined {
  if (index === expected) return undefined;
  if (index < expected) return { seq, reason: `entry ${seq} is out of order` };
  const missing = previous ? previous.seq + 1 : seq;
  return { seq: missing, reason: `entry ${missing} (leaf ${expected}) is missing (next is entry ${seq}, leaf ${index})` };
}

/**
 * Verifies a contiguous range of leaves fed in leaf order. Each entry is checked on its own (version 3:
 * its columns against its stored leaf, the leaf against its hash; versions 1 and 2: the chain hash
 * recomputed from its content and the previous hash), plus the order: contiguous leaf indexes, seqs
 * increasing, hash versions never going down.
 */
export class LeafRangeVerifier {
  private readonly frontier: MerkleFrontier;
  private readonly start: number;
  private readonly rootsAt: Set<number>;
  private readonly chainSeqs: Set<number>;
  private readonly roots = new Map<number, Hash>();
  private readonly chainAt = new Map<number, string>();
  private previous?: { seq: number; version: AuditHashVersion; hash: string };
  private firstRow?: LeafRangeResult['firstRow'];
  private first?: LeafRangeResult['first'];
  private bad?: AuditProblem;
  private next: number;
  private readonly onNode?: (id: NodeId, hash: Hash) => void;
  /** LeafRangeStart.canonicalDataFrom. */
  private readonly canonicalDataFrom: number;
  // One object for every row `pushRow` checks (the columns of the entry at hand), not one per row.
  private readonly fields: AuditLeafFields = { seq: 0, at: 0, type: '', actor: 'agent' };

  constructor(from: LeafRangeStart) {
    this.start = from.start;
    this.next = from.start;
    this.frontier = from.frontier ? new MerkleFrontier(from.start, from.frontier) : new MerkleFrontier();
    this.previous = from.previous;
    this.rootsAt = new Set(from.rootsAt ?? []);
    this.chainSeqs = new Set(from.chainAt ?? []);
    if (from.onNode) this.onNode = from.onNode;
    this.canonicalDataFrom = from.canonicalDataFrom ?? 0;
  }

  get size(): number {
    return this.next;
  }

  push(entry: VerifiableEntry): boolean {
    if (this.bad) return false;
    const version = entry.hashVersion ?? 1;
    const index = entry.leafIndex ?? entry.seq - 1; // exports from before the tree: leaf index = seq - 1
    if (!this.inOrder(entry.seq, index, version)) return false;
    if (version === 3) {
      const stored = entry.leaf;
      if (typeof stored !== 'string') return this.fail(entry.seq, 'entry has no stored leaf (edited)');
      // The columns must be the ones the leaf records: compare the leaf's fixed parts in place.
      if (entry.data === undefined && index >= this.canonicalDataFrom) {
        // No signed head covers it yet: its data must also be one object, in canonical form.
        const data = leafDataIfFieldsMatch(stored, entry);
        if (data === undefined) return this.fail(entry.seq, 'entry fields do not match its stored leaf (edited)');
        if (!isCanonicalJsonObject(data)) return this.fail(entry.seq, NOT_CANONICAL);
      } else if (!leafMatchesFields(stored, entry)) return this.fail(entry.seq, 'entry fields do not match its stored leaf (edited)');
      // An export line carries data beside the leaf: it must be the leaf's (rows read for verify carry none).
      // Equal to canonicalJson(data), the leaf's data is canonical JSON, of an object (it starts with `{`).
      if (entry.data !== undefined && !dataMatches(entry.data, auditLeafData({ ...entry, leaf: stored }))) {
        return this.fail(entry.seq, 'entry data does not match its stored leaf (edited)');
      }
      return this.appendLeaf(entry.seq, stored, entry.hash);
    }
    if (entry.seq !== index + 1) return this.fail(entry.seq, `chained entry ${entry.seq} is not at leaf ${entry.seq - 1}`);
    const prevHash = this.previous ? this.previous.hash : index === 0 ? GENESIS_HASH : undefined;
    if (prevHash !== undefined && entry.prevHash !== prevHash) return this.fail(entry.seq, 'prevHash does not match the previous entry');
    if (entry.data === undefined || entry.prevHash === undefined) return this.fail(entry.seq, 'entry content cannot be hashed (edited)');
    // Version 1 dropped __proto__ members, so they never reached a stored entry; one there now is an
    // edit the old form cannot see.
    if (version === 1 && findJsonShapeProblem(entry.data, Infinity, ['__proto__'])) return this.fail(entry.seq, 'entry content does not match its hash (edited)');
    let hash: string;
    try {
      hash = hashAuditEntry(entry.prevHash, entry.seq, entry as AuditEntry, version);
    } catch {
      return this.fail(entry.seq, 'entry content cannot be hashed (edited)');
    }
    if (hash !== entry.hash) return this.fail(entry.seq, 'entry content does not match its hash (edited)');
    if (this.chainSeqs.has(entry.seq)) this.chainAt.set(entry.seq, hash);
    this.frontier.push(leafHash(chainLeaf(hash)), this.onNode);
    this.appended(entry.seq, version, entry.hash, entry.prevHash);
    return true;
  }

  /**
   * The same checks for a row as a raw reader returns it (`AuditLeafRow`). A version-3 row is checked
   * from its columns as they are; a chained one goes through `push`.
   */
  pushRow(row: AuditLeafRow): boolean {
    if (this.bad) return false;
    const version = rowInt(row[2]);
    if (version !== 3) return this.push(entryFromLeafRow(row));
    const seq = rowInt(row[0]);
    const leafIndex = row[1];
    const index = leafIndex === null ? seq - 1 : rowInt(leafIndex);
    if (!this.inOrder(seq, index, 3)) return false;
    const leaf = row[11];
    if (leaf === null) return this.fail(seq, 'entry has no stored leaf (edited)');
    const f = this.fields;
    f.seq = seq;
    f.at = rowInt(row[4]);
    f.type = row[5];
    f.actor = row[6] as AuditEntry['actor'];
    f.agentId = row[7] ?? undefined;
    f.sessionId = row[8] ?? undefined;
    f.action = row[9] ?? undefined;
    f.decision = (row[10] ?? undefined) as AuditEntry['decision'];
    // Hashed first (it reads every byte of the leaf, which makes the compare below cheap); checked in the order of `push`.
    const h = leafHashHex(leaf);
    if (index >= this.canonicalDataFrom) {
      // No signed head covers it yet (as `push`): its data must also be one object, in canonical form.
      const data = leafDataIfFieldsMatch(leaf, f);
      if (data === undefined) return this.fail(seq, 'entry fields do not match its stored leaf (edited)');
      if (!isCanonicalJsonObject(data)) return this.fail(seq, NOT_CANONICAL);
    } else if (!leafMatchesFields(leaf, f)) return this.fail(seq, 'entry fields do not match its stored leaf (edited)');
    return this.appendLeafHash(seq, h, row[3]);
  }

  /** Contiguous leaf indexes, seqs increasing, a known hash version that never goes down. */
  private inOrder(seq: number, index: number, version: number): boolean {
    this.firstRow ??= { seq, leaf: index };
    const gap = leafGap(this.previous, this.next, seq, index);
    if (gap) return this.fail(gap.seq, gap.reason);
    const prevSeq = this.previous?.seq;
    // Chained entries are numbered by their place (seq = leaf + 1, checked by the chain). A version-3 entry's
    // seq is an identifier, unique by the store's key: on PostgreSQL it is drawn when the request runs and its
    // leaf is placed when its batch commits, so seqs of concurrent batches interleave. The tree fixes the order.
    if (version !== 3 && prevSeq !== undefined && seq <= prevSeq) return this.fail(seq, `entry ${seq} is out of order (after entry ${prevSeq})`);
    if (version !== 1 && version !== 2 && version !== 3) return this.fail(seq, 'entry has an unknown hash version (edited)');
    // Once the log is on a version, an older one after it can only be an edit: no writer goes back.
    const prevVersion = this.previous?.version;
    if (prevVersion !== undefined && version < prevVersion) return this.fail(seq, `entry hash version ${version} follows version ${prevVersion} (edited)`);
    return true;
  }

  /** A version-3 leaf whose columns matched: its hash (RFC 9162 leaf hash of the stored bytes) must be the stored one. */
  private appendLeaf(seq: number, leaf: string, storedHash: string): boolean {
    return this.appendLeafHash(seq, leafHashHex(leaf), storedHash);
  }

  private appendLeafHash(seq: number, h: string, storedHash: string): boolean {
    if (h !== storedHash) return this.fail(seq, 'entry content does not match its hash (edited)');
    this.frontier.pushHex(h, this.onNode);
    this.appended(seq, 3, h);
    return true;
  }

  private appended(seq: number, version: AuditHashVersion, hash: string, prevHash?: string): void {
    this.first ??= { seq, version, ...(prevHash !== undefined ? { prevHash } : {}) };
    this.previous = { seq, version, hash };
    this.next++;
    if (this.rootsAt.has(this.next)) this.roots.set(this.next, this.frontier.root());
  }

  /** Fails the range (a problem found outside `push`, e.g. an unreadable row). */
  fail(seq: number, reason: string): false {
    this.bad ??= { seq, reason };
    return false;
  }

  result(): LeafRangeResult {
    return {
      start: this.start,
      end: this.next,
      root: this.frontier.root(),
      frontier: this.frontier.hashes(),
      roots: this.roots,
      chainAt: this.chainAt,
      ...(this.bad ? { firstBad: this.bad } : {}),
      ...(this.firstRow ? { firstRow: this.firstRow } : {}),
      ...(this.first ? { first: this.first } : {}),
      ...(this.previous && this.first ? { last: this.previous } : {}),
    };
  }
}

export interface Signatures {
  /** The published audit key: heads and checkpoints signed by any other key are refused. */
  publicKey?: string;
  verifyTreeHead(head: SignedTreeHead): boolean;
  verifyCheckpoint(cp: AuditCheckpoint): boolean;
}

/**
 * Joins the ranges (in leaf order from leaf 0; every range but the last of one power-of-two size, aligned,
 * unless there is a single range) and checks the signed heads against the rebuilt tree.
 */
export function finishVerification(ranges: readonly LeafRangeResult[], treeHeads: readonly SignedTreeHead[], checkpoints: readonly AuditCheckpoint[], sig: Signatures, required?: AnchoringRequirements): AuditVerifyResult {
  let bad: AuditProblem | undefined;
  let prev: LeafRangeResult | undefined;
  // The verified prefix: the ranges up to the first problem (the failing one only as far as it got), so a
  // failed verification reports the same size and root however the log was split.
  const prefix: LeafRangeResult[] = [];
  for (const r of ranges) {
    // The verified prefix starts at leaf 0 and each range begins where the one before ended: a range that
    // read no row (its leaves deleted) is skipped, and the next range that did read one names the gap.
    if (r.firstRow) bad = leafGap(prev?.last, prev ? prev.end : 0, r.firstRow.seq, r.firstRow.leaf);
    if (bad) break;
    if (prev && r.first) {
      const p = prev.last!;
      if (r.first.version !== 3 && r.first.seq <= p.seq) bad = { seq: r.first.seq, reason: `entry ${r.first.seq} is out of order (after entry ${p.seq})` };
      else if (r.first.version < p.version) bad = { seq: r.first.seq, reason: `entry hash version ${r.first.version} follows version ${p.version} (edited)` };
      else if (r.first.version !== 3 && r.first.prevHash !== p.hash) bad = { seq: r.first.seq, reason: 'prevHash does not match the previous entry' };
      if (bad) break;
    }
    if (r.first || r.firstBad) prefix.push(r);
    if (r.firstBad) {
      bad = r.firstBad;
      break;
    }
    if (r.first) prev = r;
  }
  const size = prefix.length ? prefix[prefix.length - 1]!.end : 0;
  // MTH at `at`: the complete ranges before it, then the range it ends in (its partial root).
  const rootAt = (at: number): Hash | undefined => {
    if (prefix.length === 1 && prefix[0]!.start === 0) return at === prefix[0]!.end ? prefix[0]!.root : prefix[0]!.roots.get(at);
    const parts: Hash[] = [];
    for (const r of prefix) {
      if (r.end <= at) parts.push(r.root);
      else if (r.start < at) {
        const partial = r.roots.get(at);
        if (!partial) return undefined;
        parts.push(partial);
      }
      if (r.end >= at) break;
    }
    return rootOfSubtrees(parts);
  };
  const chainAt = new Map<number, string>();
  for (const r of ranges) for (const [seq, h] of r.chainAt) chainAt.set(seq, h);

  // A head from an export or a store row can hold anything: one that no signer writes is reported by its
  // place in the list (its values are not echoed), before any of them reaches a digest.
  bad ??= malformed(checkpoints, isWellFormedCheckpoint, 'checkpoint') ?? malformed(treeHeads, isWellFormedTreeHead, 'tree head');
  let anchored = 0;
  for (const cp of [...checkpoints].sort((a, b) => a.seq - b.seq)) {
    if (bad) break;
    if (sig.publicKey && cp.publicKey !== sig.publicKey) bad = { seq: cp.seq, reason: `checkpoint at ${cp.seq} is signed by an unknown key` };
    else if (!signatureHolds(() => sig.verifyCheckpoint(cp))) bad = { seq: cp.seq, reason: `checkpoint at ${cp.seq} has an invalid signature` };
    else if (cp.seq > size) bad = { seq: size + 1, reason: `log truncated: checkpoint covers ${cp.seq} entries, only ${size} present` };
    else if (chainAt.get(cp.seq) !== cp.headHash) bad = { seq: cp.seq, reason: `entry ${cp.seq} does not match the signed checkpoint head` };
    else anchored = Math.max(anchored, cp.seq);
  }
  for (const head of [...treeHeads].sort((a, b) => a.treeSize - b.treeSize)) {
    if (bad) break;
    const last = `entry at leaf ${head.treeSize - 1}`;
    if (sig.publicKey && head.publicKey !== sig.publicKey) bad = { seq: head.treeSize, reason: `tree head of size ${head.treeSize} is signed by an unknown key` };
    else if (!signatureHolds(() => sig.verifyTreeHead(head))) bad = { seq: head.treeSize, reason: `tree head of size ${head.treeSize} has an invalid signature` };
    else if (head.treeSize > size) bad = { seq: size + 1, reason: `log truncated: a signed tree head covers ${head.treeSize} entries, only ${size} present` };
    else {
      const root = rootAt(head.treeSize);
      if (!root || hex(root) !== head.rootHash) bad = { seq: head.treeSize, reason: `the tree up to the ${last} does not match the signed tree head of size ${head.treeSize}` };
      else anchored = Math.max(anchored, head.treeSize);
    }
  }
  const result: AuditVerifyResult = {
    ok: !bad,
    entries: size,
    checkpoints: checkpoints.length,
    treeHeads: treeHeads.length,
    rootHash: hex(rootAt(size) ?? rootOfSubtrees([])),
    unanchored: size - anchored,
  };
  if (bad) result.firstBad = bad;
  return required ? checkAnchoring(result, required, (at) => ((r) => r && hex(r))(rootAt(at))) : result;
}

/** A signature check that throws (a signature or key that is not hex) is a signature that does not hold. */
function signatureHolds(check: () => boolean): boolean {
  try {
    return check();
  } catch {
    return false;
  }
}

/** The first of `items` that is not well formed, as a problem at the size it claims (when that is a count) or at entry 1. */
function malformed<T extends { seq?: unknown; treeSize?: unknown }>(items: readonly T[], wellFormed: (item: T) => boolean, what: string): AuditProblem | undefined {
  const i = items.findIndex((item) => !wellFormed(item));
  if (i < 0) return undefined;
  const size = items[i]!.treeSize ?? items[i]!.seq;
  return { seq: Number.isSafeInteger(size) && (size as number) > 0 ? (size as number) : 1, reason: `${what} ${i + 1} of ${items.length} is malformed (a whole size and time, 0 or more, and a 32-byte hash in lowercase hex)` };
}

/** The sizes of signed heads and the seqs of legacy checkpoints: what a range must record roots and chain hashes at. */
export function verificationPoints(treeHeads: readonly SignedTreeHead[], checkpoints: readonly AuditCheckpoint[]): { rootsAt: number[]; chainAt: number[] } {
  return { rootsAt: treeHeads.map((h) => h.treeSize), chainAt: checkpoints.map((c) => c.seq) };
}

/**
 * Verifies a whole log on this thread: entries in leaf order, then the heads. (`verifyStoredAudit` splits
 * a stored log across worker threads; exports and small logs come here.)
 */
export class AuditLogVerifier {
  private readonly range: LeafRangeVerifier;
  private readonly required?: AnchoringRequirements;

  /**
   * `required`: applied by `finish`; the root at `required.minTreeSize` is recorded for `expectRoot`.
   * `canonicalDataFrom`: as LeafRangeStart's (default 0: the data of every version-3 leaf pushed without `data`
   * is parsed); pass the size of a tree head whose signature is known good to spare the leaves under it.
   */
  constructor(treeHeads: readonly SignedTreeHead[] = [], checkpoints: readonly AuditCheckpoint[] = [], required?: AnchoringRequirements, options: { canonicalDataFrom?: number } = {}) {
    const { rootsAt, chainAt } = verificationPoints(treeHeads, checkpoints);
    if (required?.minTreeSize !== undefined) rootsAt.push(required.minTreeSize);
    this.range = new LeafRangeVerifier({ start: 0, frontier: [], rootsAt, chainAt, ...(options.canonicalDataFrom !== undefined ? { canonicalDataFrom: options.canonicalDataFrom } : {}) });
    if (required) this.required = required;
  }

  push(entry: VerifiableEntry): boolean {
    return this.range.push(entry);
  }

  fail(seq: number, reason: string): false {
    return this.range.fail(seq, reason);
  }

  get size(): number {
    return this.range.size;
  }

  finish(treeHeads: readonly SignedTreeHead[], checkpoints: readonly AuditCheckpoint[], sig: Signatures): AuditVerifyResult {
    return finishVerification([this.range.result()], treeHeads, checkpoints, sig, this.required);
  }
}
