// Strict readers for JSON request fields. Each one either returns a normalised value or throws an
// AirlockError naming the field path; none of them guesses, and none echoes the (possibly long) value.
import { AirlockError, UNLIMITED_ALLOWANCE } from '@airlock/core';
import { isAddress } from 'viem';
import type { Hex } from 'viem';

export const MAX_UINT256 = (1n << 256n) - 1n;
export const MAX_UINT160 = (1n << 160n) - 1n;

/**
 * An allowance this large is unlimited in effect, whatever its exact value: 2^128 base units is 3.4e20 tokens of
 * an 18-decimal token, more than any balance. Only the exact maximum (uint256, or uint160 for Permit2) was flagged
 * before, so `max - 1` passed as a bounded approval, uncharged wherever no budget named its asset, and escaped the
 * default deny of unlimited approvals (found by review).
 */
export { UNLIMITED_ALLOWANCE } from '@airlock/core';
export const isUnlimitedAllowance = (amount: bigint): boolean => amount >= UNLIMITED_ALLOWANCE;

const DECIMAL = /^[0-9]+$/;
const HEX_QUANTITY = /^0x[0-9a-fA-F]+$/;
const HEX_BYTES = /^0x(?:[0-9a-fA-F]{2})*$/;

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function readRecord(value: unknown, path: string): Record<string, unknown> {
  if (!isRecord(value)) throw new AirlockError('invalid_request', `${path} must be an object`);
  return value;
}

/** Rejects keys the decoder would otherwise ignore: an ignored field is a field signed without being understood. */
export function rejectUnknownKeys(record: Record<string, unknown>, allowed: readonly string[], path: string): void {
  for (const key of Object.keys(record)) {
    if (!allowed.includes(key)) throw new AirlockError('invalid_request', `${path} has an unsupported field '${key.slice(0, 40)}'`);
  }
}

/**
 * An unsigned integer from a JSON number (safe integers only), a decimal string, a 0x-hex string or a bigint,
 * bounded by `max` (2^256-1 unless told otherwise).
 */
export function readQuantity(value: unknown, path: string, max: bigint = MAX_UINT256): bigint {
  let parsed: bigint;
  if (typeof value === 'bigint') parsed = value;
  else if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new AirlockError('invalid_amount', `${path} must be a safe integer (send larger values as a decimal string)`);
    parsed = BigInt(value);
  } else if (typeof value === 'string') {
    if (DECIMAL.test(value) || HEX_QUANTITY.test(value)) parsed = BigInt(value);
    else if (/^-[0-9]+$/.test(value) || /^-0x/i.test(value)) throw new AirlockError('invalid_amount', `${path} must not be negative`);
    else throw new AirlockError('invalid_amount', `${path} must be a decimal or 0x-hex integer`);
  } else throw new AirlockError('invalid_amount', `${path} must be an integer`);
  if (parsed < 0n) throw new AirlockError('invalid_amount', `${path} must not be negative`);
  if (parsed > max) throw new AirlockError('invalid_amount', `${path} is larger than the maximum of its type`);
  return parsed;
}

/** A quantity that must also fit a JS safe integer (nonces, chain ids). */
export function readSafeInteger(value: unknown, path: string): number {
  const parsed = readQuantity(value, path);
  if (parsed > BigInt(Number.MAX_SAFE_INTEGER)) throw new AirlockError('invalid_amount', `${path} is larger than 2^53-1`);
  return Number(parsed);
}

/** Unix seconds for the intent: values past 2^53-1 (often max uint256 meaning "never") become MAX_SAFE_INTEGER, i.e. effectively unbounded. */
export function toUnixSeconds(value: bigint): number {
  return value > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(value);
}

export function readAddress(value: unknown, path: string): `0x${string}` {
  if (typeof value !== 'string' || !isAddress(value, { strict: false })) {
    throw new AirlockError('invalid_address', `${path} must be a 20-byte 0x-hex address`);
  }
  return value.toLowerCase() as `0x${string}`;
}

/** 0x-prefixed hex with an even number of digits (lowercased); `bytes` fixes the length when given. */
export function readHex(value: unknown, path: string, bytes?: number): Hex {
  if (typeof value !== 'string' || !HEX_BYTES.test(value)) {
    throw new AirlockError('invalid_hex', `${path} must be 0x-prefixed hex with whole bytes`);
  }
  if (bytes !== undefined && value.length !== 2 + bytes * 2) {
    throw new AirlockError('invalid_hex', `${path} must be exactly ${bytes} bytes`);
  }
  return value.toLowerCase() as Hex;
}

/** `chainId` as an EIP-155 number; also accepts a CAIP-2 `eip155:<n>` string. */
export function readChainId(value: unknown, path: string): number {
  if (typeof value === 'string' && value.includes(':')) {
    const match = /^eip155:([0-9]{1,16})$/.exec(value);
    if (!match) throw new AirlockError('unsupported_chain', `${path} must be an eip155 chain`);
    value = match[1];
  }
  let chainId: number;
  try {
    chainId = readSafeInteger(value, path);
  } catch (cause) {
    throw new AirlockError('unsupported_chain', `${path} must be a positive integer chain id`, { cause });
  }
  if (chainId < 1) throw new AirlockError('unsupported_chain', `${path} must be a positive integer chain id`);
  return chainId;
}

export function caip2(chainId: number): string {
  return `eip155:${chainId}`;
}
