export * from './http.ts';
export * from './account.ts';
