// The audit log as the key process read it (docs/custody.md, "Separate key process"). The bound signer and the
// tree-head guard share one: every leaf either of them uses is checked against its own bytes (never the stored
// hash column's word) and folded into one Merkle frontier, so the entry an agent key signs from is exactly the
// leaf the next tree head the audit key signs commits to. The daemon owns the store and can rewrite any row;
// what it cannot do is make a rewritten leaf hash to what the key process read before.
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { auditLeafData, chainLeaf, hashAuditEntry, storedLeafHash } from '../audit/hash.ts';
import { isCanonicalJsonObject, leafDataIfFieldsMatch } from '../audit/leaf-fields.ts';
import type { VerifiableEntry } from '../audit/log-verifier.ts';
import { leafHash, leafHashHex, MerkleFrontier, nodeHash, rangeNodes, type Hash, type NodeId } from '../audit/merkle.ts';
import type { AuditEntry } from '../audit/types.ts';
import { findJsonShapeProblem } from '../parse-untrusted-json.ts';
import { AsyncMutex } from './async-mutex.ts';
import { bindingRefused } from './binding-refusal.ts';

/** What the key process reads of the log (read-only): entries by seq, leaves in leaf order with their stored bytes, stored tree nodes. */
export interface AuditLogSource {
  readAudit(fromSeq: number, limit: number): Promise<AuditEntry[]>;
  readAuditLeaves(fromLeafIndex: number, limit: number): Promise<VerifiableEntry[]>;
  readTreeNodes(ids: readonly NodeId[]): Promise<(Uint8Array | undefined)[]>;
}

/** An entry whose leaf the key process verified, its data parsed from that leaf. */
export interface VerifiedEntry extends AuditEntry {
  leafIndex: number;
  /** RFC 9162 leaf hash of the leaf as the key process read it (hex). */
  leafHash: string;
}

/**
 * A row checked against its own bytes, with the leaf hash computed from them; or, for a row that fails the checks,
 * `untrusted` (why) with the hash its hash column gives. Such a row is folded into tree heads as the daemon's tree
 * has it (an operator who ran `airlock audit acknowledge` accepted the log so: refusing to fold it would halt
 * every tree head and signature for good), but nothing is ever signed from it (entryOf refuses it).
 */
interface CheckedRow {
  row: VerifiableEntry;
  leafIndex: number;
  leafHash: string;
  untrusted?: string;
}

/** Leaves per read (the store clamps a read to 10,000). */
const LEAF_PAGE = 4096;
/**
 * Leaf hashes read past the last folded tree head are kept one by one (a head may end anywhere among them). Past
 * this many, the oldest are folded: a tree head older than them is then refused, as one older than a signed head is.
 */
const MAX_AHEAD = 1 << 18;
/** Rows kept by seq: a signature nearly always names an entry appended just before it. */
const RECENT = 1024;
/** `approval.granted` entries kept per approval (`grantsOf`): one in an honest log. */
const MAX_GRANTS_PER_APPROVAL = 8;

function edited(leafIndex: number, what: string): Error {
  return bindingRefused('audit_leaf_mismatch', `leaf ${leafIndex} of the log ${what}: the log was edited.`);
}

/**
 * The checks `audit verify` makes of one row, so that its leaf hash is computed, never taken from the row: a
 * version-3 leaf is hashed from its stored bytes, which must hash to the stored hash and frame the row's columns
 * (`leafMatchesFields`) around the canonical JSON of one object (`isCanonicalJsonObject`: every leaf the key process
 * reads may go into a tree head it signs, and `{"a":1},"decision":"allow",…` also starts with `{` and ends with `}`);
 * a chained (version 1 or 2) entry's chain hash is recomputed from its content.
 */
