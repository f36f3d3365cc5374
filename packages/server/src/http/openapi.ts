import { z } from 'zod';
import { ERROR_CODES, POLICY_WARNING_CODES, VIOLATION_CODES } from '@airlock/core';
import { apiSchemas, type ApiSchema } from './api-schemas.ts';
import type { ErrorStatus, RouteSpec } from './route-table.ts';
import { ErrorSchema } from './schemas.ts';

type JsonSchema = Record<string, unknown>;
type Io = 'input' | 'output';

const COMPONENTS = '#/components/schemas/';

/**
 * Builds the OpenAPI 3.1 document from the route table and its zod schemas.
 *
 * Every body is a named component (api-schemas.ts): zod converts the whole registry at once with a `uri`
 * callback, so a schema nested in another is a `$ref` to `#/components/schemas/<id>` rather than a copy in a
 * `$defs` of its own (which made the document unresolvable). Requests are converted as zod parses them
 * (`io: 'input'`) and responses as handlers produce them (`io: 'output'`, objects closed to other keys).
 */
export function buildOpenApi(routes: RouteSpec[]): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  const roots: Record<Io, Set<string>> = { input: new Set(), output: new Set([idOf(ErrorSchema)]) };
  const operationIds = new Set<string>();
  for (const r of routes) {
    if (operationIds.has(r.operationId)) throw new Error(`operationId ${r.operationId} is used twice`);
    operationIds.add(r.operationId);
    const parameters = [...pathParameters(r.path), ...queryParameters(r), ...(r.headers ?? []).map((h) => ({ name: h.name, in: 'header', required: false, ...described(toJsonSchema(h.schema)) }))];
    if (r.body) roots.input.add(idOf(r.body));
    for (const s of Object.values(r.responses)) roots.output.add(idOf(s));
    (paths[openApiPath(r.path)] ??= {})[r.method] = {
      operationId: r.operationId,
      summary: r.summary,
      tags: [r.tag],
      security: securityOf(r),
      ...(parameters.length ? { parameters } : {}),
      ...(r.body ? { requestBody: { required: true, content: json(ref(r.body)) } } : {}),
      responses: responsesOf(r),
    };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Airlock API',
      version: '1',
      description: 'Self-hosted signing service for AI agents. Every refusal names its rule. Errors are `{error:{code,message,violations?}}` (components/schemas/Error).',
    },
    servers: [{ url: 'http://127.0.0.1:8420' }],
    components: {
      schemas: components(roots),
      securitySchemes: {
        admin: { type: 'http', scheme: 'bearer', description: 'Operator token `adm_…`, created by `airlock init` and shown once.' },
        session: { type: 'http', scheme: 'bearer', description: 'Agent session token `ses_….…`, issued per agent and shown once.' },
        console: {
          type: 'apiKey',
          in: 'cookie',
          name: 'airlock_console',
          description: 'Operator console session (POST /v1/console/session), for the console this daemon serves at /console/ only: accepted with the `X-Airlock-Console: 1` header from the daemon\'s own origin, never with an Authorization header (docs/console.md).',
        },
      },
      'x-error-codes': ERROR_CODES,
      'x-violation-codes': VIOLATION_CODES,
      'x-policy-warning-codes': POLICY_WARNING_CODES,
    },
    paths,
  };
}

/**
 * The error statuses a route can answer: its handler's own (`errors`) and those of the edge it sits behind
 * (app.ts). The browser guard runs on every route (403 `origin_not_allowed`, 421 `host_not_allowed`) and any
 * route can fail unexpectedly (500); while the daemon drains after SIGTERM every route answers 503
 * `shutting_down` (drain-guard.ts). Authentication adds 401, 403 (wrong kind of token, frozen or retired
 * agent), 429 (failed attempts, session rate) and 503 (sealed, store down); a body, query or header adds 400,
 * a body also 413.
 */
export function errorStatusesOf(r: RouteSpec): ErrorStatus[] {
  const statuses = new Set<ErrorStatus>([403, 421, 500, 503, ...(r.errors ?? [])]);
  if (r.auth !== 'none') for (const s of [401, 403, 429, 503] as const) statuses.add(s);
  if (r.body || r.query || r.headers?.length) statuses.add(400);
  if (r.body) statuses.add(413);
  return [...statuses].sort((a, b) => a - b);
}

function responsesOf(r: RouteSpec): Record<string, unknown> {
  const own = r.responses as Record<number, ApiSchema>;
  const errors = new Set(errorStatusesOf(r));
  const statuses = [...new Set([...Object.keys(own).map(Number), ...errors])].sort((a, b) => a - b);
  return Object.fromEntries(
    statuses.map((status) => {
      const schemas = [own[status], errors.has(status as ErrorStatus) ? ErrorSchema : undefined].filter((s): s is ApiSchema => s !== undefined);
      const schema = schemas.length === 1 ? ref(schemas[0]!) : { anyOf: schemas.map(ref) };
      return [String(status), { description: describeStatus(r, status, own[status] !== undefined), ...(status === 429 ? { headers: RETRY_AFTER } : {}), content: json(schema) }];
    }),
  );
}

