export * from './evm/index.ts';
export * from './nostr/index.ts';
export * from './lightning/index.ts';
