import { AirlockError, checkAncestorsUsable, checkUsable, readAncestors, type AgentAuth, type Clock, type Store } from '@airlock/core';

/** Loads a session and its agent and throws why it is not usable (revoked, expired, frozen, retired). */
export type SessionSource = (sessionId: string) => Promise<AgentAuth>;

/**
 * Read from the store on every bunker request, as the HTTP routes do for session tokens: a revoke, an expiry
 * or a freeze (on any instance) stops the very next NIP-46 request. The port's signing transaction reads them
 * again before it signs.
 */
export function storeSessionSource(store: Store, clock: Clock): SessionSource {
  return async (sessionId) => {
    const session = await store.getSession(sessionId);
    const agent = session ? await store.getAgent(session.agentId) : undefined;
    if (!session || !agent) throw new AirlockError('not_found', 'No such session.');
    const now = clock.now();
    checkUsable(agent, session, now);
    // A derived session stops with any session above it.
    checkAncestorsUsable(await readAncestors(store, session), now);
    return { agent, session };
  };
}
