import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** The cookie that carries a console session id (HttpOnly, SameSite=Strict, Path=/). */
export const CONSOLE_COOKIE = 'airlock_console';
/**
 * The header every console request carries: a page on another origin cannot add it without a CORS preflight we
 * never grant. Its value is `1` on the login request and the session's proof on every request after it.
 */
export const CONSOLE_HEADER = 'x-airlock-console';
/** The shape of a console proof (the second secret of a session, kept by the page in sessionStorage). */
export const CONSOLE_PROOF = /^cp_[A-Za-z0-9_-]{43}$/;
/** Whether an X-Airlock-Console value is one the console sends (`1`, or a proof-shaped value). */
export const isConsoleHeader = (value: string | undefined): boolean => value === '1' || (value !== undefined && CONSOLE_PROOF.test(value));

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
  /** The SHA-256 of the session's proof: the cookie alone is not the session. */
  proof: string;
}

/**
 * Operator console sessions, in memory: a restart logs everyone out, which is the safe direction. Only the
 * SHA-256 of an id is kept, so the map never holds a usable cookie value and a lookup does not compare secrets.
 * Ids are 256 random bits: guessing one is hopeless, and failures are still counted by the auth limiter.
 *
 * A session is two secrets: the id, in the HttpOnly cookie, and the proof, which login answers in its body and the
 * page keeps in sessionStorage and sends in the X-Airlock-Console header. Cookies are scoped to the host, not the
 * port (RFC 6265 section 8.5): the browser sends the console cookie to any server on the console's host, and one an
 * agent runs there could replay it from outside the browser, where the header and Origin are ordinary headers.
 * sessionStorage is scoped to the origin, port included, so that server never sees the proof (found by review).
 */
export class ConsoleSessions {
  private readonly sessions = new Map<string, Held>();
  /** Session id hash by proof hash: a request is matched by its proof, then by whichever of its cookies is that session's. */
  private readonly byProof = new Map<string, string>();
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
  open(now: number, credential: string): { id: string; proof: string; session: ConsoleSession } {
    const id = `cs_${randomBytes(32).toString('base64url')}`;
    const proof = `cp_${randomBytes(32).toString('base64url')}`;
    const hash = digest(id);
    const held: Held = { ref: hash.slice(0, 12), createdAt: now, expiresAt: now + this.ttlMs, lastUsedAt: now, credential, proof: digest(proof) };
    this.prune(now);
    while (this.sessions.size >= this.max) this.drop(this.sessions.keys().next().value!);
    this.sessions.set(hash, held);
    this.byProof.set(held.proof, hash);
    return { id, proof, session: publicView(held) };
  }

  /**
   * The live session whose proof the request carries and whose id is one of `ids` (the request's cookie values,
   * in any number: a page on the host can plant as many as it likes ahead of the real one), or undefined.
   * Looked up by the proof, so every cookie is compared with one session's id, never tried as a session of its own.
   */
  find(ids: readonly string[], proof: string | undefined, now: number, credential?: string): ConsoleSession | undefined {
    const hash = this.sessionOf(ids, proof);
    if (hash === undefined) return undefined;
    const held = this.sessions.get(hash)!;
    if (!this.live(held, now) || (credential !== undefined && held.credential !== credential)) {
      this.drop(hash);
      return undefined;
    }
    held.lastUsedAt = now;
    return publicView(held);
  }

  /** Ends the session (logout) whose proof the request carries, if one of `ids` is its cookie; the session if it was live. */
  close(ids: readonly string[], proof: string | undefined, now: number): ConsoleSession | undefined {
    const hash = this.sessionOf(ids, proof);
    if (hash === undefined) return undefined;
    const held = this.sessions.get(hash)!;
    this.drop(hash);
    return this.live(held, now) ? publicView(held) : undefined;
  }

  /** The hash of the session the proof names, if one of `ids` is its id. */
  private sessionOf(ids: readonly string[], proof: string | undefined): string | undefined {
    if (proof === undefined) return undefined;
    const hash = this.byProof.get(digest(proof));
    if (hash === undefined || !this.sessions.has(hash)) return undefined;
    return ids.some((id) => sameDigest(digest(id), hash)) ? hash : undefined;
  }

  private drop(hash: string): void {
    const held = this.sessions.get(hash);
    if (held) this.byProof.delete(held.proof);
    this.sessions.delete(hash);
  }

  get size(): number {
    return this.sessions.size;
  }

  private live(s: Held, now: number): boolean {
    return now < s.expiresAt && now - s.lastUsedAt < this.idleMs;
  }

  private prune(now: number): void {
    for (const [hash, s] of this.sessions) if (!this.live(s, now)) this.drop(hash);
  }
}

function digest(id: string): string {
  return createHash('sha256').update(id).digest('hex');
}

/** Two hex digests compared in constant time. */
function sameDigest(a: string, b: string): boolean {
  return a.length === b.length && timingSafeEqual(Buffer.from(a, 'hex'), Buffer.from(b, 'hex'));
}

function publicView(s: Held): ConsoleSession {
  return { ref: s.ref, createdAt: s.createdAt, expiresAt: s.expiresAt };
}
