import type { Context, MiddlewareHandler } from 'hono';
import {
  AirlockError,
  forbiddenAccessEntry,
  isAdminTokenShape,
  isAirlockError,
  parseSessionToken,
  readAncestors,
  type AccessPrincipal,
  type AgentAuth,
  type ErrorCode,
} from '@airlock/core';
import type { AdminCredential } from '../admin-credential.ts';
import type { AttemptLimiter } from './attempt-limiter.ts';
import { clientAddress } from './client-address.ts';
import { consoleProof, consoleProofProblem, readConsoleCookies } from './console-auth.ts';
import type { ConsoleSessions } from './console-sessions.ts';
import type { AirlockHolder } from './holder.ts';
import type { RefusalTally } from './refusal-tally.ts';
import type { AuthKind } from './route-table.ts';
import type { SessionAncestry, SessionRateLimiter } from './session-rate-limiter.ts';

/**
 * `stillValid` (admin): throws `unauthenticated` once the credential the request authenticated with no longer holds
 * (the admin token rotated away, the console session ended), for a request that outlives its authentication (a long
 * poll) before it hands out what was decided meanwhile; a session is re-read with `assertStillUsable` instead.
 */
export type Principal = { kind: 'admin'; stillValid?: () => Promise<void> } | { kind: 'agent'; auth: AgentAuth };

/** What every authenticated route of one app shares. */
export interface AuthEdge {
  holder: AirlockHolder;
  /** Authentication failures per (remote address, credential id). */
  failures: AttemptLimiter;
  sessions: SessionRateLimiter;
  /** Ancestor ids of derived sessions, so that their requests also take from each ancestor's bucket. */
  ancestry: SessionAncestry;
  refusals: RefusalTally;
  /** Operator console sessions (cookie authentication, console-auth.ts). */
  console: ConsoleSessions;
  now(): number;
}

/** Refusals of a session token that are answered alike on admin routes: they must not reveal its state. */
const SESSION_REFUSALS: ReadonlySet<ErrorCode> = new Set(['unauthenticated', 'session_expired', 'session_revoked', 'agent_frozen', 'agent_retired']);

/**
 * Bearer authentication for one route. Admin tokens (`adm_…`) and session tokens (`ses_<id>.…`) are told
 * apart by shape; both are compared as hashes in constant time.
 *
 * Failures are limited per (remote address, credential id), and the limiter is consulted only after the
 * presented credential failed: a genuine token always passes, whatever others did. Both secrets carry 256
 * bits, so the limit is not what keeps guessing hopeless; it keeps a guessing loop cheap and visible, and
 * it must never become a way to lock the operator out of freeze, revoke and approvals. A request with no
 * token, or one of no known shape, can never succeed and is answered 401 without touching the limiter.
 * Failures are counted into one audit entry per source per minute (`auth.failures`).
 *
 * `rechecked`: the route's transaction reads the session and the agent again before it acts (signing), so a
 * credential authenticated before may come from the signing service's cache (credential-cache.ts).
 */
