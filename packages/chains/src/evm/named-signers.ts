// Which address an EVM request names as its signer, read before decoding (ChainAdapter.namedSigners): the
// signing service refuses an earlier key of the agent with `key_rotated` instead of the decoder's generic
// refusal. Nothing is validated here: a malformed field is the decoder's to refuse.
import type { Action } from '@airlock/core';

/**
 * EIP-712 primary types whose message names the signer, and the fields that may, first present wins. `Permit` is
 * EIP-2612's (`owner`) or DAI's (`holder`): without `holder`, a DAI permit from an earlier key got the decoder's
 * 400 instead of `key_rotated` (found by review).
 */
const SIGNER_FIELDS: Readonly<Record<string, readonly string[]>> = {
  TransferWithAuthorization: ['from'], // EIP-3009 (x402 exact)
  ReceiveWithAuthorization: ['from'], // EIP-3009
  CancelAuthorization: ['authorizer'], // EIP-3009
  Permit: ['owner', 'holder'], // EIP-2612, DAI
};

export function namedSigners(action: Action, payload: unknown): string[] {
  if (!isRecord(payload)) return [];
  if (action === 'evm.transaction') return addresses(isRecord(payload.transaction) ? payload.transaction.from : undefined);
  if (action === 'evm.typed_data' && isRecord(payload.typedData)) {
    const { primaryType, message } = payload.typedData;
    const fields = typeof primaryType === 'string' && Object.hasOwn(SIGNER_FIELDS, primaryType) ? SIGNER_FIELDS[primaryType]! : [];
    if (!isRecord(message)) return [];
    const field = fields.find((name) => Object.hasOwn(message, name));
    return field !== undefined ? addresses(message[field]) : [];
  }
  return [];
}

function addresses(value: unknown): string[] {
  return typeof value === 'string' && /^0x[0-9a-fA-F]{40}$/.test(value) ? [value.toLowerCase()] : [];
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
