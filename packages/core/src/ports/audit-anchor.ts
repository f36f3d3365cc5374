import type { AuditCheckpoint, SignedTreeHead } from '../audit/types.ts';

/**
 * The last signed tree head, kept outside the database (a file beside the vault). Someone who can write
 * the database can rewrite the log and delete its signed heads, but cannot move this anchor: the
 * checkpointer refuses to sign a tree that is not consistent with it (RFC 9162 consistency proof).
 */
export interface AuditAnchor extends SignedTreeHead {
  /**
   * Bumped by each operator acknowledgement (`airlock audit acknowledge`): a newer generation may anchor
   * a different log. Within one generation the anchor only grows.
   */
  generation: number;
}

/** An anchor file written before signed tree heads: a signed hash-chain head. Read, never written. */
export interface LegacyAuditAnchor extends AuditCheckpoint {
  generation: number;
}

export type StoredAuditAnchor = AuditAnchor | LegacyAuditAnchor;

/**
 * The largest generation an anchor may hold: the next acknowledgement adds 1, which must still be an exact
 * JS number (a file at 2^53 - 1 made acknowledge write 2^53, which no reader accepts; found by review).
 */
export const MAX_ANCHOR_GENERATION = Number.MAX_SAFE_INTEGER - 1;

export function isAnchorGeneration(g: unknown): g is number {
  return Number.isSafeInteger(g) && (g as number) >= 0 && (g as number) <= MAX_ANCHOR_GENERATION;
}

export function isLegacyAnchor(a: StoredAuditAnchor): a is LegacyAuditAnchor {
  return !('treeSize' in a);
}

/** Entries the anchor covers. */
export function anchorSize(a: StoredAuditAnchor): number {
  return isLegacyAnchor(a) ? a.seq : a.treeSize;
}

export interface AuditAnchorStore {
  /** The stored anchor, undefined if there is none yet; throws if it exists but cannot be read. */
  read(): Promise<StoredAuditAnchor | undefined>;
  /** Replaces the stored anchor atomically (a crash leaves the old or the new one). */
  write(anchor: AuditAnchor): Promise<void>;
}

/**
 * Order of anchors: generation first, then size. The generation is not signed (only the head is): a running
 * instance adopts a newer one only with the acknowledgement that made it (AuditService.checkIntegrity).
 */
export function isNewerAnchor(a: StoredAuditAnchor, b: StoredAuditAnchor | undefined): boolean {
  return !b || a.generation > b.generation || (a.generation === b.generation && anchorSize(a) > anchorSize(b));
}