export function authenticate(edge: AuthEdge, kind: Exclude<AuthKind, 'none'>, route: string, rechecked = false): MiddlewareHandler {
  return async (c, next) => {
    const airlock = edge.holder.get();
    const now = edge.now();
    await edge.refusals.flushDue(now);
    const source = clientAddress(c);
    const token = bearerToken(c);
    // The console's cookie stands for the admin token, only on a request without a bearer token.
    const cookies = token ? [] : readConsoleCookies(c);
    if (cookies.length > 0) {
      const principal = await consolePrincipal(edge, c, cookies, source, now);
      if (kind === 'agent') {
        await airlock.audit.append(forbiddenAccessEntry(now, accessPrincipal(principal), route));
        throw new AirlockError('forbidden', 'This endpoint takes a session token, not the admin token.');
      }
      c.set('principal', principal);
      return next();
    }
    const credential = isAdminTokenShape(token) ? 'admin' : parseSessionToken(token)?.sessionId;
    if (credential === undefined) {
      edge.refusals.count('auth.failures', source, 'unauthenticated', now);
      if (!token) throw new AirlockError('unauthenticated', 'Missing bearer token.', { hints: ['Send `Authorization: Bearer <token>`.'] });
      throw new AirlockError('unauthenticated', 'Unknown token.');
    }

    let principal: Principal;
    try {
      // The session's own bucket as soon as the token is proven genuine (admitSession), its ancestors' only once
      // the session and its ancestors are found usable (admitAncestors).
      const admit = (auth: AgentAuth) => admitSession(edge, auth, source, now);
      // A route that re-reads the credential in its own transaction (signing) may take it from the cache.
      const agentAuth = () => (rechecked ? airlock.signing.authenticateForSigning(token, admit) : airlock.signing.authenticate(token, admit));
      if (credential === 'admin') {
        await verifyAdmin(airlock.admin, token);
        // A long poll asks again before it answers: a token rotated away since gets nothing decided meanwhile.
        principal = { kind: 'admin', stillValid: () => edge.holder.get().admin.verify(token) };
      } else principal = { kind: 'agent', auth: await agentAuth() };
      if (principal.kind === 'agent') await admitAncestors(edge, principal.auth, source, now);
    } catch (e) {
      if (!isAirlockError(e)) throw e;
      if (e.code === 'unauthenticated') {
        edge.refusals.count('auth.failures', source, 'unauthenticated', now);
        const key = `${source} ${credential}`;
        const wait = edge.failures.retryAfterMs(key, now);
        if (wait > 0) throw new AirlockError('rate_limited', 'Too many failed attempts with this credential; wait.', { details: { retryAfterSeconds: Math.ceil(wait / 1000) } });
        edge.failures.record(key, now);
      }
      if (kind === 'admin' && credential !== 'admin' && SESSION_REFUSALS.has(e.code)) throw sessionOnAdminRoute();
      throw e;
    }

    if ((kind === 'admin' && principal.kind === 'agent') || (kind === 'agent' && principal.kind === 'admin')) {
      // A genuine credential probing a route it may not use: evidence for an incident, so recorded (no token).
      await airlock.audit.append(forbiddenAccessEntry(now, accessPrincipal(principal), route));
      throw principal.kind === 'agent' ? sessionOnAdminRoute() : new AirlockError('forbidden', 'This endpoint takes a session token, not the admin token.');
    }
    c.set('principal', principal);
    return next();
  };
}

export function accessPrincipal(p: Principal): AccessPrincipal {
  return p.kind === 'admin' ? { kind: 'admin' } : { kind: 'agent', agentId: p.auth.agent.id, sessionId: p.auth.session.id };
}

function bearerToken(c: Context): string {
  const header = c.req.header('authorization') ?? '';
  return header.startsWith('Bearer ') ? header.slice(7).trim() : '';
}

/**
 * The operator behind a console cookie and its proof. The same-origin check is first (console-auth.ts): a request
 * a foreign page made the browser send is refused without looking at the session. Then one of the cookies sent
 * must be a live session whose proof the header carries (a cookie replayed without the proof is not the operator:
 * console-sessions.ts). Anything else counts as a failed attempt, like a wrong token.
 */
async function consolePrincipal(edge: AuthEdge, c: Context, cookies: string[], source: string, now: number): Promise<Principal> {
  const problem = consoleProofProblem(c);
  if (problem) {
    edge.refusals.count('auth.failures', source, 'csrf_refused', now);
    throw new AirlockError('csrf_refused', problem, { hints: ['Use the console at /console/, or send the admin token as a bearer token.'] });
  }
  // A session opened with an admin token that was rotated since ends with it (admin-credential.ts bounds when).
  const proof = consoleProof(c);
  const credential = await edge.holder.get().admin.currentHash();
  if (edge.console.find(cookies, proof, now, credential)) {
    const stillValid = async () => {
      const current = await edge.holder.get().admin.currentHash();
      if (!edge.console.find(cookies, proof, edge.now(), current)) throw new AirlockError('unauthenticated', 'The console session ended; log in again.');
    };
    return { kind: 'admin', stillValid };
  }
  edge.refusals.count('auth.failures', source, 'unauthenticated', now);
  const key = `${source} console`;
  const wait = edge.failures.retryAfterMs(key, now);
  if (wait > 0) throw new AirlockError('rate_limited', 'Too many failed attempts with this credential; wait.', { details: { retryAfterSeconds: Math.ceil(wait / 1000) } });
  edge.failures.record(key, now);
  throw new AirlockError('unauthenticated', 'The console session ended; log in again.');
}

