// Bitcoin test doubles and independent verification (bitcoinjs-lib + tiny-secp256k1), for tests only.
export * from './chain.ts';
export * from './psbt-builder.ts';
export * from './psbt-maps.ts';
export * from './verify-psbt.ts';
export * from './wallet.ts';
