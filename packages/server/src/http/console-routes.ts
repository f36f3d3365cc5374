import type { Context } from 'hono';
import { AirlockError, consoleSessionEntry, isAdminTokenShape, isAirlockError } from '@airlock/core';
import { adminTokenHash } from '../admin-credential.ts';
import { verifyAdmin, type AuthEdge } from './auth.ts';
import { clientAddress } from './client-address.ts';
import { clearedConsoleCookieHeader, consoleCookieHeader, consoleProof, consoleProofProblem, readConsoleCookies } from './console-auth.ts';
import { ConsoleLoginRequest, ConsoleLogoutResponse, ConsoleSessionResponse } from './console-schemas.ts';
import type { RouteSpec } from './route-table.ts';

/**
 * The console's session: log in with the admin token once (the answer sets an HttpOnly cookie and never
 * carries the token back), ask who is logged in, log out. Security model: docs/console.md.
 * `edge` is the app's authentication edge (the failure limiter is shared with bearer authentication); the
 * OpenAPI generator builds the table without one.
 */
export function buildConsoleRoutes(edge: AuthEdge | undefined): RouteSpec[] {
  const need = (): AuthEdge => {
    if (!edge) throw new AirlockError('internal', 'console routes built without an authentication edge');
    return edge;
  };
  return [
    {
      method: 'post', path: '/v1/console/session', operationId: 'openConsoleSession', summary: 'Console login: exchange the admin token for an HttpOnly session cookie (console requests only)', tag: 'console', auth: 'none',
      body: ConsoleLoginRequest, responses: { 201: ConsoleSessionResponse }, errors: [401, 429],
      handler: async (c, { body }) => {
        const e = need();
        const now = e.now();
        const source = clientAddress(c);
        await e.refusals.flushDue(now);
        refuseWithoutProof(e, c, source, now);
        const token = (body as { token: string }).token;
        await checkAdminToken(e, token, source, now);
        // The session is bound to this admin token: rotating the token ends it (auth.ts, consolePrincipal).
        const { id, proof, session } = e.console.open(now, adminTokenHash(token));
        await e.holder.get().audit.append(consoleSessionEntry(now, 'opened', session.ref, source));
        c.header('set-cookie', consoleCookieHeader(c, id));
        c.header('cache-control', 'no-store');
        // The proof goes to the page, which keeps it in sessionStorage (its own origin, port included) and sends it
        // in X-Airlock-Console: the cookie alone, which the browser also sends to other ports of this host, is not the session.
        return c.json({ active: true, expiresAt: new Date(session.expiresAt).toISOString(), proof }, 201);
      },
    },
    {
      method: 'get', path: '/v1/console/session', operationId: 'getConsoleSession', summary: 'Whether this browser has a live console session (console requests only; answers, never refuses, a missing or ended one)', tag: 'console', auth: 'none',
      responses: { 200: ConsoleSessionResponse },
      handler: async (c) => {
        const e = need();
        const now = e.now();
        refuseWithoutProof(e, c, clientAddress(c), now);
        const proof = consoleProof(c);
        const credential = await e.holder.get().admin.currentHash();
        const session = e.console.find(readConsoleCookies(c), proof, now, credential);
        return c.json(session ? { active: true, expiresAt: new Date(session.expiresAt).toISOString() } : { active: false });
      },
    },
    {
      method: 'delete', path: '/v1/console/session', operationId: 'closeConsoleSession', summary: 'Console logout: ends the session and clears the cookie', tag: 'console', auth: 'admin',
      responses: { 200: ConsoleLogoutResponse },
      handler: async (c) => {
        const e = need();
        const now = e.now();
        const cookies = c.req.header('authorization') ? [] : readConsoleCookies(c);
        const proof = consoleProof(c);
        const closed = e.console.close(cookies, proof, now);
        if (closed) await e.holder.get().audit.append(consoleSessionEntry(now, 'closed', closed.ref, clientAddress(c)));
        c.header('set-cookie', clearedConsoleCookieHeader(c));
        return c.json({ closed: closed !== undefined });
      },
    },
  ];
}

/** Login takes the same proof as every cookie request: a page elsewhere cannot log a browser in or probe tokens. */
function refuseWithoutProof(edge: AuthEdge, c: Context, source: string, now: number): void {
  const problem = consoleProofProblem(c);
  if (!problem) return;
  edge.refusals.count('auth.failures', source, 'csrf_refused', now);
  throw new AirlockError('csrf_refused', problem);
}

/**
 * The admin token check of bearer authentication (auth.ts), with the same failure limiter key: logging in is
 * no cheaper a way to guess. As there, a token of no admin shape can never succeed and skips the limiter.
 */
async function checkAdminToken(edge: AuthEdge, token: string, source: string, now: number): Promise<void> {
  if (!isAdminTokenShape(token)) {
    edge.refusals.count('auth.failures', source, 'unauthenticated', now);
    throw new AirlockError('unauthenticated', 'Unknown admin token.');
  }
  try {
    await verifyAdmin(edge.holder.get().admin, token);
  } catch (err) {
    if (!isAirlockError(err) || err.code !== 'unauthenticated') throw err;
    edge.refusals.count('auth.failures', source, 'unauthenticated', now);
    const key = `${source} admin`;
    const wait = edge.failures.retryAfterMs(key, now);
    if (wait > 0) throw new AirlockError('rate_limited', 'Too many failed attempts with this credential; wait.', { details: { retryAfterSeconds: Math.ceil(wait / 1000) } });
    edge.failures.record(key, now);
    throw err;
  }
}
