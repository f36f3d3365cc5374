import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { checkpointDigest, isWellFormedTreeHead, storedLeafHash, treeHeadDigest } from '../audit/hash.ts';
import { AuditLogVerifier, type AuditVerifyResult, type Signatures } from '../audit/log-verifier.ts';
import { EMPTY_ROOT, inclusionProof, leafHash, MerkleFrontier, verifyInclusion } from '../audit/merkle.ts';
import { consistencyBetween, extendVerifiedTree, inclusionFor, pinnedFrontier, storedTreeIsConsistent, storeNodeSource, type AuditInclusion, type VerifiedTree } from '../audit/stored-tree.ts';
import type { AuditCheckpoint, AuditEntryInput, AuditEntry, SignedTreeHead } from '../audit/types.ts';
import { verifyAuditInParallel, type ParallelVerifyOptions } from '../audit/parallel-verify.ts';
import { anchorSize, isAnchorGeneration, isLegacyAnchor, isNewerAnchor, type AuditAnchor, type StoredAuditAnchor } from '../ports/audit-anchor.ts';
import type { Store } from '../ports/store.ts';
import { AirlockError } from '../errors.ts';
import { assertAuditIntact } from './audit-integrity.ts';
import type { ServiceDeps } from './deps.ts';

const PAGE = 5000;

/** A tree the service verified: size and root (hex). */
export interface TreePoint {
  treeSize: number;
  rootHash: string;
}

export interface AcknowledgeResult {
  anchor: Pick<AuditAnchor, 'generation' | 'treeSize' | 'rootHash'>;
  previous?: { generation: number; treeSize: number; rootHash?: string };
  failure?: { seq: number; reason: string };
}

const brief = (a: StoredAuditAnchor) => (isLegacyAnchor(a) ? { generation: a.generation, treeSize: a.seq } : { generation: a.generation, treeSize: a.treeSize, rootHash: a.rootHash });

/**
 * Signed tree heads, the anchor that pins them outside the database, and whole-log verification.
 *
 * The anchor is the last tree head this service signed (or adopted from the anchor file, written by
 * another instance). Before each head is signed, and at start, the stored tree must still contain the
 * anchored tree (its frontier folds to the anchored root, and the anchored entry is in it), every entry
 * after it must verify, and a consistency proof (RFC 9162) from the anchored head to the new tree must
 * check out. Otherwise the service appends an `alert.audit_integrity` entry, sets
 * `deps.auditIntegrity.failure` (every signing path then refuses with `audit_integrity_failed`) and
 * signs nothing until an operator acknowledges.
 */
export class AuditService {
  private readonly deps: ServiceDeps;
  private publicKey?: string;
  private anchor?: StoredAuditAnchor;
  /** The tree this instance last verified (incremental: the next check starts here). */
  private verified?: { generation: number; tree: VerifiedTree };
  /** Public key, digest and signature of the last anchor or head whose signature verified. */
  private lastGoodSignature?: string;

  constructor(deps: ServiceDeps) {
    this.deps = deps;
  }

  /** x-only public key (hex) of the audit key, derived from the vault; published so outsiders can verify tree heads. */
  async auditPublicKey(): Promise<string> {
    this.publicKey ??= bytesToHex((await this.deps.keys.getPublicKey(this.deps.auditKeyPath)).slice(1));
    return this.publicKey;
  }

