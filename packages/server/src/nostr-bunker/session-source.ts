import { AirlockError, checkAncestorsUsable, checkUsable, readAncestors, type AgentAuth, type ApprovalRecord, type Clock, type Store } from '@airlock/core';

/**
 * What the bunker (and the NWC service) read from the store per request. Called: loads a session and its agent
 * and throws why it is not usable (revoked, expired, frozen, retired).
 */
export interface SessionSource {
  (sessionId: string): Promise<AgentAuth>;
  /**
   * One of an agent's approvals, as the agent itself may read it (GET /v1/approvals/:id): undefined when there
   * is none or it is another agent's. How the bunker hands over the signature of an event an operator approved.
   */
  approval?(approvalId: string, agentId: string): Promise<ApprovalRecord | undefined>;
  /**
   * The session and its agent as stored, usable or not (undefined when either is gone): the bunker sends a
   * `sign_event` with a dead credential to the signing transaction, which refuses it and keeps the refusal under
   * the request's Idempotency-Key.
   */
  unusable?(sessionId: string): Promise<AgentAuth | undefined>;
}

/**
 * Read from the store on every bunker request, as the HTTP routes do for session tokens: a revoke, an expiry
 * or a freeze (on any instance) stops the very next NIP-46 request. The port's signing transaction reads them
 * again before it signs.
 */
export function storeSessionSource(store: Store, clock: Clock): SessionSource {
  const load = async (sessionId: string): Promise<AgentAuth> => {
    const session = await store.getSession(sessionId);
    const agent = session ? await store.getAgent(session.agentId) : undefined;
    if (!session || !agent) throw new AirlockError('not_found', 'No such session.');
    const now = clock.now();
    checkUsable(agent, session, now);
    // A derived session stops with any session above it.
    checkAncestorsUsable(await readAncestors(store, session), now);
    return { agent, session };
  };
  const approval = async (approvalId: string, agentId: string): Promise<ApprovalRecord | undefined> => {
    const record = await store.getApproval(approvalId);
    return record?.agentId === agentId ? record : undefined;
  };
  const unusable = async (sessionId: string): Promise<AgentAuth | undefined> => {
    const session = await store.getSession(sessionId);
    const agent = session ? await store.getAgent(session.agentId) : undefined;
    return session && agent ? { agent, session } : undefined;
  };
  return Object.assign(load, { approval, unusable });
}
