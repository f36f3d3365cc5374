import { bytesToHex } from '@noble/hashes/utils.js';
import { AuditChainVerifier, checkpointDigest, hashAuditEntry, type AuditVerifyResult } from '../audit/hash.ts';
import type { AuditCheckpoint, AuditEntry, AuditEntryInput } from '../audit/types.ts';
import { isNewerAnchor, type AuditAnchor } from '../ports/audit-anchor.ts';
import type { Store } from '../ports/store.ts';
import { AirlockError } from '../errors.ts';
import { assertAuditIntact } from './audit-integrity.ts';
import type { ServiceDeps } from './deps.ts';

const PAGE = 5000;

/** A chain position: entries 1..seq, the newest with hash `hash`. */
interface ChainPoint {
  seq: number;
  hash: string;
}

export interface AcknowledgeResult {
  anchor: Pick<AuditAnchor, 'generation' | 'seq' | 'headHash'>;
  previous?: Pick<AuditAnchor, 'generation' | 'seq' | 'headHash'>;
  failure?: { seq: number; reason: string };
}

/**
 * Signed checkpoints, the anchor that pins them outside the database, and whole-chain verification.
 *
 * The anchor is the last checkpoint this service signed (or adopted from the anchor file, written by
 * another instance). Before each checkpoint, and at start, the chain in the store must still contain the
 * anchored entry and the segment after it must verify; otherwise the service appends an
 * `alert.audit_integrity` entry, sets `deps.auditIntegrity.failure` (every signing path then refuses with
 * `audit_integrity_failed`) and signs nothing until an operator acknowledges.
 */
export class AuditService {
  private readonly deps: ServiceDeps;
  private publicKey?: string;
  private anchor?: AuditAnchor;

  constructor(deps: ServiceDeps) {
    this.deps = deps;
  }

  /** x-only public key (hex) of the audit key, derived from the vault; published so outsiders can verify checkpoints. */
  async auditPublicKey(): Promise<string> {
    this.publicKey ??= bytesToHex((await this.deps.keys.getPublicKey(this.deps.auditKeyPath)).slice(1));
    return this.publicKey;
  }

  /**
   * Checks that the store's chain extends the anchor: the anchored entry is there with the anchored hash
   * and every later entry verifies. Returns the verified head (and the anchor it extends). Throws
   * `audit_integrity_failed` (after raising the alert once) when it does not.
   */
  async checkIntegrity(): Promise<{ anchor?: AuditAnchor; head: ChainPoint }> {
    const { store, auditAnchor, auditIntegrity } = this.deps;
    const publicKey = await this.auditPublicKey();
    let onDisk: AuditAnchor | undefined;
    try {
      onDisk = await auditAnchor.read();
    } catch {
      return this.halt(this.anchor?.generation ?? 0, this.anchor?.seq ?? 0, 'the anchor file beside the vault is unreadable');
    }
    // The file is outside the database, but it is only trusted once the vault's audit key vouches for it.
    if (onDisk && !this.signedByAuditKey(onDisk, publicKey)) {
      return this.halt(onDisk.generation, onDisk.seq, 'the anchor file is not signed by this vault\'s audit key');
    }
    let anchor = onDisk && isNewerAnchor(onDisk, this.anchor) ? onDisk : this.anchor;
    const failure = auditIntegrity.failure;
    if (failure && (!anchor || anchor.generation <= failure.generation)) assertAuditIntact(auditIntegrity);
    if (!anchor) {
      // No anchor yet (a new vault, the first start of a version that keeps one, or a deleted file): trust
      // the newest checkpoint in the store that the audit key provably signed, else the first entry.
      const last = await store.lastCheckpoint();
      if (last && this.signedByAuditKey(last, publicKey)) anchor = { ...last, generation: 0 };
    }

    const head = await store.auditHead();
    let start: ChainPoint | undefined;
    if (anchor) {
      if (head.seq < anchor.seq) return this.halt(anchor.generation, head.seq + 1, `log truncated: the anchor covers ${anchor.seq} entries, the log has ${head.seq}`);
      const [entry] = await store.readAudit(anchor.seq, 1);
      // Recomputed, not just compared: the anchored entry's content must still produce the anchored hash.
      if (!entry || entry.seq !== anchor.seq || entry.hash !== anchor.headHash || hashAuditEntry(entry.prevHash, entry.seq, entry) !== anchor.headHash) {
        return this.halt(anchor.generation, anchor.seq, `entry ${anchor.seq} does not match the anchored checkpoint`);
      }
      start = { seq: anchor.seq, hash: anchor.headHash };
    }
    const bad = await this.verifySegment(start, head);
    if (bad) return this.halt(anchor?.generation ?? 0, bad.seq, bad.reason);
    if (anchor) this.anchor = anchor;
    if (failure) auditIntegrity.failure = undefined; // a newer generation (an acknowledgement) was adopted
    return { ...(anchor ? { anchor } : {}), head };
  }

