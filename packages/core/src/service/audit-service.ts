import { bytesToHex } from '@noble/hashes/utils.js';
import { AuditChainVerifier, checkpointDigest, type AuditVerifyResult } from '../audit/hash.ts';
import type { AuditCheckpoint, AuditEntry, AuditEntryInput } from '../audit/types.ts';
import type { Store } from '../ports/store.ts';
import { AirlockError } from '../errors.ts';
import type { ServiceDeps } from './deps.ts';

const PAGE = 5000;

/** Signed checkpoints and whole-chain verification. */
export class AuditService {
  private readonly deps: ServiceDeps;
  private publicKey?: string;

  constructor(deps: ServiceDeps) {
    this.deps = deps;
  }

  /** x-only public key (hex) of the audit key; published so outsiders can verify checkpoints. */
  async auditPublicKey(): Promise<string> {
    this.publicKey ??= bytesToHex((await this.deps.keys.getPublicKey(this.deps.auditKeyPath)).slice(1));
    return this.publicKey;
  }

  /**
   * Signs the current head if it moved since the last checkpoint. The entries since the previous
   * checkpoint are verified first: the audit key never vouches for a segment it has not checked.
   */
  async checkpoint(): Promise<AuditCheckpoint | undefined> {
    const { store, clock, keys } = this.deps;
    const head = await store.auditHead();
    const last = await store.lastCheckpoint();
    if (head.seq === 0 || (last && last.seq >= head.seq)) return undefined;
    const verifier = new AuditChainVerifier([], last ? { seq: last.seq, hash: last.headHash } : undefined);
    for (let from = (last?.seq ?? 0) + 1; from <= head.seq; ) {
      const page = await store.readAudit(from, PAGE);
      if (page.length === 0) break;
      for (const e of page) if (!verifier.push(e)) throw new AirlockError('internal', 'The audit chain does not verify since the last checkpoint; refusing to sign a checkpoint. Run `airlock audit verify`.');
      from = page[page.length - 1]!.seq + 1;
    }
    const checked = verifier.finish([], () => true);
    if (checked.entries < head.seq || checked.headHash !== head.hash) throw new AirlockError('internal', 'The audit head moved or does not match its entries; refusing to sign a checkpoint.');
    const at = clock.now();
    const signature = await keys.signSchnorr(this.deps.auditKeyPath, checkpointDigest({ seq: head.seq, headHash: head.hash, at }));
    const cp: AuditCheckpoint = { seq: head.seq, headHash: head.hash, at, publicKey: await this.auditPublicKey(), signature: bytesToHex(signature) };
    try {
      await store.appendCheckpoint(cp);
    } catch {
      return undefined; // another instance checkpointed the same head first
    }
    return cp;
  }

  /** Appends one entry on its own (edge refusals that no service transaction carries). */
  async append(entry: AuditEntryInput): Promise<AuditEntry> {
    return this.deps.store.transaction((tx) => tx.appendAudit(entry));
  }

  async verify(expectedPublicKey?: string): Promise<AuditVerifyResult> {
    return verifyStoredAudit(this.deps.store, this.deps.verifySchnorr, expectedPublicKey ?? (await this.deps.store.getMeta('audit_public_key')));
  }
}

/** Verifies the chain and checkpoints straight from a store (also used by the offline CLI). */
export async function verifyStoredAudit(store: Store, verifySchnorr: ServiceDeps['verifySchnorr'], expectedPublicKey?: string): Promise<AuditVerifyResult> {
  const checkpoints = await store.listCheckpoints();
  const verifier = new AuditChainVerifier(checkpoints);
  let from = 1;
  for (;;) {
    const page = await store.readAudit(from, PAGE);
    let ok = true;
    for (const e of page) if (!(ok = verifier.push(e))) break;
    if (!ok || page.length < PAGE) break;
    from = page[page.length - 1]!.seq + 1;
  }
  return verifier.finish(checkpoints, (cp) => verifySchnorr(cp.publicKey, checkpointDigest(cp), cp.signature), expectedPublicKey);
}
