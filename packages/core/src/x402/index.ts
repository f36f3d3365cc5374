export * from './networks.ts';
export * from './requirements.ts';
export * from './builder.ts';
export * from './eip712-fields.ts';
export * from './x402-service.ts';
export { normaliseResource, compileResourcePattern, type NormalisedResource, type ResourcePattern } from '../policy/resource-pattern.ts';
export * from './settlement-charges.ts';
export * from './reconciler.ts';
