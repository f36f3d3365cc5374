export { createBitcoinAdapter } from './adapter.ts';
export { bitcoinAccountPaths, type BitcoinAddressType } from './account.ts';
export { bitcoinAccountView, deriveBitcoinAddress, encodeExtendedPublicKey, type BitcoinAccountView, type DerivedBitcoinAddress } from './account-view.ts';
export { descriptorChecksum, hasValidDescriptorChecksum, withDescriptorChecksum } from './descriptor-checksum.ts';
export { assertNetworkEnabled, coinType } from './networks.ts';
export { bip322MessageHash, type Bip322Request } from './message.ts';
export { type PsbtRequest } from './psbt-decode.ts';
export { formatBtc } from './psbt-intent.ts';
export { TAPROOT_KEY_PATH_ACTION, completeGroupKeyPsbt, decodeGroupKeyPsbt, readTaprootKeyPathRequest, taprootOutputScript, type DecodedGroupKeyPsbt, type GroupKeyInput, type TaprootKeyPathRequest } from './psbt-group-key.ts';
