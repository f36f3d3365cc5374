/**
 * A token bucket per session: `perSecond` sustained, `burst` at once. In memory and per instance: N
 * instances on one PostgreSQL allow up to N times the rate. Policy `rate_limit` rules are the durable,
 * fleet-wide count; this bounds how fast one session can make the daemon work (and write audit entries).
 */
export class SessionRateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly perSecond: number;
  private readonly burst: number;
  private readonly maxSessions: number;

  constructor(opts: { perSecond: number; burst: number }, maxSessions = 100_000) {
    if (!(opts.perSecond >= 0 && (opts.perSecond === 0 || opts.burst >= 1))) throw new RangeError('SessionRateLimiter: perSecond >= 0 and burst >= 1');
    this.perSecond = opts.perSecond;
    this.burst = opts.burst;
    this.maxSessions = maxSessions;
  }

  /** Takes one token: 0 when the request may go ahead, else the milliseconds until a token is back. */
  take(sessionId: string, now: number): number {
    if (this.perSecond === 0) return 0;
    const prior = this.buckets.get(sessionId);
    const tokens = prior ? Math.min(this.burst, prior.tokens + ((now - prior.at) * this.perSecond) / 1000) : this.burst;
    if (tokens < 1) {
      this.buckets.set(sessionId, { tokens, at: now });
      return Math.ceil(((1 - tokens) * 1000) / this.perSecond);
    }
    if (!prior && this.buckets.size >= this.maxSessions) this.prune(now);
    this.buckets.set(sessionId, { tokens: tokens - 1, at: now });
    return 0;
  }

  /** Drops buckets that have refilled: forgetting them changes nothing. */
  private prune(now: number): void {
    for (const [id, b] of this.buckets) if (b.tokens + ((now - b.at) * this.perSecond) / 1000 >= this.burst) this.buckets.delete(id);
    if (this.buckets.size >= this.maxSessions) this.buckets.clear();
  }
}
