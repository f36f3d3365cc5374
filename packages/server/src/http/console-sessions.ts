import { createHash, randomBytes } from 'node:crypto';

/** The cookie that carries a console session id (HttpOnly, SameSite=Strict, Path=/). */
export const CONSOLE_COOKIE = 'airlock_console';
/** The header every console request carries: a page on another origin cannot add it without a CORS preflight we never grant. */
export const CONSOLE_HEADER = 'x-airlock-console';

export interface ConsoleSessionOptions {
  /** Absolute lifetime of a session from login (default 8 h). */
  ttlMs?: number;
  /** A session unused for this long ends (default 30 min). */
  idleMs?: number;
  /** Sessions kept at once; the oldest is dropped when a login would exceed it (default 32). */
  max?: number;
}

export interface ConsoleSession {
  /** First 12 hex digits of the id's SHA-256: names the session in audit entries without being usable. */
  ref: string;
  createdAt: number;
  expiresAt: number;
}

interface Held extends ConsoleSession {
  lastUsedAt: number;
  /** The hash of the admin token the session was opened with: a rotated token ends its sessions. */
  credential: string;
}

/**
 * Operator console sessions, in memory: a restart logs everyone out, which is the safe direction. Only the
 * SHA-256 of an id is kept, so the map never holds a usable cookie value and a lookup does not compare secrets.
 * Ids are 256 random bits: guessing one is hopeless, and failures are still counted by the auth limiter.
 */
export class ConsoleSessions {
  private readonly sessions = new Map<string, Held>();
  private readonly ttlMs: number;
  private readonly idleMs: number;
  private readonly max: number;

  constructor(opts: ConsoleSessionOptions = {}) {
    this.ttlMs = opts.ttlMs ?? 8 * 3_600_000;
    this.idleMs = opts.idleMs ?? 30 * 60_000;
    this.max = opts.max ?? 32;
    if (!(this.ttlMs > 0 && this.idleMs > 0 && this.max >= 1)) throw new RangeError('ConsoleSessions: ttlMs, idleMs and max must be positive');
  }

  /** A new session, bound to the admin token it was opened with (`credential`, its hash); the returned id goes into the cookie and nowhere else. */
  open(now: number, credential: string): { id: string; session: ConsoleSession } {
    const id = `cs_${randomBytes(32).toString('base64url')}`;
    const hash = digest(id);
    const held: Held = { ref: hash.slice(0, 12), createdAt: now, expiresAt: now + this.ttlMs, lastUsedAt: now, credential };
    this.prune(now);
    while (this.sessions.size >= this.max) this.sessions.delete(this.sessions.keys().next().value!);
    this.sessions.set(hash, held);
    return { id, session: publicView(held) };
  }

  /**
   * The live session behind a cookie value (and marks it used), or undefined. With `credential` (the current
   * admin token hash), a session opened with another admin token has ended.
   */
  check(id: string, now: number, credential?: string): ConsoleSession | undefined {
    const hash = digest(id);
    const held = this.sessions.get(hash);
    if (!held) return undefined;
    if (!this.live(held, now) || (credential !== undefined && held.credential !== credential)) {
      this.sessions.delete(hash);
      return undefined;
    }
    held.lastUsedAt = now;
    return publicView(held);
  }

  /** Ends a session (logout); true if it was live. */
  close(id: string, now: number): ConsoleSession | undefined {
    const hash = digest(id);
    const held = this.sessions.get(hash);
    this.sessions.delete(hash);
    return held && this.live(held, now) ? publicView(held) : undefined;
  }

  get size(): number {
    return this.sessions.size;
  }

  private live(s: Held, now: number): boolean {
    return now < s.expiresAt && now - s.lastUsedAt < this.idleMs;
  }

  private prune(now: number): void {
    for (const [hash, s] of this.sessions) if (!this.live(s, now)) this.sessions.delete(hash);
  }
}

function digest(id: string): string {
  return createHash('sha256').update(id).digest('hex');
}

function publicView(s: Held): ConsoleSession {
  return { ref: s.ref, createdAt: s.createdAt, expiresAt: s.expiresAt };
}
