/**
 * Counts attempts per key over a sliding window and says when a key has had its `max`. Used for
 * authentication failures, keyed by (remote address, credential id) and consulted only after the presented
 * credential failed, so a genuine token always passes; and for unseal attempts, counted before each
 * argon2id run.
 */
export class AttemptLimiter {
  private readonly attempts = new Map<string, number[]>();
  private readonly max: number;
  private readonly windowMs: number;
  private readonly maxKeys: number;

  constructor(max: number, windowMs = 60_000, maxKeys = 10_000) {
    if (!(max >= 1 && windowMs >= 1 && maxKeys >= 1)) throw new RangeError('AttemptLimiter: max, windowMs and maxKeys must be positive');
    this.max = max;
    this.windowMs = windowMs;
    this.maxKeys = maxKeys;
  }

  /** Records one attempt. Only the newest `max` are kept: that is all `retryAfterMs` needs. */
  record(key: string, now: number): void {
    const list = this.live(key, now);
    list.push(now);
    if (list.length > this.max) list.shift();
    // Forgetting everything only lifts limits early; memory stays bounded whatever keys a flood invents.
    if (!this.attempts.has(key) && this.attempts.size >= this.maxKeys) this.attempts.clear();
    this.attempts.set(key, list);
  }

  /** 0 while the key is under its limit; else how long until its oldest counted attempt leaves the window. */
  retryAfterMs(key: string, now: number): number {
    const list = this.live(key, now);
    if (list.length === 0) this.attempts.delete(key);
    return list.length >= this.max ? list[0]! + this.windowMs - now : 0;
  }

  private live(key: string, now: number): number[] {
    return (this.attempts.get(key) ?? []).filter((t) => now - t < this.windowMs);
  }
}
