import { refusalCountEntry, type AccessPrincipal, type AuditEntryInput, type RefusalCount } from '@airlock/core';

/**
 * Refusals that must not cost one audit entry each (bad or missing tokens, foreign origins, a session over
 * its rate): counted in memory per source and written as one entry per source per window. A flood costs
 * one entry per source per minute; memory is bounded by `maxKeys` (beyond it, new sources share `*`).
 *
 * Windows are closed lazily (`flushDue` runs on every request) and by the daemon's timer and shutdown
 * (`flushAll`), so a burst followed by silence is still recorded.
 */
export class RefusalTally {
  private readonly open = new Map<string, RefusalCount>();
  private readonly write: (entry: AuditEntryInput) => Promise<unknown>;
  private readonly windowMs: number;
  private readonly maxKeys: number;
  private earliestEnd = Number.POSITIVE_INFINITY;

  constructor(write: (entry: AuditEntryInput) => Promise<unknown>, windowMs = 60_000, maxKeys = 10_000) {
    if (!(windowMs >= 1 && maxKeys >= 1)) throw new RangeError('RefusalTally: windowMs and maxKeys must be positive');
    this.write = write;
    this.windowMs = windowMs;
    this.maxKeys = maxKeys;
  }

  /** Counts one refusal. A session's refusals are counted under the session, anything else under the address. */
  count(type: RefusalCount['type'], source: string, code: string, now: number, principal?: AccessPrincipal): void {
    let key = principal?.kind === 'agent' ? `${type} ${principal.sessionId}` : `${type} ${source}`;
    if (!this.open.has(key) && this.open.size >= this.maxKeys) {
      key = `${type} *`;
      source = '*';
      principal = undefined;
    }
    let tally = this.open.get(key);
    if (!tally) {
      tally = { type, source, windowStartMs: now, windowMs: this.windowMs, codes: {}, ...(principal ? { principal } : {}) };
      this.open.set(key, tally);
      this.earliestEnd = Math.min(this.earliestEnd, now + this.windowMs);
    }
    tally.codes[code] = (tally.codes[code] ?? 0) + 1;
  }

  /** Writes every window that has ended. Cheap when none has. */
  async flushDue(now: number): Promise<void> {
    if (now < this.earliestEnd) return;
    await this.flush(now, (t) => t.windowStartMs + t.windowMs <= now);
  }

  /** Writes every open window (shutdown). */
  async flushAll(now: number): Promise<void> {
    await this.flush(now, () => true);
  }

  private async flush(now: number, due: (t: RefusalCount) => boolean): Promise<void> {
    const closing: RefusalCount[] = [];
    // Taken out before any await: a concurrent flush never writes the same window twice.
    for (const [key, t] of this.open) {
      if (due(t)) {
        closing.push(t);
        this.open.delete(key);
      }
    }
    this.earliestEnd = Number.POSITIVE_INFINITY;
    for (const t of this.open.values()) this.earliestEnd = Math.min(this.earliestEnd, t.windowStartMs + t.windowMs);
    for (const t of closing) await this.write(refusalCountEntry(now, t));
  }
}
