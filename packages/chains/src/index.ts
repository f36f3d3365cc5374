export * from './evm/index.ts';
export * from './nostr/index.ts';