  /** Appends one entry on its own (edge refusals that no service transaction carries). */
  async append(entry: AuditEntryInput): Promise<AuditEntry> {
    return this.deps.store.transaction((tx) => tx.appendAudit(entry));
  }

  /**
   * Signs the current head if it moved past the anchor, after checkIntegrity(): the audit key never vouches
   * for a segment it has not checked, nor for a chain that does not extend what it signed before.
   */
  async checkpoint(): Promise<AuditCheckpoint | undefined> {
    const { store } = this.deps;
    const { anchor, head } = await this.checkIntegrity();
    if (head.seq === 0 || (anchor && anchor.seq >= head.seq)) return undefined;
    const cp = await this.sign(head);
    const stored = await store.appendCheckpoint(cp).then(
      () => true,
      () => false, // another instance checkpointed the same head first; our signature still anchors it
    );
    await this.publish({ ...cp, generation: anchor?.generation ?? 0 });
    return stored ? cp : undefined;
  }

  /**
   * The operator accepts the chain as it is now (after `airlock audit verify`, when restoring the database
   * is not possible): records the acknowledgement in the log, signs the new head and anchors it under a new
   * generation, which lifts the signing halt. Entries that do not verify still fail `verify`; a
   * self-consistent rewrite is recorded from then on only by the acknowledgement entry (and by exports).
   */
  async acknowledge(by: string): Promise<AcknowledgeResult> {
    const { store, clock, auditAnchor, auditIntegrity } = this.deps;
    if (!auditIntegrity.failure) {
      try {
        await this.checkIntegrity();
        throw new AirlockError('conflict', 'Nothing to acknowledge: the audit log extends its last signed checkpoint.');
      } catch (e) {
        if (!(e instanceof AirlockError) || e.code !== 'audit_integrity_failed') throw e;
      }
    }
    const failure = auditIntegrity.failure;
    const onDisk = await auditAnchor.read().catch(() => undefined);
    const previous = onDisk && isNewerAnchor(onDisk, this.anchor) ? onDisk : this.anchor;
    const generation = Math.max(previous?.generation ?? 0, failure?.generation ?? 0) + 1;
    const brief = (a: AuditAnchor) => ({ generation: a.generation, seq: a.seq, headHash: a.headHash });
    await store.transaction((tx) =>
      tx.appendAudit({
        at: clock.now(),
        type: 'audit.integrity_acknowledged',
        actor: 'operator',
        data: { by, generation, ...(previous ? { previousAnchor: brief(previous) } : {}), ...(failure ? { failure: { seq: failure.seq, reason: failure.reason } } : {}) },
      }),
    );
    const head = await store.auditHead();
    const [entry] = await store.readAudit(head.seq, 1);
    if (!entry || hashAuditEntry(entry.prevHash, entry.seq, entry) !== head.hash) {
      throw new AirlockError('internal', 'The newest audit entry does not match its hash; restore the database instead.');
    }
    const cp = await this.sign(head);
    await store.appendCheckpoint(cp).catch(() => undefined);
    const anchor: AuditAnchor = { ...cp, generation };
    await auditAnchor.write(anchor);
    this.anchor = anchor;
    auditIntegrity.failure = undefined;
    return { anchor: brief(anchor), ...(previous ? { previous: brief(previous) } : {}), ...(failure ? { failure: { seq: failure.seq, reason: failure.reason } } : {}) };
  }

