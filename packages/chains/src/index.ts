export * from './evm/index.ts';
export * from './nostr/index.ts';
export * from './lightning/index.ts';
export * from './bitcoin/index.ts';
