import type { Context } from 'hono';
import type { z } from 'zod';
import type { ApiSchema } from './api-schemas.ts';

export type AuthKind = 'none' | 'admin' | 'agent' | 'admin_or_agent';

/** Statuses answered with the shared error body (`{error:{code,message,violations?}}`, errors.ts). */
export type ErrorStatus = 400 | 401 | 403 | 404 | 409 | 413 | 421 | 429 | 500 | 502 | 503;

/** A request header a route reads besides `Authorization`. */
export interface HeaderSpec {
  name: string;
  schema: z.ZodType;
}

/** Status -> body of every answer that is not the shared error body; at least one is a success. */
export type RouteResponses = ({ 200: ApiSchema } | { 201: ApiSchema }) & { [status: number]: ApiSchema };

export interface RouteSpec {
  method: 'get' | 'post' | 'put' | 'delete';
  /** Hono-style path, e.g. `/v1/agents/:id`. */
  path: string;
  /** Unique and stable (camelCase): the name generated clients give the operation. */
  operationId: string;
  summary: string;
  tag: string;
  auth: AuthKind;
  /**
   * The handler's own transaction reads the session and the agent again before it acts (the signing routes):
   * authentication may then take a session credential from the signing service's cache instead of the store.
   */
  rechecksCredentials?: true;
  body?: ApiSchema;
  query?: z.ZodObject;
  /** Request headers the handler reads (the signing routes: Idempotency-Key). */
  headers?: readonly HeaderSpec[];
  responses: RouteResponses;
  /**
   * Error statuses this route's own handler can answer. Those that come from the edge are added by
   * openapi.ts (`errorStatusesOf`): authentication, body reading, query parsing, the browser guard, 500.
   */
  errors?: readonly ErrorStatus[];
  handler: (c: Context, input: { body: unknown; query: Record<string, unknown> }) => Promise<Response>;
}