function checkRow(row: VerifiableEntry, leafIndex: number): CheckedRow {
  if (row.leafIndex !== leafIndex) throw bindingRefused('audit_leaf_mismatch', `the log's leaf ${leafIndex} is missing or out of place: the log was edited.`);
  try {
    return checkRowBytes(row, leafIndex);
  } catch (e) {
    // Kept as the stored hash says (the daemon's tree, after an acknowledge), never signed from. A hash column
    // that is not a hash cannot be folded at all.
    let stored: string;
    try {
      stored = bytesToHex(storedLeafHash(row));
    } catch {
      throw e;
    }
    if (stored.length !== 64) throw e;
    return { row, leafIndex, leafHash: stored, untrusted: e instanceof Error ? e.message : String(e) };
  }
}

function checkRowBytes(row: VerifiableEntry, leafIndex: number): CheckedRow {
  const version = row.hashVersion ?? 1;
  if (version === 3) {
    if (typeof row.leaf !== 'string') throw edited(leafIndex, 'has no stored leaf');
    const hash = leafHashHex(row.leaf);
    if (hash !== row.hash) throw edited(leafIndex, 'does not hash to its stored hash');
    const data = leafDataIfFieldsMatch(row.leaf, row);
    if (data === undefined) throw edited(leafIndex, "has columns that are not its leaf's");
    if (!isCanonicalJsonObject(data)) throw edited(leafIndex, 'holds data that is not the canonical JSON of an object');
    return { row, leafIndex, leafHash: hash };
  }
  if (version !== 1 && version !== 2) throw edited(leafIndex, 'has an unknown hash version');
  if (row.seq !== leafIndex + 1 || row.data === undefined || row.prevHash === undefined) throw edited(leafIndex, 'is a chained entry out of place');
  // Version 1 dropped __proto__ members when hashing: one there now is an edit its hash cannot see.
  if (version === 1 && findJsonShapeProblem(row.data, Infinity, ['__proto__'])) throw edited(leafIndex, 'does not hash to its stored hash');
  let chain: string;
  try {
    chain = hashAuditEntry(row.prevHash, row.seq, row as AuditEntry, version);
  } catch {
    throw edited(leafIndex, 'cannot be hashed');
  }
  if (chain !== row.hash) throw edited(leafIndex, 'does not hash to its stored hash');
  return { row, leafIndex, leafHash: leafHash(chainLeaf(chain)).toString('hex') };
}

/** The entry of a checked row, its data read from the checked leaf (a chained entry's from its hashed content). */
function entryOf({ row, leafIndex, leafHash: hash, untrusted }: CheckedRow): VerifiedEntry {
  if (untrusted !== undefined) throw bindingRefused('audit_leaf_mismatch', untrusted);
  let data: unknown = row.data;
  if (row.hashVersion === 3) {
    try {
      data = JSON.parse(auditLeafData(row as AuditEntry & { leaf: string }));
    } catch {
      throw edited(leafIndex, 'holds data that is not JSON');
    }
  }
  if (data === null || typeof data !== 'object' || Array.isArray(data)) throw edited(leafIndex, 'holds data that is not an object');
  return { ...row, data: data as Record<string, unknown>, leafIndex, leafHash: hash };
}

const sameHash = (a: Hash, b: Hash) => a.length === b.length && Buffer.compare(a, b) === 0;

/**
 * Every leaf is read once, in leaf order, contiguous, checked (`checkRow`) and kept as its hash: `folded` up to
 * the last tree head signed, `ahead` after it. An entry asked for is then used only as read:
 * - not read yet: the log is read up to it (every leaf in between checked), and the row read is the one used;
 *   a later rewrite of it breaks the next tree head (the key process signs only over what it read);
 * - read before: the row is read again, checked, and its leaf hash must be the one read at its index: compared
 *   with `ahead`, or for a folded leaf led up to the root of its complete subtree in the frontier (its peak).
 * Reading and folding run one at a time (two callers must never push the same leaves); the checks of leaves
 * already read run beside them, against a snapshot of the state.
 */