  /**
   * Checks that the store's log extends the anchor, and extends the stored tree with the entries after it.
   * Returns the verified tree (and the anchor it extends). Throws `audit_integrity_failed` (after raising
   * the alert once) when it does not.
   */
  async checkIntegrity(): Promise<{ anchor?: StoredAuditAnchor; head: TreePoint }> {
    const { store, auditAnchor, auditIntegrity } = this.deps;
    const publicKey = await this.auditPublicKey();
    let onDisk: StoredAuditAnchor | undefined;
    try {
      onDisk = await auditAnchor.read();
    } catch {
      return this.halt(this.anchor?.generation ?? 0, this.anchor ? anchorSize(this.anchor) : 0, 'the anchor file beside the vault is unreadable');
    }
    // The file is outside the database, but it is only trusted once the vault's audit key vouches for it.
    if (onDisk && !this.signedByAuditKey(onDisk, publicKey)) {
      return this.halt(onDisk.generation, anchorSize(onDisk), 'the anchor file is not signed by this vault\'s audit key');
    }
    // The anchor this instance verified before (none at start, when the file is all there is).
    const held = this.anchor;
    let anchor = onDisk && isNewerAnchor(onDisk, held) ? onDisk : held;
    const failure = auditIntegrity.failure;
    if (failure && (!anchor || anchor.generation <= failure.generation)) assertAuditIntact(auditIntegrity);
    // The file's generation is not signed, only its head: whoever can write the file and the database could
    // otherwise put back an older genuine head under a higher generation, and roll back the log and lift the
    // halt with no operator (found by review). A new generation is adopted only with its acknowledgement.
    if (held && anchor && anchor !== held && anchor.generation > held.generation) {
      const refused = await this.unacknowledged(anchor, held);
      if (refused) return this.halt(anchor.generation, anchorSize(anchor), refused);
    }
    if (!anchor) {
      // No anchor yet (a new vault, the first start of a version that keeps one, or a deleted file): trust
      // the newest head in the store that the audit key provably signed (a tree head, else a legacy
      // checkpoint), else the first entry.
      const head = await store.lastTreeHead();
      if (head && this.signedByAuditKey(head, publicKey)) anchor = { ...head, generation: 0 };
      else {
        const last = await store.lastCheckpoint();
        if (last && this.signedByAuditKey(last, publicKey)) anchor = { ...last, generation: 0 };
      }
    }
    const generation = anchor?.generation ?? 0;
    const { treeSize } = await store.auditHead();
    const size = anchor ? anchorSize(anchor) : 0;
    if (treeSize < size) return this.halt(generation, treeSize + 1, `log truncated: the anchor covers ${size} entries, the log has ${treeSize}`);

    // The anchored tree must still be the stored one: the frontier at the anchored size folds to the
    // anchored root, and the anchored entry is proven in it (O(log n) reads, every tick). A log rewritten
    // together with its stored tree fails here.
    let pinned: VerifiedTree | undefined;
    if (anchor && !isLegacyAnchor(anchor)) {
      const check = await pinnedFrontier(store, anchor.treeSize, hexToBytes(anchor.rootHash));
      if (!check.tree) return this.halt(generation, anchor.treeSize, check.problem!);
      pinned = check.tree;
    }
    // Where verification of the entries starts: what this instance verified before (same generation, its
    // last entry still stored unchanged), else the anchor, else the first entry (no anchor, or a legacy one:
    // the chain up to a legacy checkpoint is only pinned by verifying it from the start).
    let from: VerifiedTree = pinned ?? { size: 0, root: EMPTY_ROOT, frontier: [] };
    const known = this.verified;
    if (known && known.generation === generation && known.tree.size >= size && known.tree.size <= treeSize && (await this.stillThere(known.tree))) from = known.tree;
    const legacy = anchor && isLegacyAnchor(anchor) ? anchor : undefined;
    const extended = await extendVerifiedTree(store, from, treeSize, legacy ? { chainAt: [legacy.seq] } : {});
    if (!extended.tree) return this.halt(generation, extended.problem!.seq, extended.problem!.reason);
    if (legacy && extended.chainAt.get(legacy.seq) !== legacy.headHash) {
      return this.halt(generation, legacy.seq, `entry ${legacy.seq} does not match the anchored checkpoint`);
    }
    const tree = extended.tree;
    if (anchor && !legacy) {
      // "Extends" is a consistency proof from the anchored head to this tree, read from the stored nodes.
      const a = anchor as AuditAnchor;
      if (!(await storedTreeIsConsistent(store, a.treeSize, hexToBytes(a.rootHash), tree.size, tree.root))) {
        return this.halt(generation, a.treeSize, `the tree of ${tree.size} entries is not consistent with the anchored tree head of size ${a.treeSize}`);
      }
    }
    // A larger head of the same generation from the file (another instance's) must extend the one held too: a
    // genuine head of an earlier generation, put in the file under this one, does not.
    if (held && anchor !== held && held.generation === generation && !isLegacyAnchor(held)) {
      if (!(await storedTreeIsConsistent(store, held.treeSize, hexToBytes(held.rootHash), tree.size, tree.root))) {
        return this.halt(generation, held.treeSize, `the anchor file's tree head of size ${size} does not extend the tree head of size ${held.treeSize} this instance anchored`);
      }
    }
    this.verified = { generation, tree };
    if (anchor) this.anchor = anchor;
    if (failure) auditIntegrity.failure = undefined; // a newer generation (an acknowledgement) was adopted
    return { ...(anchor ? { anchor } : {}), head: { treeSize: tree.size, rootHash: bytesToHex(tree.root) } };
  }

