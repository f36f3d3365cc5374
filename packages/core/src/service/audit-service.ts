import { bytesToHex } from '@noble/hashes/utils.js';
import { AuditChainVerifier, checkpointDigest, type AuditVerifyResult } from '../audit/hash.ts';
import type { AuditCheckpoint } from '../audit/types.ts';
import type { Store } from '../ports/store.ts';
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

  /** Signs the current head if it moved since the last checkpoint. Returns the checkpoint, if any. */
  async checkpoint(): Promise<AuditCheckpoint | undefined> {
    const { store, clock, keys } = this.deps;
    const head = await store.auditHead();
    const last = await store.getMeta('last_checkpoint_seq');
    if (head.seq === 0 || (last !== undefined && Number(last) >= head.seq)) return undefined;
    const at = clock.now();
    const signature = await keys.signSchnorr(this.deps.auditKeyPath, checkpointDigest({ seq: head.seq, headHash: head.hash, at }));
    const cp: AuditCheckpoint = { seq: head.seq, headHash: head.hash, at, publicKey: await this.auditPublicKey(), signature: bytesToHex(signature) };
    try {
      await store.appendCheckpoint(cp);
    } catch {
      return undefined; // another instance checkpointed the same head first
    }
    await store.setMeta('last_checkpoint_seq', String(head.seq));
    return cp;
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