export class VerifiedAuditLog {
  /** The leaves folded into signed tree heads (or folded to bound `ahead`). */
  private folded = new MerkleFrontier();
  /** Hashes of the leaves read after them, [folded.size, size), as read. */
  private ahead: string[] = [];
  /** The last rows read that are still in `ahead`, by seq. */
  private readonly recent = new Map<number, CheckedRow>();
  private readonly advancing = new AsyncMutex();
  private readonly source: AuditLogSource;
  private readonly now: () => number;
  /** Leaves under the last tree head signed (or held to at start): `folded` may run ahead of it (MAX_AHEAD). */
  private headed = 0;
  /** When each page of leaves from `headed` on was read (`from`: its first leaf index), oldest first. */
  private pageReads: { from: number; at: number }[] = [];
  /** Seqs of the `approval.granted` entries read so far, by the approval they name (`grantsOf`). */
  private readonly grants = new Map<string, number[]>();

  constructor(source: AuditLogSource, options: { now?: () => number } = {}) {
    this.source = source;
    this.now = options.now ?? Date.now;
  }

  /**
   * When the oldest leaf under no tree head signed so far was read, or undefined when every leaf read is under one.
   * The key process refuses to sign once that is too long ago (BoundSigningGuard): a daemon that stops asking for
   * heads would otherwise keep a tail of the log that a restarted key process takes as it finds it.
   */
  unheadedSince(): number | undefined {
    if (this.size <= this.headed) return undefined;
    let at: number | undefined;
    for (const p of this.pageReads) {
      if (p.from > this.headed) break;
      at = p.at;
    }
    return at ?? this.pageReads[0]?.at;
  }

  /** Leaves read so far. */
  get size(): number {
    return this.folded.size + this.ahead.length;
  }

  /**
   * Reads the whole log as it is now. The key process does this before it listens: otherwise the first request
   * after a start reads and hashes every leaf while holding the lock every signature waits on (about 16 µs a leaf
   * on SQLite: 16 s for a million, past the daemon's timeout; found by review). Returns how many leaves it read.
   */
  async catchUp(): Promise<number> {
    return this.advancing.run(async () => {
      const before = this.size;
      await this.readThrough(Number.POSITIVE_INFINITY);
      return this.size - before;
    });
  }

  /** The committed entry `seq`, from its leaf as the key process read it; refused if the store holds it otherwise now. */
  async entry(seq: number): Promise<VerifiedEntry> {
    let read = this.recent.get(seq);
    // Most likely appended just now: the next page of the log (the next tree head reads it anyway).
    read ??= await this.advancing.run(async () => {
      if (!this.recent.has(seq)) await this.readPage();
      return this.recent.get(seq);
    });
    if (read) return entryOf(read);
    // Older (or none): where the store says it is, then shown to be what was read there.
    const [located] = await this.source.readAudit(seq, 1);
    if (!located || located.seq !== seq || located.leafIndex === undefined) throw bindingRefused('audit_entry_not_found', `there is no committed audit entry ${seq}.`);
    const entry = await this.entryAt(located.leafIndex);
    if (entry.seq !== seq) throw bindingRefused('audit_leaf_mismatch', `leaf ${located.leafIndex} of the log is not audit entry ${seq}: the log was edited.`);
    return entry;
  }

  /**
   * The seqs of the `approval.granted` entries read that name `approvalId`, the log read to its end first when none
   * is known yet (a grant commits just before its signature is asked for). This only finds them: read each with
   * `entry`, as any other, before trusting it. Every leaf is read once through `readPage`, so none is missed.
   */
  async grantsOf(approvalId: string): Promise<readonly number[]> {
    if (!this.grants.has(approvalId)) await this.catchUp();
    return this.grants.get(approvalId) ?? [];
  }

