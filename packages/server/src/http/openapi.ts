import { z } from 'zod';
import { ERROR_CODES, POLICY_WARNING_CODES, VIOLATION_CODES } from '@airlock/core';
import type { RouteSpec } from './route-table.ts';

/** Builds the OpenAPI 3.1 document from the route table and its zod schemas. */
export function buildOpenApi(routes: RouteSpec[]): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  const registry = z.registry<{ id?: string }>();
  const toSchema = (s: z.ZodType) => z.toJSONSchema(s, { io: 'input', unrepresentable: 'any', target: 'draft-2020-12' });
  for (const r of routes) {
    const path = r.path.replace(/:([a-zA-Z]+)/g, '{$1}');
    const params = [...r.path.matchAll(/:([a-zA-Z]+)/g)].map((m) => ({ name: m[1], in: 'path', required: true, schema: { type: 'string' } }));
    if (r.query) {
      for (const [name, schema] of Object.entries(r.query.shape)) {
        params.push({ name, in: 'query', required: false, schema: toSchema(schema as z.ZodType) as { type: string } });
      }
    }
    const responses: Record<string, unknown> = {};
    for (const [status, s] of Object.entries(r.responses)) {
      responses[status] = typeof s === 'string' ? { description: s } : { description: describe(Number(status)), content: { 'application/json': { schema: toSchema(s) } } };
    }
    (paths[path] ??= {})[r.method] = {
      summary: r.summary,
      tags: [r.tag],
      ...(r.auth === 'none' ? { security: [] } : { security: r.auth === 'admin' ? [{ admin: [] }] : r.auth === 'agent' ? [{ session: [] }] : [{ admin: [] }, { session: [] }] }),
      ...(params.length ? { parameters: params } : {}),
      ...(r.body ? { requestBody: { required: true, content: { 'application/json': { schema: toSchema(r.body) } } } } : {}),
      ...(r.method === 'post' && r.path.startsWith('/v1/sign/') ? { 'x-idempotency': 'Send Idempotency-Key to make retries safe: the same key and payload return the original result; a different payload is 409.' } : {}),
      responses,
    };
  }
  void registry;
  return {
    openapi: '3.1.0',
    info: {
      title: 'Airlock API',
      version: '1',
      description: 'Self-hosted signing service for AI agents. Every refusal names its rule. Errors are `{error:{code,message,violations?}}`.',
    },
    servers: [{ url: 'http://127.0.0.1:8420' }],
    components: {
      securitySchemes: {
        admin: { type: 'http', scheme: 'bearer', description: 'Operator token `adm_…`, created by `airlock init` and shown once.' },
        session: { type: 'http', scheme: 'bearer', description: 'Agent session token `ses_….…`, issued per agent and shown once.' },
      },
      'x-error-codes': Object.fromEntries(Object.entries(ERROR_CODES).map(([k, v]) => [k, v])),
      'x-violation-codes': VIOLATION_CODES,
      'x-policy-warning-codes': POLICY_WARNING_CODES,
    },
    paths,
  };
}

function describe(status: number): string {
  return ({ 200: 'OK', 201: 'Created', 202: 'Pending human approval', 400: 'Bad input', 401: 'Not authenticated', 403: 'Forbidden or denied by policy', 404: 'Not found', 409: 'Conflict', 413: 'Body too large', 503: 'Sealed or store unavailable' } as Record<number, string>)[status] ?? 'Response';
}
