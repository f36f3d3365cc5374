// evm.message: EIP-191 version 0x45 ("personal_sign") over utf8 text or raw bytes.
import type { DecodedRequest, Intent, SignerContext } from '@airlock/core';
import { AirlockError } from '@airlock/core';
import { hashMessage, hexToBytes, stringToHex } from 'viem';
import type { Hex, SignableMessage } from 'viem';
import { caip2, readChainId, readHex, readRecord, rejectUnknownKeys } from './fields.ts';

export interface PersonalMessage {
  chainId: number;
  signable: SignableMessage;
  hex: Hex;
  text?: string;
}

export function readMessageRequest(payload: unknown): PersonalMessage {
  const request = readRecord(payload, 'payload');
  rejectUnknownKeys(request, ['chainId', 'message'], 'payload');
  if (request.chainId === undefined) throw new AirlockError('invalid_request', 'chainId is required');
  const chainId = readChainId(request.chainId, 'chainId');
  const message = request.message;
  if (typeof message === 'string') return { chainId, signable: message, hex: stringToHex(message), text: message };
  const raw = readRecord(message, 'message');
  rejectUnknownKeys(raw, ['raw'], 'message');
  const hex = readHex(raw.raw, 'message.raw');
  const text = utf8OrUndefined(hexToBytes(hex));
  return { chainId, signable: { raw: hex }, hex, ...(text !== undefined ? { text } : {}) };
}

function utf8OrUndefined(bytes: Uint8Array): string | undefined {
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    return undefined;
  }
}

export function messageDigest(message: PersonalMessage): Uint8Array {
  return hexToBytes(hashMessage(message.signable));
}

export function decodeMessageRequest(payload: unknown, signer: SignerContext): DecodedRequest {
  const message = readMessageRequest(payload);
  const chain = caip2(message.chainId);
  const size = (message.hex.length - 2) / 2;
  const intent: Intent = {
    action: 'evm.message',
    chain,
    kind: 'message.personal',
    from: signer.address.toLowerCase(),
    spends: [],
    approvals: [],
    message: { ...(message.text !== undefined ? { text: message.text } : {}), hex: message.hex },
    summary: `sign a personal message (${size} bytes${message.text === undefined ? ', not utf8' : ''}) on ${chain}`,
  };
  return { intent, digest: messageDigest(message) };
}
