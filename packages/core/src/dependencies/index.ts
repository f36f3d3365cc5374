export * from './grants.ts';
export * from './dependency-map.ts';
export * from './revocation-planner.ts';
export { selectorOf, SELECTORS as GRANT_SELECTORS } from './abi-words.ts';
