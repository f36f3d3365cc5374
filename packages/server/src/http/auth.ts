import type { Context, MiddlewareHandler } from 'hono';
import { AirlockError, constantTimeEqual, hashSecret, isAdminTokenShape, type AgentAuth } from '@airlock/core';
import type { AirlockHolder } from './holder.ts';
import type { AuthKind } from './route-table.ts';

export type Principal = { kind: 'admin' } | { kind: 'agent'; auth: AgentAuth };

/**
 * Bearer authentication for one route. Admin tokens (`adm_…`) and session tokens (`ses_….…`) are told
 * apart by shape; both are compared as hashes in constant time. Repeated failures from one address are
 * slowed down with 429 by the limiter.
 */
export function authenticate(holder: AirlockHolder, kind: AuthKind, limiter: FailureLimiter): MiddlewareHandler {
  return async (c, next) => {
    const client = clientKey(c);
    if (limiter.blocked(client)) throw new AirlockError('rate_limited', 'Too many failed authentication attempts; wait a minute.');
    if (kind === 'none') {
      await next();
      // Wrong unseal passphrases count as failures too: each guess costs an argon2id run, so cap them.
      if (c.error instanceof AirlockError && c.error.code === 'vault_wrong_passphrase') limiter.fail(client);
      return;
    }
    const header = c.req.header('authorization') ?? '';
    const token = header.startsWith('Bearer ') ? header.slice(7).trim() : '';
    try {
      c.set('principal', await resolvePrincipal(holder, kind, token));
    } catch (e) {
      if (e instanceof AirlockError && e.code === 'unauthenticated') limiter.fail(client);
      throw e;
    }
    return next();
  };
}

async function resolvePrincipal(holder: AirlockHolder, kind: AuthKind, token: string): Promise<Principal> {
  const airlock = holder.get();
  if (isAdminTokenShape(token)) {
    if (!constantTimeEqual(hashSecret(token.slice(4)), airlock.adminTokenHash)) throw new AirlockError('unauthenticated', 'Unknown admin token.');
    if (kind === 'agent') throw new AirlockError('forbidden', 'This endpoint takes a session token, not the admin token.');
    return { kind: 'admin' };
  }
  if (!token) throw new AirlockError('unauthenticated', 'Missing bearer token.', { hints: ['Send `Authorization: Bearer <token>`.'] });
  if (kind === 'admin') {
    // A session token on an admin route: say so without revealing whether it is valid.
    if (token.startsWith('ses_')) throw new AirlockError('forbidden', 'This endpoint needs the admin token.');
    throw new AirlockError('unauthenticated', 'Unknown admin token.');
  }
  return { kind: 'agent', auth: await airlock.signing.authenticate(token) };
}

function clientKey(c: Context): string {
  // Behind no proxy by default (loopback / Unix socket); the remote address is what we have.
  const env = c.env as { incoming?: { socket?: { remoteAddress?: string } } } | undefined;
  return env?.incoming?.socket?.remoteAddress ?? 'local';
}

/** Counts authentication failures per client over a sliding minute. */
export class FailureLimiter {
  private readonly failures = new Map<string, number[]>();
  private readonly max: number;
  private readonly windowMs: number;
  constructor(max = 30, windowMs = 60_000) {
    this.max = max;
    this.windowMs = windowMs;
  }
  fail(key: string): void {
    const now = Date.now();
    const list = (this.failures.get(key) ?? []).filter((t) => now - t < this.windowMs);
    list.push(now);
    this.failures.set(key, list);
    if (this.failures.size > 10_000) this.failures.clear();
  }
  blocked(key: string): boolean {
    const list = this.failures.get(key);
    if (!list) return false;
    const now = Date.now();
    return list.filter((t) => now - t < this.windowMs).length >= this.max;
  }
}
