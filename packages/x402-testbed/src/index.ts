export * from './compile.ts';
export * from './token.ts';
export * from './facilitator.ts';
export * from './paid-api.ts';
export * from './policy.ts';
export * from './testbed.ts';
export { toJson, base64Json, fromBase64Json } from './json.ts';
export * from './permit2.ts';
export * from './entry-point.ts';