  /** Verifies against the vault's audit key (never a key read from the store), the anchor included. */
  async verify(): Promise<AuditVerifyResult> {
    const publicKey = await this.auditPublicKey();
    const onDisk = await this.deps.auditAnchor.read().catch(() => undefined);
    const anchors = [this.anchor, onDisk].filter((a): a is AuditAnchor => a !== undefined);
    return verifyStoredAudit(this.deps.store, this.deps.verifySchnorr, publicKey, anchors);
  }

  private async sign(head: ChainPoint): Promise<AuditCheckpoint> {
    const at = this.deps.clock.now();
    const signature = await this.deps.keys.signSchnorr(this.deps.auditKeyPath, checkpointDigest({ seq: head.seq, headHash: head.hash, at }));
    return { seq: head.seq, headHash: head.hash, at, publicKey: await this.auditPublicKey(), signature: bytesToHex(signature) };
  }

  private signedByAuditKey(cp: Pick<AuditCheckpoint, 'seq' | 'headHash' | 'at' | 'publicKey' | 'signature'>, publicKey: string): boolean {
    return cp.publicKey === publicKey && this.deps.verifySchnorr(publicKey, checkpointDigest(cp), cp.signature);
  }

  /** The first problem in the entries after `start` up to `head`, or undefined when they verify. */
  private async verifySegment(start: ChainPoint | undefined, head: ChainPoint): Promise<{ seq: number; reason: string } | undefined> {
    const verifier = new AuditChainVerifier([], start);
    for (let from = (start?.seq ?? 0) + 1; from <= head.seq; ) {
      const page = await this.deps.store.readAudit(from, PAGE);
      if (page.length === 0) break;
      // Entries appended after auditHead() was read are the next checkpoint's business.
      for (const e of page) if (e.seq <= head.seq && !verifier.push(e)) return verifier.finish([], () => true).firstBad;
      from = page[page.length - 1]!.seq + 1;
    }
    // `entries` counts from the start: it is the seq of the last entry that verified.
    const checked = verifier.finish([], () => true);
    if (head.seq > 0 && (checked.entries < head.seq || checked.headHash !== head.hash)) {
      return { seq: Math.min(head.seq, checked.entries + 1), reason: 'the audit head does not match its entries' };
    }
    return undefined;
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
 * Verifies the chain and checkpoints straight from a store (also used by the offline CLI). Every checkpoint
 * signature is checked against `publicKey` (from the vault, or given by the operator), never against the
 * key a checkpoint row names. `anchors` (from outside the store) are checked like checkpoints.
 */
export async function verifyStoredAudit(store: Store, verifySchnorr: ServiceDeps['verifySchnorr'], publicKey: string, anchors: AuditCheckpoint[] = []): Promise<AuditVerifyResult> {
  const checkpoints = await store.listCheckpoints();
  const known = new Set(checkpoints.map((c) => `${c.seq}:${c.signature}`));
  for (const a of anchors) {
    const key = `${a.seq}:${a.signature}`;
    if (known.has(key)) continue;
    known.add(key);
    checkpoints.push({ seq: a.seq, headHash: a.headHash, at: a.at, publicKey: a.publicKey, signature: a.signature });
  }
  const verifier = new AuditChainVerifier(checkpoints);
  let from = 1;
  for (;;) {
    const page = await store.readAudit(from, PAGE);
    let ok = true;
    for (const e of page) if (!(ok = verifier.push(e))) break;
    if (!ok || page.length < PAGE) break;
    from = page[page.length - 1]!.seq + 1;
  }
  return verifier.finish(checkpoints, (cp) => verifySchnorr(publicKey, checkpointDigest(cp), cp.signature), publicKey);
}
