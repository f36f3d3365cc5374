export { createVault, importVault, openVault, readVaultHeader, MIN_PASSPHRASE_LENGTH } from './vault.ts';
export type { CreateVaultOptions, OpenVaultOptions } from './vault.ts';
export type { UnsealedVault } from './unsealed-vault.ts';
export { DEFAULT_KDF_PARAMS, MIN_KDF_PARAMS, MAX_KDF_PARAMS } from './vault-format.ts';
export type { KdfParams, VaultHeader } from './vault-format.ts';
export { HdKeyBackend } from './hd-backend.ts';
export type { HdKeyBackendOptions } from './hd-backend.ts';
export { AUDIT_KEY_PATH, evmPath, parseDerivationPath } from './derivation-path.ts';
export { verifyEcdsaDer } from './verify-ecdsa-der.ts';
