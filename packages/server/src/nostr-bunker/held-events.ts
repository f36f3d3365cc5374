/**
 * Events a session asked to sign that policy held for an operator: the approval each one opened, by session and
 * NIP-01 event id (the digest the approval signs). Asking again with the same event finds that approval instead of
 * opening another, and collects its signature once approved, as an HTTP client does with GET /v1/approvals/:id.
 *
 * In memory, like the connections (connections.ts): a restart forgets both, and a client must connect anew
 * anyway. Bounded: beyond MAX_HELD the oldest entry is forgotten (asking again for it opens a new approval).
 */
const MAX_HELD = 10_000;

export class HeldEvents {
  private readonly approvals = new Map<string, string>();
  private readonly asking = new Map<string, Promise<unknown>>();

  approvalFor(sessionId: string, eventId: string): string | undefined {
    return this.approvals.get(heldKey(sessionId, eventId));
  }

  hold(sessionId: string, eventId: string, approvalId: string): void {
    const key = heldKey(sessionId, eventId);
    this.approvals.delete(key);
    if (this.approvals.size >= MAX_HELD) this.approvals.delete(this.approvals.keys().next().value!);
    this.approvals.set(key, approvalId);
  }

  release(sessionId: string, eventId: string): void {
    this.approvals.delete(heldKey(sessionId, eventId));
  }

  forgetSession(sessionId: string): void {
    for (const key of this.approvals.keys()) if (key.startsWith(`${sessionId}:`)) this.approvals.delete(key);
  }

  /**
   * Runs `ask` for one event of one session at a time: a second ask of the same event (a client retrying before
   * the first answer) waits for the first, then finds the approval it opened instead of opening a second one.
   */
  async oneAtATime<T>(sessionId: string, eventId: string, ask: () => Promise<T>): Promise<T> {
    const key = heldKey(sessionId, eventId);
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
    return this.approvals.size;
  }
}

function heldKey(sessionId: string, eventId: string): string {
  return `${sessionId}:${eventId}`;
}