function describeStatus(r: RouteSpec, status: number, own: boolean): string {
  if (status === 403 && own) return 'Denied by policy (`PolicyDenied`: every violation names its rule), or refused before policy (`Error`: wrong kind of token, agent frozen or retired, browser Origin)';
  if (status === 403) return r.auth === 'none' ? 'A browser Origin that is not allowed (`origin_not_allowed`, `csrf_refused`)' : 'Wrong kind of token, agent frozen or retired, or a browser Origin that is not allowed (`origin_not_allowed`, `csrf_refused`)';
  if (status === 503 && own) return 'Sealed or draining, or (`Error`) the store is unavailable or the daemon is shutting down';
  return DESCRIPTIONS[status] ?? 'Response';
}

const DESCRIPTIONS: Record<number, string> = {
  200: 'OK',
  201: 'Created',
  202: 'Pending human approval',
  400: 'Bad input (`invalid_request`, `invalid_json`, decoding errors…)',
  401: 'Not authenticated (missing, unknown, expired or revoked token)',
  404: 'Not found',
  409: 'Conflict (`idempotency_conflict`, `nonce_reused`, `approval_not_pending`, `conflict`)',
  413: 'Body too large',
  421: 'Host name not served (`host_not_allowed`)',
  429: 'Too many requests or failed attempts (see Retry-After)',
  500: 'Internal error (nothing was signed or returned)',
  502: 'The Lightning backend reported a definite failure (`lightning_payment_failed`): the hold was released, nothing was paid',
  503: 'Sealed, store unavailable, audit integrity alert, or shutting down (`shutting_down`, after SIGTERM)',
};

const RETRY_AFTER = { 'Retry-After': { description: 'Seconds to wait before retrying', schema: { type: 'integer' } } };

function securityOf(r: RouteSpec): unknown[] {
  if (r.auth === 'none') return [];
  if (r.auth === 'admin') return [{ admin: [] }, { console: [] }];
  if (r.auth === 'agent') return [{ session: [] }];
  return [{ admin: [] }, { console: [] }, { session: [] }];
}

function openApiPath(path: string): string {
  return path.replace(/:([a-zA-Z]+)/g, '{$1}');
}

function pathParameters(path: string) {
  return [...path.matchAll(/:([a-zA-Z]+)/g)].map((m) => ({ name: m[1], in: 'path', required: true, schema: { type: 'string' } }));
}

function queryParameters(r: RouteSpec) {
  if (!r.query) return [];
  return Object.entries(r.query.shape).map(([name, field]) => {
    const schema = field as z.ZodType;
    return { name, in: 'query', required: !schema.safeParse(undefined).success, ...described(toJsonSchema(schema)) };
  });
}

/** A parameter's description belongs on the parameter (where tools show it), not inside its schema. */
function described(schema: JsonSchema): { description?: unknown; schema: JsonSchema } {
  const { description, ...rest } = schema;
  return description === undefined ? { schema: rest } : { description, schema: rest };
}

function toJsonSchema(schema: z.ZodType): JsonSchema {
  const { $schema: _, ...rest } = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any', target: 'draft-2020-12' }) as JsonSchema;
  return rest;
}

function idOf(schema: ApiSchema): string {
  const id = apiSchemas.get(schema)?.id;
  if (!id) throw new Error('a route schema is not registered with apiSchema()');
  return id;
}

function ref(schema: ApiSchema): JsonSchema {
  return { $ref: `${COMPONENTS}${idOf(schema)}` };
}

function json(schema: JsonSchema) {
  return { 'application/json': { schema } };
}

/**
 * The components the routes use, each converted in the direction it is used in (requests as input,
 * responses as output), with what they reference. A component used both ways must convert alike.
 */
function components(roots: Record<Io, Set<string>>): Record<string, JsonSchema> {
  const out: Record<string, JsonSchema> = {};
  for (const io of ['input', 'output'] as const) {
    const { schemas } = z.toJSONSchema(apiSchemas, { io, unrepresentable: 'any', target: 'draft-2020-12', uri: (id) => `${COMPONENTS}${id}` });
    // `__shared` collects nested schemas that carry an id of zod's global registry (`.meta({id})`) instead of apiSchema().
    if (schemas.__shared) throw new Error(`schemas with a global zod id: use apiSchema() instead (${Object.keys((schemas.__shared as { $defs: object }).$defs).join(', ')})`);
    const pending = [...roots[io]];
    const seen = new Set<string>();
    while (pending.length) {
      const id = pending.pop()!;
      if (seen.has(id)) continue;
      seen.add(id);
      const { $schema: _s, $id: _i, ...schema } = schemas[id] as JsonSchema;
      if (id in out && JSON.stringify(out[id]) !== JSON.stringify(schema)) throw new Error(`component ${id} differs between requests and responses: give each its own schema`);
      out[id] = schema;
      pending.push(...refsIn(schema));
    }
  }
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => a.localeCompare(b)));
}

function refsIn(value: unknown): string[] {
  if (Array.isArray(value)) return value.flatMap(refsIn);
  if (typeof value !== 'object' || value === null) return [];
  return Object.entries(value).flatMap(([k, v]) => (k === '$ref' && typeof v === 'string' && v.startsWith(COMPONENTS) ? [v.slice(COMPONENTS.length)] : refsIn(v)));
}