  /** Appends one entry on its own (edge refusals that no service transaction carries). */
  async append(entry: AuditEntryInput): Promise<AuditEntry> {
    return this.deps.store.transaction((tx) => tx.appendAudit(entry));
  }

  /**
   * Signs the current tree head if it grew past the anchor, after checkIntegrity(): the audit key never
   * vouches for entries it has not checked, nor for a tree that does not extend what it signed before.
   */
  async checkpoint(): Promise<SignedTreeHead | undefined> {
    const { store } = this.deps;
    const { anchor, head } = await this.checkIntegrity();
    if (head.treeSize === 0 || (anchor && !isLegacyAnchor(anchor) && anchor.treeSize >= head.treeSize)) return undefined;
    const sth = await this.sign(head);
    const stored = await store.appendTreeHead(sth).then(
      () => true,
      () => false, // another instance signed a head of the same size first; our signature still anchors it
    );
    await this.publish({ ...sth, generation: anchor?.generation ?? 0 });
    return stored ? sth : undefined;
  }

  /**
   * The operator accepts the log as it is now (after `airlock audit verify`, when restoring the database
   * is not possible): records the acknowledgement in the log, signs the new tree head and anchors it under
   * a new generation, which lifts the signing halt. Entries that do not verify still fail `verify`; a
   * self-consistent rewrite is recorded from then on only by the acknowledgement entry (and by exports).
   */
  async acknowledge(by: string): Promise<AcknowledgeResult> {
    const { store, clock, auditAnchor, auditIntegrity } = this.deps;
    if (!auditIntegrity.failure) {
      try {
        await this.checkIntegrity();
        throw new AirlockError('conflict', 'Nothing to acknowledge: the audit log extends its last signed tree head.');
      } catch (e) {
        if (!(e instanceof AirlockError) || e.code !== 'audit_integrity_failed') throw e;
      }
    }
    const failure = auditIntegrity.failure;
    const onDisk = await auditAnchor.read().catch(() => undefined);
    const previous = onDisk && isNewerAnchor(onDisk, this.anchor) ? onDisk : this.anchor;
    const generation = Math.max(previous?.generation ?? 0, failure?.generation ?? 0) + 1;
    // Airlock counts generations one acknowledgement at a time: one this large came from a hand-written file,
    // and the anchor written with it would be unreadable.
    if (!isAnchorGeneration(generation)) {
      throw new AirlockError('conflict', 'The anchor generation is at its limit: no acknowledgement can follow it.', { hints: ['The anchor file beside the vault was not written by Airlock: restore it from a backup of the vault directory.'] });
    }
    await store.transaction((tx) =>
      tx.appendAudit({
        at: clock.now(),
        type: 'audit.integrity_acknowledged',
        actor: 'operator',
        data: { by, generation, ...(previous ? { previousAnchor: brief(previous) } : {}), ...(failure ? { failure: { seq: failure.seq, reason: failure.reason } } : {}) },
      }),
    );
    // The tree as it stands is accepted: rebuild it from the stored leaf hashes (each entry is not
    // re-verified: that is what the operator accepts), then sign its head.
    const tree = await this.rebuildAccepted();
    const sth = await this.sign({ treeSize: tree.size, rootHash: bytesToHex(tree.root) });
    await store.appendTreeHead(sth).catch(() => undefined);
    const anchor: AuditAnchor = { ...sth, generation };
    await auditAnchor.write(anchor);
    this.anchor = anchor;
    this.verified = { generation, tree };
    auditIntegrity.failure = undefined;
    return { anchor: { generation, treeSize: anchor.treeSize, rootHash: anchor.rootHash }, ...(previous ? { previous: brief(previous) } : {}), ...(failure ? { failure: { seq: failure.seq, reason: failure.reason } } : {}) };
  }

