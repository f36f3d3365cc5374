// Audit entries for requests refused at the HTTP edge, before a service saw them. They name who asked
// (principal kind and ids), the route pattern and the code; never a token, a body or a query value.
import type { AuditEntryInput } from './types.ts';

/** The holder of a genuine credential: the operator, or one agent's session. */
export type AccessPrincipal = { kind: 'admin' } | { kind: 'agent'; agentId: string; sessionId: string };

function principalFields(p: AccessPrincipal): Pick<AuditEntryInput, 'actor' | 'agentId' | 'sessionId'> {
  return p.kind === 'admin' ? { actor: 'operator' } : { actor: 'agent', agentId: p.agentId, sessionId: p.sessionId };
}

/** A genuine credential on a route it may not use: a session token on an admin route, the admin token on an agent route. */
export function forbiddenAccessEntry(at: number, principal: AccessPrincipal, route: string): AuditEntryInput {
  return { at, type: 'auth.forbidden', ...principalFields(principal), decision: 'error', data: { errorCode: 'forbidden', principal: principal.kind, route } };
}

/** An authenticated request refused for its shape (JSON, schema, size) before any service ran. */
export function rejectedRequestEntry(at: number, principal: AccessPrincipal, route: string, errorCode: string): AuditEntryInput {
  return { at, type: 'request.rejected', ...principalFields(principal), decision: 'error', data: { errorCode, principal: principal.kind, route } };
}

/**
 * An operator console session opened (login with the admin token) or closed (logout). `session` is a
 * fingerprint of the session id (a prefix of its SHA-256), never the cookie value.
 */
export function consoleSessionEntry(at: number, event: 'opened' | 'closed', session: string, source: string): AuditEntryInput {
  return { at, type: `console.session.${event}`, actor: 'operator', data: { session, source } };
}

export interface RefusalCount {
  /** `auth.failures` (per source address) or `session.rate_limited` (per session). */
  type: 'auth.failures' | 'session.rate_limited';
  /** Remote address, or `local` for in-process and Unix-socket clients. */
  source: string;
  principal?: AccessPrincipal;
  windowStartMs: number;
  windowMs: number;
  /** Refusals in the window by error code. */
  codes: Record<string, number>;
}

/**
 * One entry for every refusal of one kind from one source in one window: a flood of bad tokens costs one
 * entry per source per minute, not one per request.
 */
export function refusalCountEntry(at: number, c: RefusalCount): AuditEntryInput {
  const count = Object.values(c.codes).reduce((a, b) => a + b, 0);
  return {
    at,
    type: c.type,
    ...(c.principal ? principalFields(c.principal) : { actor: 'system' as const }),
    decision: 'error',
    data: { source: c.source, count, codes: c.codes, windowStart: new Date(c.windowStartMs).toISOString(), windowMs: c.windowMs },
  };
}
