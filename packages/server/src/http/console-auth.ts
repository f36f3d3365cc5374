import type { Context } from 'hono';
import { CONSOLE_COOKIE, CONSOLE_HEADER, CONSOLE_PROOF, isConsoleHeader } from './console-sessions.ts';

/** The origin this request was addressed to (scheme, Host, port): the console's own origin. */
export function ownOrigin(c: Context): string {
  return new URL(c.req.url).origin;
}

/**
 * Why a request may not act with the console cookie, or undefined if it may. The cookie is SameSite=Strict,
 * so a cross-site page does not get it sent; this is the second lock, for a same-site sibling (another port
 * on the same host) and for browsers that do not honour SameSite (the third is the session's proof, checked
 * with the session: consoleProof):
 * - the `X-Airlock-Console` header (`1` to log in, the proof after): a page on another origin can only add it
 *   through a CORS preflight, which this daemon never answers with permission;
 * - the request comes from the daemon's own origin: `Origin` equal to it when the browser sends one (every
 *   POST, PUT and DELETE), else `Sec-Fetch-Site: same-origin` (browsers omit `Origin` on same-origin GETs,
 *   but always send Sec-Fetch-Site, which a page cannot set).
 */
export function consoleProofProblem(c: Context): string | undefined {
  if (!isConsoleHeader(c.req.header(CONSOLE_HEADER))) return `Console requests carry the ${CONSOLE_HEADER} header.`;
  const origin = c.req.header('origin');
  if (origin !== undefined) return origin === ownOrigin(c) ? undefined : 'Console requests come from the console\'s own origin.';
  return c.req.header('sec-fetch-site') === 'same-origin' ? undefined : 'Console requests come from the console\'s own origin (Origin or Sec-Fetch-Site).';
}

/** The session's proof from the X-Airlock-Console header, if it carries one (login carries `1`). */
export function consoleProof(c: Context): string | undefined {
  const header = c.req.header(CONSOLE_HEADER);
  return header !== undefined && CONSOLE_PROOF.test(header) ? header : undefined;
}

/**
 * Console cookies looked at in one request. A page on the host can plant any number ahead of the real one, so
 * this is no small cap (four were not enough: a review planted four paths); Node's header size limit (16 KiB)
 * allows about 300, and each costs one SHA-256 compared with the one session the proof names.
 */
const MAX_CONSOLE_COOKIES = 512;

/**
 * The console session ids in the request's cookies, of the expected shape, in the order sent. Every one, not the
 * first: a page on another port of the host can plant `airlock_console=...; Path=/v1`, which the browser sends
 * before the real cookie (longer path first), and reading only the first locked the operator out until they
 * cleared the site's cookies (found by review). The session is then the one the proof names (ConsoleSessions.find).
 */
export function readConsoleCookies(c: Context): string[] {
  const found: string[] = [];
  for (const part of (c.req.header('cookie') ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0 || part.slice(0, eq).trim() !== CONSOLE_COOKIE) continue;
    const value = part.slice(eq + 1).trim();
    if (/^cs_[A-Za-z0-9_-]{43}$/.test(value) && !found.includes(value)) found.push(value);
    if (found.length === MAX_CONSOLE_COOKIES) break;
  }
  return found;
}

/**
 * Set-Cookie for a session id: never readable from scripts, never sent cross-site, Secure when served over TLS.
 * A browser-session cookie (no Max-Age): sessions live in the daemon's memory and end there (8 h at most), so the
 * cookie need not be written to the browser's disk.
 */
export function consoleCookieHeader(c: Context, id: string): string {
  const secure = new URL(c.req.url).protocol === 'https:' ? '; Secure' : '';
  return `${CONSOLE_COOKIE}=${id}; Path=/; HttpOnly; SameSite=Strict${secure}`;
}

/** Set-Cookie that removes the session cookie (logout, or a cookie the daemon no longer knows). */
export function clearedConsoleCookieHeader(c: Context): string {
  return `${consoleCookieHeader(c, '')}; Max-Age=0`;
}