  /**
   * An entry's inclusion proof against the latest signed tree head. `agentId`: the caller is that agent,
   * who may only see the entries its own requests wrote (actor `agent`: sign.request, sign.replay,
   * session.derived, ...); any other looks like it does not exist. Entries operators and the system write
   * carry the agent's id too, and name what the agent must not learn: an approval.vote its approver's name, id,
   * signature and comment, approval.granted the approvers, breaker.tripped other agents,
   * agent.threshold_bound the FROST nodes (found by review).
   */
  async receipt(seq: number, agentId?: string): Promise<AuditInclusion & { entry: AuditEntry }> {
    const { store } = this.deps;
    const [entry] = await store.readAudit(seq, 1);
    const hidden = agentId !== undefined && (entry?.agentId !== agentId || entry.actor !== 'agent');
    if (!entry || entry.seq !== seq || hidden) throw new AirlockError('not_found', 'No such audit entry.');
    const head = await store.lastTreeHead();
    const index = entry.leafIndex ?? entry.seq - 1;
    if (!head || head.treeSize <= index) {
      throw new AirlockError('conflict', 'The entry is not yet under a signed tree head.', { hints: ['The checkpointer signs one every few seconds: retry shortly.'] });
    }
    return { ...(await inclusionFor(store, entry, head)), entry };
  }

  /** The consistency proof between two signed tree heads (`to` absent: the latest). */
  async consistency(fromSize: number, toSize?: number): Promise<{ from: SignedTreeHead; to: SignedTreeHead; proof: string[] }> {
    const { store } = this.deps;
    const to = toSize === undefined ? await store.lastTreeHead() : await store.getTreeHead(toSize);
    const from = await store.getTreeHead(fromSize);
    if (!from || !to) throw new AirlockError('not_found', `No signed tree head of size ${!from ? fromSize : toSize}.`);
    if (from.treeSize > to.treeSize) throw new AirlockError('invalid_request', '`from` must not be larger than `to`.');
    return { from, to, proof: await consistencyBetween(store, from, to) };
  }

  /** Verifies against the vault's audit key (never a key read from the store), the anchor included. */
  async verify(): Promise<AuditVerifyResult> {
    const publicKey = await this.auditPublicKey();
    const onDisk = await this.deps.auditAnchor.read().catch(() => undefined);
    const anchors = [this.anchor, onDisk].filter((a): a is StoredAuditAnchor => a !== undefined);
    return verifyStoredAudit(this.deps.store, this.deps.verifySchnorr, publicKey, anchors, this.deps.auditVerify);
  }

