import type { AgentAuth } from './signing-service.ts';

/**
 * Recently authenticated session credentials (session and agent rows, by session id), for the signing routes
 * only: a signing request authenticated from here is decoded with what the cache says, and its transaction
 * then reads the session and the agent once, authoritatively, before anything is reserved (`recheck`). So a
 * stale entry can never sign: a freeze, revoke or expiry committed by any instance refuses the very next
 * request, and the refusal drops the entry. The cache only spares the two reads that used to run before the
 * transaction (two implicit read transactions per request).
 *
 * Only usable credentials are cached. Freeze, retire and revoke on this instance drop entries at once, so this
 * instance answers them like an uncached request (`auth.refused` recorded before any decode); an expired session
 * is refused from the cached row and then re-read. Bounded, least recently used out first.
 */
export class CredentialCache {
  // Insertion order of a Map is its LRU order: a hit is deleted and re-inserted at the end.
  readonly #entries = new Map<string, AgentAuth>();
  readonly #capacity: number;

  constructor(capacity = 10_000) {
    this.#capacity = capacity;
  }

  get(sessionId: string): AgentAuth | undefined {
    const auth = this.#entries.get(sessionId);
    if (auth) {
      this.#entries.delete(sessionId);
      this.#entries.set(sessionId, auth);
    }
    return auth;
  }

  set(auth: AgentAuth): void {
    this.#entries.delete(auth.session.id);
    this.#entries.set(auth.session.id, auth);
    if (this.#entries.size > this.#capacity) this.#entries.delete(this.#entries.keys().next().value!);
  }

  forgetSession(sessionId: string): void {
    this.#entries.delete(sessionId);
  }

  /** Every session of the agent (a freeze or retire). Linear in the cache size: operator actions are rare. */
  forgetAgent(agentId: string): void {
    for (const [sessionId, auth] of this.#entries) if (auth.agent.id === agentId) this.#entries.delete(sessionId);
  }

  get size(): number {
    return this.#entries.size;
  }
}