  /**
   * Tree heads: is `rootHash` the root of the first `treeSize` leaves as read (reading up to there)? If so they are
   * folded: heads only grow, so a head older than one signed is refused (a log genuinely restored from a backup
   * needs the key process restarted).
   */
  async foldTo(treeSize: number, rootHash: string): Promise<void> {
    await this.advancing.run(async () => {
      if (treeSize < this.folded.size) throw bindingRefused('tree_root_mismatch', `the key process has folded ${this.folded.size} leaves into tree heads already; it signs no older tree head.`);
      await this.readThrough(treeSize);
      if (this.size < treeSize) throw bindingRefused('tree_root_mismatch', `the log has ${this.size} leaves, fewer than the tree head's ${treeSize}.`);
      const n = treeSize - this.folded.size;
      const next = new MerkleFrontier(this.folded.size, this.folded.hashes());
      for (let i = 0; i < n; i++) next.pushHex(this.ahead[i]!);
      // Kept unfolded otherwise: the daemon's root is over other leaves than these (a rewritten log, or forged tree nodes).
      if (bytesToHex(next.root()) !== rootHash) throw bindingRefused('tree_root_mismatch', `the root of the log's first ${treeSize} leaves is not the one asked for.`);
      this.folded = next;
      this.ahead = this.ahead.slice(n);
      this.forgetFolded();
      if (treeSize > this.headed) this.headed = treeSize;
      // Only the page holding the first leaf past the head (and later ones) still dates an unheaded leaf.
      while (this.pageReads.length > 1 && this.pageReads[1]!.from <= this.headed) this.pageReads.shift();
    });
  }

  private async entryAt(leafIndex: number): Promise<VerifiedEntry> {
    if (!Number.isSafeInteger(leafIndex) || leafIndex < 0) throw bindingRefused('audit_entry_not_found', 'the entry has no place in the log.');
    if (leafIndex >= this.size) {
      const read = await this.advancing.run(() => this.readThrough(leafIndex + 1, leafIndex));
      if (read) return entryOf(read);
      if (leafIndex >= this.size) throw bindingRefused('audit_entry_not_found', `the log has no leaf ${leafIndex}.`);
      // Read meanwhile by another caller: checked against what it read, below.
    }
    const [row] = await this.source.readAuditLeaves(leafIndex, 1);
    if (!row) throw edited(leafIndex, 'is gone');
    const checked = checkRow(row, leafIndex);
    await this.proveRead(checked);
    return entryOf(checked);
  }

  /** Reads (under `advancing`) until `end` leaves are read or the log ends; returns the row of leaf `want` if this call read it. */
  private async readThrough(end: number, want?: number): Promise<CheckedRow | undefined> {
    let wanted: CheckedRow | undefined;
    while (this.size < end) {
      const page = await this.readPage();
      if (want !== undefined) wanted ??= page.find((c) => c.leafIndex === want);
      if (page.length === 0) break;
    }
    return wanted;
  }

  /** The next page of leaves (under `advancing`), each checked (or kept untrusted, checkRow) and appended in order; one out of place stops the page there. */
  private async readPage(): Promise<CheckedRow[]> {
    const rows = await this.source.readAuditLeaves(this.size, LEAF_PAGE);
    if (rows.length > 0) {
      this.pageReads.push({ from: this.size, at: this.now() });
      // Bounded (one page a signature while no head comes): dropping a middle page dates its leaves by an older one,
      // which refuses sooner, never later.
      if (this.pageReads.length > 4096) this.pageReads.splice(1, 1);
    }
    const read: CheckedRow[] = [];
    for (const row of rows) {
      const checked = checkRow(row, this.size);
      this.ahead.push(checked.leafHash);
      this.recent.set(checked.row.seq, checked);
      if (this.recent.size > RECENT) this.recent.delete(this.recent.keys().next().value!);
      this.noteGrant(checked);
      read.push(checked);
    }
    if (this.ahead.length > MAX_AHEAD) {
      const n = this.ahead.length - MAX_AHEAD / 2;
      for (let i = 0; i < n; i++) this.folded.pushHex(this.ahead[i]!);
      this.ahead = this.ahead.slice(n);
      this.forgetFolded();
    }
    return read;
  }