/** The admin token, checked against a hash no staler than the documented bound (admin-credential.ts). */
export async function verifyAdmin(admin: AdminCredential, token: string): Promise<Principal> {
  await admin.verify(token);
  return { kind: 'admin' };
}

/**
 * Runs once a session token is proven genuine, before anything is written for it: the per-session rate limit
 * (AIRLOCK_SESSION_RATE), the session's own bucket only. A dead credential (revoked, expired, frozen agent) is
 * throttled here, so that its flood cannot append one `auth.refused` entry per request; it must not take its
 * ancestors' buckets too, or a child its parent revoked would keep the live parent at 429 by sending on
 * (found by review).
 */
function admitSession(edge: AuthEdge, auth: AgentAuth, source: string, now: number): void {
  if (edge.sessions.enabled) refuseOverRate(edge, auth, source, now, [auth.session.id]);
}

/**
 * The rest of the per-session rate limit, once authentication found the session and its ancestors usable: a
 * session and every session derived from it share the session's rate, so a derived session's request also takes
 * a token from each ancestor's bucket, and deriving children (each with a bucket of its own) never multiplies
 * what the tree may send. All or none: refused here, the request gives its own token back.
 */
async function admitAncestors(edge: AuthEdge, auth: AgentAuth, source: string, now: number): Promise<void> {
  if (!edge.sessions.enabled || auth.session.parentId === undefined) return;
  const ancestors = await ancestorIdsOf(edge, auth);
  try {
    refuseOverRate(edge, auth, source, now, ancestors);
  } catch (e) {
    edge.sessions.giveBack(auth.session.id, now);
    throw e;
  }
}

/**
 * One more request of a session this HTTP request already authenticated, for a request that carries several
 * (each call of a JSON-RPC batch after the first, json-rpc.ts): its own bucket and its ancestors', all or none,
 * as a request of its own would take them, so that batching never multiplies the session's rate. Throws
 * `session_rate_limited`.
 */
export async function admitFurtherRequest(edge: AuthEdge, auth: AgentAuth, source: string): Promise<void> {
  if (!edge.sessions.enabled) return;
  const ancestors = auth.session.parentId === undefined ? [] : await ancestorIdsOf(edge, auth);
  refuseOverRate(edge, auth, source, edge.now(), [auth.session.id, ...ancestors]);
}

/** A derived session's ancestor ids (nearest first): kept per instance, read once from the store. */
async function ancestorIdsOf(edge: AuthEdge, auth: AgentAuth): Promise<readonly string[]> {
  const known = edge.ancestry.get(auth.session.id);
  if (known) return known;
  // The chain was checked by authentication (or will be by the route's transaction); a broken one is refused the same way.
  const ids = (await readAncestors(edge.holder.get().store, auth.session)).map((a) => a.id);
  edge.ancestry.set(auth.session.id, ids);
  return ids;
}

function refuseOverRate(edge: AuthEdge, auth: AgentAuth, source: string, now: number, buckets: readonly string[]): void {
  const { wait, key } = edge.sessions.takeAll(buckets, now);
  if (wait === 0) return;
  edge.refusals.count('session.rate_limited', source, 'session_rate_limited', now, { kind: 'agent', agentId: auth.agent.id, sessionId: auth.session.id });
  const own = key === auth.session.id;
  throw new AirlockError(
    'session_rate_limited',
    own ? 'This session is over its request rate.' : `The session this one derives from (${key}) is over its request rate, which it shares with every session derived from it.`,
    { details: { retryAfterSeconds: Math.max(1, Math.ceil(wait / 1000)), rule: 'session_rate', sessionId: key } },
  );
}

function sessionOnAdminRoute(): AirlockError {
  return new AirlockError('forbidden', 'This endpoint needs the admin token.');
}
