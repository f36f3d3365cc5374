import type { Context } from 'hono';
import { getCookie } from 'hono/cookie';
import { CONSOLE_COOKIE, CONSOLE_HEADER } from './console-sessions.ts';

/** The origin this request was addressed to (scheme, Host, port): the console's own origin. */
export function ownOrigin(c: Context): string {
  return new URL(c.req.url).origin;
}

/**
 * Why a request may not act with the console cookie, or undefined if it may. The cookie is SameSite=Strict,
 * so a cross-site page does not get it sent; this is the second lock, for a same-site sibling (another port
 * on the same host) and for browsers that do not honour SameSite:
 * - the `X-Airlock-Console: 1` header: a page on another origin can only add it through a CORS preflight,
 *   which this daemon never answers with permission;
 * - the request comes from the daemon's own origin: `Origin` equal to it when the browser sends one (every
 *   POST, PUT and DELETE), else `Sec-Fetch-Site: same-origin` (browsers omit `Origin` on same-origin GETs,
 *   but always send Sec-Fetch-Site, which a page cannot set).
 */
export function consoleProofProblem(c: Context): string | undefined {
  if (c.req.header(CONSOLE_HEADER) !== '1') return `Console requests carry the ${CONSOLE_HEADER} header.`;
  const origin = c.req.header('origin');
  if (origin !== undefined) return origin === ownOrigin(c) ? undefined : 'Console requests come from the console\'s own origin.';
  return c.req.header('sec-fetch-site') === 'same-origin' ? undefined : 'Console requests come from the console\'s own origin (Origin or Sec-Fetch-Site).';
}

/** The console session id from the cookie, if the request carries one of the expected shape. */
export function readConsoleCookie(c: Context): string | undefined {
  const value = getCookie(c, CONSOLE_COOKIE);
  return value !== undefined && /^cs_[A-Za-z0-9_-]{43}$/.test(value) ? value : undefined;
}

/** Set-Cookie for a session id: never readable from scripts, never sent cross-site, Secure when served over TLS. */
export function consoleCookieHeader(c: Context, id: string, maxAgeMs: number): string {
  const secure = new URL(c.req.url).protocol === 'https:' ? '; Secure' : '';
  return `${CONSOLE_COOKIE}=${id}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${Math.max(0, Math.floor(maxAgeMs / 1000))}${secure}`;
}

/** Set-Cookie that removes the session cookie (logout, or a cookie the daemon no longer knows). */
export function clearedConsoleCookieHeader(c: Context): string {
  return consoleCookieHeader(c, '', 0);
}
