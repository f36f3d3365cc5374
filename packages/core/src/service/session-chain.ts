import { AirlockError } from '../errors.ts';
import type { Session, StoreTx } from '../ports/store.ts';

/**
 * How far below an operator-issued session a chain of derived sessions may reach (a child is depth 1). Each
 * level costs every request of that chain one more session read and ledger series, so the chain is short.
 */
export const MAX_SESSION_DEPTH = 4;

/** Anything that reads sessions by id: a transaction (authoritative) or the store (ancestry never changes). */
export type SessionReader = Pick<StoreTx, 'getSession'>;

/**
 * The ancestors of a session, nearest first: none for a session an operator issued (no read at all). A parent
 * that cannot be read, a cycle or a chain deeper than MAX_SESSION_DEPTH (none of which the service writes)
 * fails closed: the chain is unusable.
 */
export async function readAncestors(reader: SessionReader, session: Pick<Session, 'id' | 'parentId'>): Promise<Session[]> {
  const ancestors: Session[] = [];
  const seen = new Set([session.id]);
  let parentId = session.parentId;
  while (parentId !== undefined) {
    if (seen.has(parentId) || ancestors.length >= MAX_SESSION_DEPTH) throw new AirlockError('session_revoked', 'The session derives from an invalid chain of sessions.');
    const parent = await reader.getSession(parentId);
    if (!parent) throw new AirlockError('session_revoked', 'A session this one derives from no longer exists.');
    ancestors.push(parent);
    seen.add(parentId);
    parentId = parent.parentId;
  }
  return ancestors;
}

/** The ids of a session's ancestors, nearest first (what its charges also go to). */
export async function ancestorIdsOf(reader: SessionReader, sessionId: string): Promise<string[]> {
  const session = await reader.getSession(sessionId);
  return session ? (await readAncestors(reader, session)).map((s) => s.id) : [];
}

/**
 * A derived session is usable only while every session above it is: revoking or expiring a parent stops every
 * descendant at once, even one created concurrently with the revocation (which a cascading revoke may miss).
 */
export function checkAncestorsUsable(ancestors: readonly Session[], now: number): void {
  for (const a of ancestors) {
    if (a.revokedAt !== undefined) throw new AirlockError('session_revoked', 'A session this one derives from was revoked.');
    if (a.expiresAt <= now) throw new AirlockError('session_expired', 'A session this one derives from has expired.');
  }
}
