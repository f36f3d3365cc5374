/**
 * A token bucket per session: `perSecond` sustained, `burst` at once. In memory and per instance: N
 * instances on one PostgreSQL allow up to N times the rate. Policy `rate_limit` rules are the durable,
 * fleet-wide count; this bounds how fast one session can make the daemon work (and write audit entries).
 * A derived session's request also takes from every ancestor's bucket (`takeAll`, http/auth.ts), once the
 * session is known usable: a dead credential takes from its own bucket only.
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

  /** False when the limit is off (`perSecond` 0): nothing is ever refused. */
  get enabled(): boolean {
    return this.perSecond > 0;
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

  /**
   * Takes one token from each of these buckets, or none: 0 and `undefined` when the request may go ahead, else
   * the milliseconds until every bucket has a token again and the first key (in the order given) that has none.
   * A derived session's request takes from its own bucket and from each ancestor's, so a session and everything
   * derived from it share the session's rate.
   */
  takeAll(keys: readonly string[], now: number): { wait: number; key?: string } {
    if (this.perSecond === 0 || keys.length === 0) return { wait: 0 };
    const levels = keys.map((key) => {
      const prior = this.buckets.get(key);
      return { key, prior, tokens: prior ? Math.min(this.burst, prior.tokens + ((now - prior.at) * this.perSecond) / 1000) : this.burst };
    });
    const empty = levels.filter((l) => l.tokens < 1);
    if (empty.length > 0) {
      for (const l of empty) this.buckets.set(l.key, { tokens: l.tokens, at: now });
      const wait = Math.max(...empty.map((l) => Math.ceil(((1 - l.tokens) * 1000) / this.perSecond)));
      return { wait, key: empty[0]!.key };
    }
    for (const l of levels) {
      if (!l.prior && this.buckets.size >= this.maxSessions) this.prune(now);
      this.buckets.set(l.key, { tokens: l.tokens - 1, at: now });
    }
    return { wait: 0 };
  }

  /**
   * Returns a token just taken from this bucket, for a request refused by a bucket taken after it (a
   * derived session's ancestors, taken once the session is known usable: http/auth.ts), so that a refused
   * request costs no bucket a token, as with `takeAll`.
   */
  giveBack(key: string, now: number): void {
    const prior = this.buckets.get(key);
    if (this.perSecond === 0 || !prior) return;
    this.buckets.set(key, { tokens: Math.min(this.burst, prior.tokens + ((now - prior.at) * this.perSecond) / 1000 + 1), at: now });
  }

  /** Drops buckets that have refilled: forgetting them changes nothing. */
  private prune(now: number): void {
    for (const [id, b] of this.buckets) if (b.tokens + ((now - b.at) * this.perSecond) / 1000 >= this.burst) this.buckets.delete(id);
    if (this.buckets.size >= this.maxSessions) this.buckets.clear();
  }
}

/**
 * The ancestor ids of derived sessions (nearest first), by session id, as the rate limiter needs them on every
 * request: a session's parent never changes, so an entry never goes stale; bounded, least recently used out.
 * Filled from a store read on the first request of a derived session this instance sees, or at derivation.
 */
export class SessionAncestry {
  readonly #entries = new Map<string, readonly string[]>();
  readonly #capacity: number;

  constructor(capacity = 100_000) {
    this.#capacity = capacity;
  }

  get(sessionId: string): readonly string[] | undefined {
    const ids = this.#entries.get(sessionId);
    if (ids) {
      this.#entries.delete(sessionId);
      this.#entries.set(sessionId, ids);
    }
    return ids;
  }

  set(sessionId: string, ancestorIds: readonly string[]): void {
    this.#entries.delete(sessionId);
    this.#entries.set(sessionId, [...ancestorIds]);
    if (this.#entries.size > this.#capacity) this.#entries.delete(this.#entries.keys().next().value!);
  }
}
