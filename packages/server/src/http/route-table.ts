import type { Context } from 'hono';
import type { z } from 'zod';

export type AuthKind = 'none' | 'admin' | 'agent' | 'admin_or_agent';

export interface RouteSpec {
  method: 'get' | 'post' | 'put' | 'delete';
  /** Hono-style path, e.g. `/v1/agents/:id`. */
  path: string;
  summary: string;
  tag: string;
  auth: AuthKind;
  /**
   * The handler's own transaction reads the session and the agent again before it acts (the signing routes):
   * authentication may then take a session credential from the signing service's cache instead of the store.
   */
  rechecksCredentials?: true;
  body?: z.ZodType;
  query?: z.ZodObject;
  /** Status -> response schema (or a description for empty/plain bodies). */
  responses: Record<number, z.ZodType | string>;
  handler: (c: Context, input: { body: unknown; query: Record<string, unknown> }) => Promise<Response>;
}
