/**
 * The last signed checkpoint, kept outside the database (a file beside the vault). Someone who can write
 * the database can rewrite the chain and delete its checkpoints, but cannot move this anchor: the
 * checkpointer refuses to sign a chain that does not extend it.
 */
export interface AuditAnchor {
  /**
   * Bumped by each operator acknowledgement (`airlock audit acknowledge`): a newer generation may anchor
   * a different chain. Within one generation the anchor only moves forward.
   */
  generation: number;
  seq: number;
  headHash: string;
  at: number;
  /** x-only BIP-340 public key of the audit key that signed it (hex). */
  publicKey: string;
  /** BIP-340 signature over `checkpointDigest({seq, headHash, at})`: the anchor is a checkpoint. */
  signature: string;
}

export interface AuditAnchorStore {
  /** The stored anchor, undefined if there is none yet; throws if it exists but cannot be read. */
  read(): Promise<AuditAnchor | undefined>;
  /** Replaces the stored anchor atomically (a crash leaves the old or the new one). */
  write(anchor: AuditAnchor): Promise<void>;
}

/** Order of anchors: generation first, then seq. */
export function isNewerAnchor(a: Pick<AuditAnchor, 'generation' | 'seq'>, b: Pick<AuditAnchor, 'generation' | 'seq'> | undefined): boolean {
  return !b || a.generation > b.generation || (a.generation === b.generation && a.seq > b.seq);
}