  private async sign(head: TreePoint): Promise<SignedTreeHead> {
    const at = this.deps.clock.now();
    const toSign = { treeSize: head.treeSize, rootHash: head.rootHash, at };
    // A key process recomputes the root from the log before it signs (KeyBackend.signTreeHead).
    const { keys } = this.deps;
    const signature = keys.signTreeHead ? await keys.signTreeHead(this.deps.auditKeyPath, toSign) : await keys.signSchnorr(this.deps.auditKeyPath, treeHeadDigest(toSign));
    return { treeSize: head.treeSize, rootHash: head.rootHash, at, publicKey: await this.auditPublicKey(), signature: bytesToHex(signature) };
  }

  private signedByAuditKey(a: StoredAuditAnchor | SignedTreeHead | AuditCheckpoint, publicKey: string): boolean {
    // A head row inserted with junk in it is signed by no one (treeHeadDigest refuses it).
    if ('treeSize' in a && !isWellFormedTreeHead(a)) return false;
    const digest = bytesToHex('treeSize' in a ? treeHeadDigest(a) : checkpointDigest(a));
    // Every tick re-reads the anchor file, which is usually the head verified on the tick before: a Schnorr
    // verification in the serving process costs a few milliseconds of event loop, so the last good one is kept.
    const key = `${publicKey}:${digest}:${a.signature}`;
    if (a.publicKey === publicKey && key === this.lastGoodSignature) return true;
    const ok = a.publicKey === publicKey && this.deps.verifySchnorr(publicKey, hexToBytes(digest), a.signature);
    if (ok) this.lastGoodSignature = key;
    return ok;
  }

  /**
   * Why this instance may not adopt `anchor`, a newer generation than the anchor it holds, read from the file;
   * undefined if it may. What vouches for the unsigned generation: the head was signed no earlier than the one
   * held (an older genuine head is not replayed), and its tree holds the `audit.integrity_acknowledged` entry of
   * exactly that generation (the move is in the log), read from the entry's leaf and proven in the signed root.
   */
  private async unacknowledged(anchor: StoredAuditAnchor, held: StoredAuditAnchor): Promise<string | undefined> {
    const refused = `the anchor file moves to generation ${anchor.generation} without its acknowledgement`;
    // Acknowledgements write tree heads, never legacy checkpoints.
    if (isLegacyAnchor(anchor) || anchor.at < held.at) return `${refused} (its tree head is older than the anchored one)`;
    const { store } = this.deps;
    const acknowledged = await store.queryAudit({ type: 'audit.integrity_acknowledged', newestFirst: true, limit: 100 });
    for (const e of acknowledged) {
      const index = e.leafIndex;
      if (e.data?.generation !== anchor.generation || index === undefined || index < 0 || index >= anchor.treeSize) continue;
      const [row] = await store.readAuditLeaves(index, 1);
      if (row?.leafIndex !== index || typeof row.leaf !== 'string') continue;
      let recorded: { type?: unknown; data?: { generation?: unknown } } | null;
      try {
        recorded = JSON.parse(row.leaf);
      } catch {
        continue;
      }
      if (recorded?.type !== 'audit.integrity_acknowledged' || recorded.data?.generation !== anchor.generation) continue;
      const proof = await inclusionProof(storeNodeSource(store), index, anchor.treeSize).catch(() => undefined);
      if (proof && verifyInclusion(index, anchor.treeSize, leafHash(row.leaf), proof, hexToBytes(anchor.rootHash))) return undefined;
    }
    return `${refused} (no acknowledgement of that generation in its tree)`;
  }

  /** Is the last entry this instance verified still stored as it was? If not, verification starts over from the anchor. */
  private async stillThere(tree: VerifiedTree): Promise<boolean> {
    if (tree.size === 0 || !tree.previous) return tree.size === 0;
    const [last] = await this.deps.store.readAuditLeaves(tree.size - 1, 1);
    return last !== undefined && last.leafIndex === tree.size - 1 && last.seq === tree.previous.seq && last.hash === tree.previous.hash;
  }

