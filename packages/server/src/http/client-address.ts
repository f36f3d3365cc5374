import type { Context } from 'hono';

/**
 * The remote address of the connection. No proxy is trusted (loopback or Unix socket by default), so
 * forwarding headers are ignored. In-process and Unix-socket requests have none: `local`.
 */
export function clientAddress(c: Context): string {
  const env = c.env as { incoming?: { socket?: { remoteAddress?: string } } } | undefined;
  return env?.incoming?.socket?.remoteAddress ?? 'local';
}
