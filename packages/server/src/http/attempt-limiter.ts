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
  /** Until then every key is at its limit (makeRoom found no slot): new keys are not taken, without a sweep. */
  private fullUntil = 0;

  constructor(max: number, windowMs = 60_000, maxKeys = 10_000) {
    if (!(max >= 1 && windowMs >= 1 && maxKeys >= 1)) throw new RangeError('AttemptLimiter: max, windowMs and maxKeys must be positive');
    this.max = max;
    this.windowMs = windowMs;
    this.maxKeys = maxKeys;
  }

  /**
   * Records one attempt. Only the newest `max` are kept: that is all `retryAfterMs` needs.
   *
   * Memory stays bounded whatever keys a flood invents, without lifting anyone's limit: a new key that finds the
   * map full makes room by forgetting keys whose attempts all left the window, then keys under their limit (a
   * limit only lifts early for keys not at it yet). A map full of keys at their limit does not take the new key:
   * its attempts go uncounted until one of them expires, which only ever spares a credential that failed (a
   * genuine one never consults this). The sweep is O(keys) and runs only when the map is full.
   */
  record(key: string, now: number): void {
    const list = this.live(key, now);
    list.push(now);
    if (list.length > this.max) list.shift();
    if (!this.attempts.has(key) && this.attempts.size >= this.maxKeys && !this.makeRoom(now)) return;
    this.attempts.set(key, list);
  }

  /** Frees at least one slot if it can (see record); false when every key is at its limit. */
  private makeRoom(now: number): boolean {
    // Nothing can have expired before this: a full map of limited keys costs no sweep per new key.
    if (now < this.fullUntil) return false;
    for (const [k, list] of this.attempts) if (now - list[list.length - 1]! >= this.windowMs) this.attempts.delete(k);
    if (this.attempts.size < this.maxKeys) return true;
    let nextExpiry = Infinity;
    for (const [k, list] of this.attempts) {
      // A stored list is in time order and holds at most `max`: at its limit when full and its oldest still counts.
      if (list.length < this.max || now - list[0]! >= this.windowMs) this.attempts.delete(k);
      else nextExpiry = Math.min(nextExpiry, list[0]! + this.windowMs);
    }
    if (this.attempts.size < this.maxKeys) return true;
    this.fullUntil = nextExpiry;
    return false;
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
