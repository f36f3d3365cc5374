export * from './http.ts';
export * from './find-airlock-error.ts';
export * from './account.ts';
export * from './x402.ts';
export * from './receipts.ts';
export * from './l402.ts';
export * from './sessions.ts';
export * from './smart-account.ts';
