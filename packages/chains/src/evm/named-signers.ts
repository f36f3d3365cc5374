// Which address an EVM request names as its signer, read before decoding (ChainAdapter.namedSigners): the
// signing service refuses an earlier key of the agent with `key_rotated` instead of the decoder's generic
// refusal. Nothing is validated here: a malformed field is the decoder's to refuse.
import type { Action } from '@airlock/core';

/** EIP-712 primary types whose message names the signer, and the field that does. */
const SIGNER_FIELD: Readonly<Record<string, string>> = {
  TransferWithAuthorization: 'from', // EIP-3009 (x402 exact)
  ReceiveWithAuthorization: 'from', // EIP-3009
  CancelAuthorization: 'authorizer', // EIP-3009
  Permit: 'owner', // EIP-2612
};

export function namedSigners(action: Action, payload: unknown): string[] {
  if (!isRecord(payload)) return [];
  if (action === 'evm.transaction') return addresses(isRecord(payload.transaction) ? payload.transaction.from : undefined);
  if (action === 'evm.typed_data' && isRecord(payload.typedData)) {
    const { primaryType, message } = payload.typedData;
    const field = typeof primaryType === 'string' && Object.hasOwn(SIGNER_FIELD, primaryType) ? SIGNER_FIELD[primaryType]! : undefined;
    return field !== undefined && isRecord(message) ? addresses(message[field]) : [];
  }
  return [];
}

function addresses(value: unknown): string[] {
  return typeof value === 'string' && /^0x[0-9a-fA-F]{40}$/.test(value) ? [value.toLowerCase()] : [];
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
