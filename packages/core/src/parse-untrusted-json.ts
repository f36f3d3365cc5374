import { AirlockError } from './errors.ts';

/**
 * Deepest nesting of arrays and objects accepted from outside. Requests, typed data, x402 requirements
 * and policies nest a handful of levels; 64 leaves room for any of them while every recursive step
 * after the edge (hashing, decoding, policy matching) stays far from the engine's stack limit.
 */
export const MAX_JSON_DEPTH = 64;

/**
 * Keys that reach the prototype machinery. JSON.parse makes `__proto__` an own member, but assigning
 * it to a plain object sets the prototype instead (the member vanishes, or pollutes), and
 * `constructor` / `prototype` are the other half of the usual prototype-pollution gadget chains.
 * No Airlock document uses them, so they are refused at any depth rather than handled.
 */
export const FORBIDDEN_JSON_KEYS: readonly string[] = ['__proto__', 'constructor', 'prototype'];

export interface JsonShapeOptions {
  /** What is being read, for the error message ("The request body", "The policy document", …). */
  subject?: string;
  maxDepth?: number;
}

export type JsonShapeProblem = { kind: 'forbidden_key'; key: string } | { kind: 'too_deep'; maxDepth: number };

/**
 * The first forbidden key or excess nesting in a parsed value, or undefined. Iterative (an explicit
 * stack), so a value of any depth is inspected without recursion; it stops at the first problem.
 * Depth counts containers: a scalar is 0, `{}` and `[]` are 1, `{"a":[1]}` is 2.
 */
export function findJsonShapeProblem(value: unknown, maxDepth = MAX_JSON_DEPTH, forbiddenKeys: readonly string[] = FORBIDDEN_JSON_KEYS): JsonShapeProblem | undefined {
  const stack: unknown[] = [value];
  const depths: number[] = [0];
  while (stack.length > 0) {
    const node = stack.pop();
    const depth = depths.pop()!;
    if (node === null || typeof node !== 'object') continue;
    if (depth + 1 > maxDepth) return { kind: 'too_deep', maxDepth };
    if (Array.isArray(node)) {
      for (const item of node) if (item !== null && typeof item === 'object') (stack.push(item), depths.push(depth + 1));
      continue;
    }
    for (const key of Object.keys(node)) {
      if (forbiddenKeys.includes(key)) return { kind: 'forbidden_key', key };
      const member = (node as Record<string, unknown>)[key];
      if (member !== null && typeof member === 'object') (stack.push(member), depths.push(depth + 1));
    }
  }
  return undefined;
}

/**
 * Refuses a parsed value from outside that has a prototype key anywhere (`forbidden_json_key`) or
 * nests deeper than the limit (`payload_too_deep`). Call it before anything else reads the value.
 */
export function checkJsonShape(value: unknown, options: JsonShapeOptions = {}): void {
  const maxDepth = options.maxDepth ?? MAX_JSON_DEPTH;
  const problem = findJsonShapeProblem(value, maxDepth);
  if (!problem) return;
  const subject = options.subject ?? 'The request body';
  // The key is one of three fixed names, so naming it echoes nothing from the input.
  if (problem.kind === 'forbidden_key') {
    throw new AirlockError('forbidden_json_key', `${subject} has a "${problem.key}" key; "__proto__", "constructor" and "prototype" are refused at any depth.`);
  }
  throw new AirlockError('payload_too_deep', `${subject} nests arrays and objects deeper than ${maxDepth} levels.`);
}

/**
 * JSON.parse for text from outside (request bodies, headers, uploaded documents, export files): invalid
 * JSON is `invalid_json`, then `checkJsonShape`. JSON.parse itself is iterative in V8 (a 100,000-deep
 * body parses), so the depth check after it is what keeps later recursive code safe.
 */
export function parseUntrustedJson(text: string, options: JsonShapeOptions = {}): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new AirlockError('invalid_json', `${options.subject ?? 'The request body'} is not valid JSON.`);
  }
  checkJsonShape(value, options);
  checkWellFormedStrings(value, options.subject);
  return value;
}

/**
 * Refuses (`invalid_request`) a value from outside with a key or string that is not well-formed Unicode, or that
 * holds U+0000 (stringProblem).
 */
export function checkWellFormedStrings(value: unknown, subject = 'The request body'): void {
  const problem = stringProblem(value);
  if (problem === 'ill_formed') {
    throw new AirlockError('invalid_request', `${subject} has a string that is not well-formed Unicode (a lone surrogate, as "\\ud800" writes one): it has no UTF-8 form to hash, sign or store.`);
  }
  if (problem === 'nul') {
    throw new AirlockError('invalid_request', `${subject} has a string holding U+0000 (NUL, "\\u0000"), which the store cannot hold; send binary data hex-encoded.`);
  }
}

/**
 * Whether any key or string in a parsed value holds a lone surrogate or U+0000. JSON allows both (`"\ud800"`,
 * `"\u0000"`). A lone surrogate has no UTF-8 encoding: PostgreSQL's jsonb refuses it (a request held for approval
 * answered 500), and an encoder replaces it, so what is hashed or signed is not what was sent. U+0000 PostgreSQL
 * holds neither in text nor in jsonb while SQLite stores it: an agent's child-session label holding one was kept on
 * SQLite and then failed `airlock store migrate` to PostgreSQL for the whole deployment (found by review); refused
 * here, both stores answer alike. Refused at the edge (parseUntrustedJson), not in findJsonShapeProblem, which the
 * audit verifier also runs on entries already stored. Iterative, as that is.
 */
function stringProblem(value: unknown): 'ill_formed' | 'nul' | undefined {
  const stack: unknown[] = [value];
  let nul = false;
  while (stack.length > 0) {
    const node = stack.pop();
    if (typeof node === 'string') {
      if (!node.isWellFormed()) return 'ill_formed';
      if (node.includes('\u0000')) nul = true;
    } else if (Array.isArray(node)) {
      for (const item of node) stack.push(item);
    } else if (node !== null && typeof node === 'object') {
      for (const [key, member] of Object.entries(node)) {
        if (!key.isWellFormed()) return 'ill_formed';
        if (key.includes('\u0000')) nul = true;
        stack.push(member);
      }
    }
  }
  return nul ? 'nul' : undefined;
}
