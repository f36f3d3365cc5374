/**
 * Events a session asked to sign that policy held for an operator: the approval each one opened, by session and
 * NIP-01 event id (the digest the approval signs). Asking again with the same event finds that approval instead of
 * opening another, and collects its signature once approved, as an HTTP client does with GET /v1/approvals/:id.
 *
 * In memory, like the connections (connections.ts): a restart forgets both, and a client must connect anew
 * anyway. Bounded per session and in all: a session beyond its own bound forgets its own oldest entry, and when
 * all sessions together reach theirs, the session holding the most gives up its oldest. So a client that floods
 * held events pushes out only its own: another session's entry is forgotten only once every session holds as many
 * as it does (a single shared bound let one connected client of another agent push this session's entries out, and
 * its next ask opened a second approval; found by review). Asking again for a forgotten event opens a new approval.
 */
export const HELD_LIMITS = { total: 10_000, perSession: 1_000 };

export class HeldEvents {
  /** Session id -> event id -> approval id, each in the order held. */
  private readonly bySession = new Map<string, Map<string, string>>();
  private held = 0;
  private readonly asking = new Map<string, Promise<unknown>>();
  private readonly limits: { total: number; perSession: number };

  constructor(limits = HELD_LIMITS) {
    this.limits = limits;
  }

  approvalFor(sessionId: string, eventId: string): string | undefined {
    return this.bySession.get(sessionId)?.get(eventId);
  }

  hold(sessionId: string, eventId: string, approvalId: string): void {
    const events = this.bySession.get(sessionId) ?? new Map<string, string>();
    if (events.delete(eventId)) this.held -= 1;
    if (events.size >= this.limits.perSession) this.dropOldest(sessionId, events);
    else if (this.held >= this.limits.total) this.dropOldest(...this.largest());
    events.set(eventId, approvalId);
    // (Re-)attached after any eviction: dropping this session's last entry detached its map (found by review: the
    // new entry went into the detached map, was lost, and the count drifted).
    this.bySession.set(sessionId, events);
    this.held += 1;
  }

  release(sessionId: string, eventId: string): void {
    const events = this.bySession.get(sessionId);
    if (!events?.delete(eventId)) return;
    this.held -= 1;
    if (events.size === 0) this.bySession.delete(sessionId);
  }

  forgetSession(sessionId: string): void {
    this.held -= this.bySession.get(sessionId)?.size ?? 0;
    this.bySession.delete(sessionId);
  }

  /** The session holding the most events (at most as many sessions as events to look through). */
  private largest(): [string, Map<string, string>] {
    let found: [string, Map<string, string>] | undefined;
    for (const entry of this.bySession) if (!found || entry[1].size > found[1].size) found = entry;
    return found!;
  }

  private dropOldest(sessionId: string, events: Map<string, string>): void {
    events.delete(events.keys().next().value!);
    this.held -= 1;
    if (events.size === 0) this.bySession.delete(sessionId);
  }

  /**
   * Runs `ask` for one event of one session at a time: a second ask of the same event (a client retrying before
   * the first answer) waits for the first, then finds the approval it opened instead of opening a second one.
   */
  async oneAtATime<T>(sessionId: string, eventId: string, ask: () => Promise<T>): Promise<T> {
    const key = `${sessionId}:${eventId}`;
    for (let prior = this.asking.get(key); prior; prior = this.asking.get(key)) await prior.catch(() => undefined);
    const current = ask();
    this.asking.set(key, current);
    try {
      return await current;
    } finally {
      if (this.asking.get(key) === current) this.asking.delete(key);
    }
  }

  get size(): number {
    return this.held;
  }
}
