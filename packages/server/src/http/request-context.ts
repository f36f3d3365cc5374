import type { Context } from 'hono';
import { AirlockError, type AgentAuth } from '@airlock/core';
import type { Principal } from './auth.ts';
import type { HeaderSpec } from './route-table.ts';
import { IdempotencyKey } from './schemas.ts';

// What handlers read from a request besides its body and query (shared by routes.ts and x402-routes.ts).

export function agentOf(c: Context): AgentAuth {
  const p = c.get('principal') as Principal;
  if (p.kind !== 'agent') throw new AirlockError('forbidden', 'This endpoint takes a session token.');
  return p.auth;
}

/** The header as the document declares it: routes that call `idempotencyKeyOf` list it in `headers`. */
export const IDEMPOTENCY_KEY_HEADER: HeaderSpec = { name: 'Idempotency-Key', schema: IdempotencyKey };

export function idempotencyKeyOf(c: Context): string | undefined {
  const idem = c.req.header('idempotency-key');
  if (idem !== undefined && !IdempotencyKey.safeParse(idem).success) throw new AirlockError('invalid_request', 'Idempotency-Key: 1-128 chars of A-Z a-z 0-9 _ . : -');
  return idem;
}
