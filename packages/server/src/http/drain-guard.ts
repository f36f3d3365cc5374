import type { MiddlewareHandler } from 'hono';
import { AirlockError } from '@airlock/core';

/**
 * While the daemon drains (SIGTERM, serve.ts), new requests are refused with `503 shutting_down` before
 * anything is done for them, and every answer closes its connection, so no client sends another request
 * down a connection that is about to close. Health routes still answer, so a load balancer sees
 * `/v1/health/ready` turn 503 rather than a refused connection.
 */
export function drainGuard(draining: () => boolean): MiddlewareHandler {
  return async (c, next) => {
    if (draining() && !c.req.path.startsWith('/v1/health')) {
      c.header('connection', 'close');
      throw new AirlockError('shutting_down', 'The daemon is shutting down; retry on another instance or after restart.');
    }
    await next();
    // Also for a request that was already running when the drain began.
    if (draining()) c.res.headers.set('connection', 'close');
  };
}