  /** The tree over every stored leaf hash as it is (after an acknowledgement), its nodes stored. */
  private async rebuildAccepted(): Promise<VerifiedTree> {
    const { store } = this.deps;
    const frontier = new MerkleFrontier();
    const { treeSize } = await store.auditHead();
    const nodes: { level: number; index: number; hash: Uint8Array }[] = [];
    let previous: VerifiedTree['previous'];
    for (let next = 0; next < treeSize; ) {
      const page = await store.readAuditLeaves(next, Math.min(PAGE, treeSize - next));
      if (page.length === 0) break;
      for (const e of page) {
        frontier.push(storedLeafHash(e), (id, hash) => nodes.push({ ...id, hash }));
        previous = { seq: e.seq, version: e.hashVersion ?? 1, hash: e.hash };
      }
      next += page.length;
    }
    // The accepted tree replaces the stored nodes where the log was rewritten (they are a cache of the
    // leaves); signed heads from before still fail `verify` there, which is the record of the rewrite.
    for (let i = 0; i < nodes.length; i += PAGE) await store.appendTreeNodes(nodes.slice(i, i + PAGE), { replace: true });
    return { size: frontier.size, root: frontier.root(), frontier: frontier.hashes(), ...(previous ? { previous } : {}) };
  }

  /** Fails closed: marks the halt first (signing stops even if the store is down), then raises the alert. */
  private async halt(generation: number, seq: number, reason: string): Promise<never> {
    const { store, clock, auditIntegrity } = this.deps;
    const at = clock.now();
    const known = auditIntegrity.failure;
    auditIntegrity.failure = { generation, seq, reason, at };
    // One alert per finding, not one per checkpoint tick.
    if (!known || known.generation !== generation || known.reason !== reason) {
      await store
        .transaction((tx) => tx.appendAudit({ at, type: 'alert.audit_integrity', actor: 'system', decision: 'error', data: { errorCode: 'audit_integrity_failed', generation, seq, reason } }))
        .catch(() => undefined);
    }
    throw new AirlockError('audit_integrity_failed', `The audit log does not extend its last signed checkpoint (${reason}); refusing to sign a checkpoint. Run \`airlock audit verify\`.`);
  }

  /**
   * Writes the anchor file, never moving it back: instances sharing the vault directory may race, so the
   * file is re-read and rewritten while it is behind this anchor (a few rounds; memory keeps the anchor anyway).
   */
  private async publish(anchor: AuditAnchor): Promise<void> {
    if (isNewerAnchor(anchor, this.anchor)) this.anchor = anchor;
    for (let round = 0; round < 3; round++) {
      const onDisk = await this.deps.auditAnchor.read().catch(() => undefined);
      if (onDisk && !isNewerAnchor(anchor, onDisk)) return;
      await this.deps.auditAnchor.write(anchor);
    }
  }
}

/**
 * Verifies the log, its signed tree heads and legacy checkpoints straight from a store (also used by the
 * offline CLI), in worker threads when `options.workers` says how they reach the store. Every signature is
 * checked against `publicKey` (from the vault, or given by the operator), never against the key a row
 * names. `anchors` (from outside the store) are checked like the heads they are.
 */
