export { createEvmAdapter } from './adapter.ts';
export type { EvmAdapterOptions } from './adapter.ts';
export { AbiRegistry } from './abi-registry.ts';
export { decodeTransactionRequest, readTransactionRequest, transactionDigest } from './transaction.ts';
export type { EvmTransaction } from './transaction.ts';
export { decodeTypedDataRequest, readTypedDataRequest } from './typed-data.ts';
export type { NormalisedTypedData } from './typed-data.ts';
export { decodeMessageRequest } from './message.ts';
export { ERC20_ABI } from './calldata.ts';
