import { isIP } from 'node:net';
import type { Context, MiddlewareHandler } from 'hono';
import { AirlockError, type ErrorCode } from '@airlock/core';
import { CONSOLE_PATH } from './console-assets.ts';
import { ownOrigin } from './console-auth.ts';
import { CONSOLE_HEADER, isConsoleHeader } from './console-sessions.ts';

export interface BrowserGuardOptions {
  /** Exact origins (`https://console.example`) whose browser requests are served; every other `Origin` is refused. */
  allowedOrigins: readonly string[];
  /** Host names served besides IP literals and `localhost`. */
  allowedHosts: readonly string[];
  /**
   * `browser`: only requests from a web page (an `Origin` header) must name a served host. For a Unix socket, whose
   * clients send whatever Host their URL names: no browser reaches a socket itself, but one does through the bridge
   * an operator puts in front of it (`ssh -L 8420:/path/airlock.sock`, socat), and a rebound page's requests carry
   * its own name as Host and as Origin (found by review: on a socket a rebound page passed as the console's own
   * origin and could POST /v1/unseal). Default `all`: every request (a TCP listener).
   */
  hostCheck?: 'all' | 'browser';
}

/**
 * Keeps web pages away from the API. Agents and the CLI send no `Origin`; a browser always does on the
 * requests that matter (POST, and anything with an `Authorization` header), so any `Origin` not allowed
 * is refused. DNS rebinding points an attacker's name at 127.0.0.1: the browser then sends that name as
 * `Host`, so a name must be one the operator listed. An IP literal cannot be rebound, so it passes.
 *
 * The one exception is the operator console this daemon serves itself (/console/): a request from the
 * daemon's own origin passes if it is a console request, the `X-Airlock-Console` header and no
 * `Authorization` header; it then authenticates with the console cookie (auth.ts). The console's own files
 * pass too (browsers send `Origin` when they load module scripts; the files are public). A same-origin
 * request carrying a token, or an API request without the header, is refused: the console never sends them.
 */
export function browserGuard(opts: BrowserGuardOptions, onRefused: (c: Context, code: ErrorCode) => void): MiddlewareHandler {
  const origins = new Set(opts.allowedOrigins);
  const hosts = allowedHostNames(opts.allowedHosts);
  const everyRequest = opts.hostCheck !== 'browser';
  return async (c, next) => {
    const origin = c.req.header('origin');
    if (origin !== undefined && !origins.has(origin)) {
      // The own origin counts only under a host this daemon serves: a rebound name is its attacker's origin too.
      const own = origin === ownOrigin(c) && !hostRefused(c, hosts);
      if (own && c.req.header('authorization') === undefined && (isConsoleHeader(c.req.header(CONSOLE_HEADER)) || isConsoleFile(c))) return next();
      if (own) {
        onRefused(c, 'csrf_refused');
        throw new AirlockError('csrf_refused', 'A request from the console\'s own origin must be a console request.', { hints: [`The console sends ${CONSOLE_HEADER} and its session cookie, never a bearer token.`] });
      }
      onRefused(c, 'origin_not_allowed');
      throw new AirlockError('origin_not_allowed', 'Requests from web pages are refused.', { hints: ['Set AIRLOCK_ALLOWED_ORIGINS to serve a browser origin.'] });
    }
    if ((everyRequest || origin !== undefined) && hostRefused(c, hosts)) {
      onRefused(c, 'host_not_allowed');
      throw new AirlockError('host_not_allowed', 'This daemon does not answer to that host name.', { hints: ['Use 127.0.0.1, localhost, or a name listed in AIRLOCK_ALLOWED_HOSTS.'] });
    }
    return next();
  };
}

/** GET of a console file: public static content, fetched by the page's own module loader. */
function isConsoleFile(c: Context): boolean {
  return (c.req.method === 'GET' || c.req.method === 'HEAD') && (c.req.path === CONSOLE_PATH || c.req.path.startsWith(`${CONSOLE_PATH}/`));
}

/** The URL's host comes from the Host header or from an absolute request target: both must be served. */
function hostRefused(c: Context, hosts: ReadonlySet<string>): boolean {
  const header = c.req.header('host');
  return !hostAllowed(new URL(c.req.url).host, hosts) || (header !== undefined && !hostAllowed(header, hosts));
}

/**
 * The host names a listener answers to besides IP literals: `localhost` and the names the operator listed
 * (AIRLOCK_ALLOWED_HOSTS). Build it once per listener: `hostAllowed` remembers its answers per set.
 */
export function allowedHostNames(allowedHosts: readonly string[]): ReadonlySet<string> {
  return new Set(['localhost', ...allowedHosts.map((h) => h.toLowerCase())]);
}

/** Answers per allowed-names set, by Host value: every request checks the same few hosts (two URL parses each). */
const hostAnswers = new WeakMap<ReadonlySet<string>, Map<string, boolean>>();
/** Hosts remembered per set: enough for every name a deployment is reached by; others are checked each time. */
const MAX_REMEMBERED_HOSTS = 64;

/**
 * Whether a `Host` value (name or IP literal, with or without port) is served: an IP literal cannot be rebound,
 * a name must be in `names` (allowedHostNames). The API's guard and the metrics listener use the same rule.
 */
export function hostAllowed(host: string, names: ReadonlySet<string>): boolean {
  let answers = hostAnswers.get(names);
  if (!answers) hostAnswers.set(names, (answers = new Map()));
  const known = answers.get(host);
  if (known !== undefined) return known;
  const allowed = checkHost(host, names);
  // Bounded: a client sending random Host values must not grow this map.
  if (answers.size < MAX_REMEMBERED_HOSTS) answers.set(host, allowed);
  return allowed;
}

function checkHost(host: string, names: ReadonlySet<string>): boolean {
  if (!/^[A-Za-z0-9.:[\]-]+$/.test(host) || !URL.canParse(`http://${host}`)) return false;
  const name = new URL(`http://${host}`).hostname.replace(/^\[(.*)\]$/, '$1');
  return isIP(name) !== 0 || names.has(name);
}