export async function verifyStoredAudit(store: Store, verifySchnorr: ServiceDeps['verifySchnorr'], publicKey: string, anchors: StoredAuditAnchor[] = [], options: ParallelVerifyOptions = {}): Promise<AuditVerifyResult> {
  const [treeHeads, checkpoints] = await Promise.all([store.listTreeHeads(), store.listCheckpoints()]);
  const known = new Set([...treeHeads.map((h) => `t${h.treeSize}:${h.signature}`), ...checkpoints.map((c) => `c${c.seq}:${c.signature}`)]);
  for (const a of anchors) {
    if (isLegacyAnchor(a)) {
      if (!known.has(`c${a.seq}:${a.signature}`)) checkpoints.push({ seq: a.seq, headHash: a.headHash, at: a.at, publicKey: a.publicKey, signature: a.signature });
      known.add(`c${a.seq}:${a.signature}`);
    } else {
      if (!known.has(`t${a.treeSize}:${a.signature}`)) treeHeads.push({ treeSize: a.treeSize, rootHash: a.rootHash, at: a.at, publicKey: a.publicKey, signature: a.signature });
      known.add(`t${a.treeSize}:${a.signature}`);
    }
  }
  const signatures = {
    publicKey,
    verifyTreeHead: (h: SignedTreeHead) => verifySchnorr(publicKey, treeHeadDigest(h), h.signature),
    verifyCheckpoint: (c: AuditCheckpoint) => verifySchnorr(publicKey, checkpointDigest(c), c.signature),
  };
  const { treeSize } = await store.auditHead();
  const result = await verifyTree(store, treeSize, treeHeads, checkpoints, signatures, options);
  // A row outside the tree verifies as nothing, yet a reader of the table would take it for an entry (a fake
  // `approval.granted` inserted with no leaf index; found by review): the log is not what was written.
  const [outside] = await store.auditEntriesOutsideTree(1);
  if (outside === undefined || result.firstBad) return result;
  return { ...result, ok: false, firstBad: { seq: outside, reason: `entry ${outside} is not in the tree (no leaf index, or a negative one): a row inserted outside the log (edited)` } };
}

/** How many heads, largest first, `signedTreeSize` checks before it gives up (each is a Schnorr verification). */
const SIGNED_SIZE_TRIES = 4;

/**
 * The size of the largest tree head signed by the audit key (`signatures.publicKey`), or 0: heads are read from
 * the store, so only a signature that checks out spares the leaves under one their data check. A head forged
 * larger than every real one costs a few verifications here and fails verification anyway.
 */
function signedTreeSize(treeHeads: readonly SignedTreeHead[], signatures: Signatures): number {
  const largest = [...treeHeads].sort((a, b) => b.treeSize - a.treeSize).slice(0, SIGNED_SIZE_TRIES);
  for (const head of largest) {
    try {
      if (head.publicKey === signatures.publicKey && Number.isSafeInteger(head.treeSize) && signatures.verifyTreeHead(head)) return head.treeSize;
    } catch {
      // A malformed signature: not signed (finishVerification reports it).
    }
  }
  return 0;
}

async function verifyTree(store: Store, treeSize: number, treeHeads: SignedTreeHead[], checkpoints: AuditCheckpoint[], signatures: Signatures, options: ParallelVerifyOptions): Promise<AuditVerifyResult> {
  // The leaves under the largest head the audit key signed are pinned by their hashes and that signature: their
  // data is not parsed again (the bulk of the log). Those after it must show their data is one canonical object.
  const canonicalDataFrom = signedTreeSize(treeHeads, signatures);
  // The workers split [0, treeSize) into ranges, and treeSize is the largest leaf index + 1: one row inserted at
  // leaf 10^12 would be 61 million ranges (out of memory). With leaves missing the pass on this thread below
  // reads only the rows there are and stops at the first gap, naming the missing entry.
  if (options.workers && treeSize >= (options.minEntriesForWorkers ?? 50_000) && (await store.countAuditLeaves()) === treeSize) {
    return verifyAuditInParallel(treeSize, treeHeads, checkpoints, signatures, { ...options, canonicalDataFrom });
  }
  const verifier = new AuditLogVerifier(treeHeads, checkpoints, undefined, { canonicalDataFrom });
  for (let next = 0; next < treeSize; ) {
    const page = await store.readAuditLeaves(next, PAGE);
    let ok = true;
    for (const e of page) if (!(ok = verifier.push(e))) break;
    if (!ok || page.length === 0) break;
    next = verifier.size;
    if (page.length < PAGE) break;
  }
  return verifier.finish(treeHeads, checkpoints, signatures);
}
