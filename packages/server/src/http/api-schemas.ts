import { z } from 'zod';

declare const component: unique symbol;

/**
 * A zod schema registered as a named component of the OpenAPI document (`#/components/schemas/<id>`).
 * Route bodies and responses must be of this type, so a route cannot ship a body the document would
 * have to inline (or leave out): the typechecker asks for `apiSchema(...)`.
 */
export type ApiSchema<T extends z.ZodType = z.ZodType> = T & { readonly [component]: true };

/**
 * The registry of named components. openapi.ts hands it to `z.toJSONSchema` with a `uri` callback, so every
 * schema that nests another component refers to it by `$ref` instead of copying it into local `$defs`.
 * Descriptions stay in zod's global registry (`.describe()`), which the conversion reads as usual.
 */
export const apiSchemas = z.registry<{ id: string }>();

const ids = new Set<string>();

/** Registers `schema` as the component `id`. Ids are unique (zod's registry would silently keep the last one). */
export function apiSchema<T extends z.ZodType>(id: string, schema: T): ApiSchema<T> {
  if (ids.has(id)) throw new Error(`OpenAPI component ${id} is defined twice`);
  ids.add(id);
  apiSchemas.add(schema, { id });
  return schema as ApiSchema<T>;
}
