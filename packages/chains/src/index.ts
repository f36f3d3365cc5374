export * from './evm/index.ts';