  /**
   * Indexes an `approval.granted` leaf by the approval its data names (its `type` column was checked against the
   * leaf). An honest log has one per approval; a few more are kept (forged ones are the daemon's to append, and it
   * could refuse service anyway), never an unbounded list.
   */
  private noteGrant(checked: CheckedRow): void {
    if (checked.untrusted !== undefined || checked.row.type !== 'approval.granted') return;
    let approvalId: unknown;
    try {
      approvalId = entryOf(checked).data.approvalId;
    } catch {
      return;
    }
    if (typeof approvalId !== 'string') return;
    const seqs = this.grants.get(approvalId);
    if (!seqs) this.grants.set(approvalId, [checked.row.seq]);
    else if (seqs.length < MAX_GRANTS_PER_APPROVAL) seqs.push(checked.row.seq);
  }

  /** A folded leaf is only ever proven against its peak (the row kept from reading it would prove nothing more). */
  private forgetFolded(): void {
    for (const [seq, c] of this.recent) if (c.leafIndex < this.folded.size) this.recent.delete(seq);
  }

  /** A leaf read before, read again now: it must be the leaf read then. */
  private async proveRead({ leafIndex, leafHash: hash }: CheckedRow): Promise<void> {
    const differs = () => bindingRefused('audit_leaf_mismatch', `leaf ${leafIndex} of the log is not the leaf the key process read there: the log was edited.`);
    // A snapshot, taken at once: leaves are only ever added to it, so what it says stays true.
    const foldedSize = this.folded.size;
    if (leafIndex >= foldedSize) {
      if (this.ahead[leafIndex - foldedSize] !== hash) throw differs();
      return;
    }
    const peaks = this.folded.hashes();
    const ids = rangeNodes(0, foldedSize);
    const at = ids.findIndex((id) => leafIndex < (id.index + 1) * 2 ** id.level);
    if (!(await this.leadsTo(leafIndex, hexToBytes(hash), ids[at]!, peaks[at]!))) throw differs();
  }

  /**
   * Does leaf `leafIndex` (hash `leaf`) lead up to `peakHash`, the root the key process computed of the complete
   * subtree `peak`? The siblings on the way come from the store's tree nodes, which the daemon writes: untrusted,
   * but no sibling it forges makes the path end at the key process's own root (short of a SHA-256 collision).
   * Where they are not stored (the tree not built that far), the subtree is folded from its leaves, at most
   * 2^level of them; the others' stored hashes will do there, for the same reason.
   */
  private async leadsTo(leafIndex: number, leaf: Hash, peak: NodeId, peakHash: Hash): Promise<boolean> {
    const siblings: NodeId[] = [];
    for (let level = 0; level < peak.level; level++) {
      const index = Math.floor(leafIndex / 2 ** level);
      siblings.push({ level, index: index % 2 === 0 ? index + 1 : index - 1 });
    }
    const nodes = await this.source.readTreeNodes(siblings);
    if (nodes.length === siblings.length && nodes.every((n) => n?.length === 32)) {
      let h: Hash = leaf;
      siblings.forEach((s, level) => {
        h = s.index % 2 === 1 ? nodeHash(h, nodes[level]!) : nodeHash(nodes[level]!, h);
      });
      return sameHash(h, peakHash);
    }
    const start = peak.index * 2 ** peak.level;
    const end = start + 2 ** peak.level;
    const frontier = new MerkleFrontier();
    for (let next = start; next < end; ) {
      const rows = await this.source.readAuditLeaves(next, Math.min(LEAF_PAGE, end - next));
      if (rows.length === 0) return false;
      for (const row of rows) {
        if (row.leafIndex !== next || next >= end) return false;
        try {
          frontier.push(next === leafIndex ? leaf : storedLeafHash(row));
        } catch {
          return false; // a hash column that is not a hash
        }
        next++;
      }
    }
    return sameHash(frontier.root(), peakHash);
  }
}
