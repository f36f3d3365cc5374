// Checks real responses against the OpenAPI document: the operation is found by method and path, the
// status must be one the operation declares, and the body must validate (JSON Schema draft 2020-12, ajv)
// against the schema declared for that status. Used by openapi-client.http.test.ts on a live daemon.
import Ajv2020Module from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import type { ValidateFunction } from 'ajv';

// ajv and ajv-formats are CommonJS: a default import is their module.exports, typed (nodenext) as the whole
// module; both also set `exports.default` to the class or plugin itself, which is what both runtime and types agree on.
const Ajv2020 = Ajv2020Module.default;
const addFormats = addFormatsModule.default;

const COMPONENTS = '#/components/schemas/';

type OpenApi = { paths: Record<string, Record<string, Operation>>; components: Record<string, unknown> };
type Operation = { operationId: string; responses: Record<string, { content?: { 'application/json'?: { schema: unknown } } }> };

export interface ResponseCheck {
  operationId: string;
  status: number;
  /** Empty when the body matches the declared schema. */
  problems: string[];
}

export class OpenApiResponses {
  private readonly ajv: InstanceType<typeof Ajv2020>;
  private readonly routes: { method: string; template: string; pattern: RegExp; operation: Operation }[] = [];
  private readonly compiled = new Map<string, ValidateFunction>();

  constructor(doc: OpenApi) {
    // Not strict: the document carries OpenAPI keys (x-error-codes…) beside the schemas ajv reads.
    this.ajv = new Ajv2020({ strict: false, allErrors: true });
    addFormats(this.ajv);
    this.ajv.addSchema({ $id: 'airlock-openapi', components: doc.components });
    for (const [template, methods] of Object.entries(doc.paths)) {
      for (const [method, operation] of Object.entries(methods)) {
        const pattern = new RegExp(`^${template.replace(/\{[^}]+\}/g, '[^/]+')}$`);
        this.routes.push({ method: method.toUpperCase(), template, pattern, operation });
      }
    }
    // A literal segment wins over a parameter (`/v1/policies/dry-run` over `/v1/policies/{scope}`), as in the router.
    this.routes.sort((a, b) => (a.template.match(/\{/g)?.length ?? 0) - (b.template.match(/\{/g)?.length ?? 0));
  }

  /** The operation serving `method path`, or undefined when the document has none. */
  operationFor(method: string, path: string): { operationId: string; template: string; operation: Operation } | undefined {
    const route = this.routes.find((r) => r.method === method.toUpperCase() && r.pattern.test(path));
    return route && { operationId: route.operation.operationId, template: route.template, operation: route.operation };
  }

  check(method: string, url: string, status: number, body: unknown): ResponseCheck {
    const path = new URL(url, 'http://x').pathname;
    const found = this.operationFor(method, path);
    // A path no route serves is the app's 404 `not_found`, in the shared error body.
    if (!found) {
      if (status !== 404) return { operationId: '(no route)', status, problems: [`${method} ${path}: no operation in the document`] };
      return this.validate('(no route)', 'no route 404', { $ref: `${COMPONENTS}Error` }, status, body);
    }
    const declared = found.operation.responses[String(status)];
    if (!declared) return { operationId: found.operationId, status, problems: [`${found.operationId}: status ${status} is not declared (body ${JSON.stringify(body).slice(0, 200)})`] };
    const schema = declared.content?.['application/json']?.schema;
    if (!schema) return { operationId: found.operationId, status, problems: body === undefined ? [] : [`${found.operationId} ${status}: a body the document does not describe`] };
    return this.validate(found.operationId, `${found.template} ${method} ${status}`, schema, status, body);
  }

  private validate(operationId: string, key: string, schema: unknown, status: number, body: unknown): ResponseCheck {
    let validate: ValidateFunction | undefined = this.compiled.get(key);
    if (!validate) {
      // The document's refs (`#/components/schemas/X`) resolve against the schema added in the constructor.
      validate = this.ajv.compile(JSON.parse(JSON.stringify(schema).replaceAll(`"${COMPONENTS}`, `"airlock-openapi${COMPONENTS}`)));
      this.compiled.set(key, validate);
    }
    if (validate(body)) return { operationId, status, problems: [] };
    const problems = (validate.errors ?? []).map((e) => `${operationId} ${status}: ${e.instancePath || '(body)'} ${e.message}${e.params ? ` ${JSON.stringify(e.params)}` : ''}`);
    return { operationId, status, problems };
  }
}
