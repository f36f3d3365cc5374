import { AirlockError } from '../errors.ts';
import type { ViolationCode } from '../codes.ts';
import { evmChainIdOf } from './networks.ts';

/** What a 402 response carried, after the HTTP edge decoded any base64. */
export interface PaymentRequired {
  x402Version: 1 | 2;
  /** The requirements, exactly as received (each is echoed back in a v2 payload's `accepted`). */
  accepts: Record<string, unknown>[];
  /** v2 `resource` (ResourceInfo: url, description, mimeType), echoed back in the payload. */
  resource?: Record<string, unknown>;
  /** v2 `extensions`, echoed back in the payload as the official client does. */
  extensions?: Record<string, unknown>;
}

/** The canonical x402 exact-scheme Permit2 proxy (@x402/evm `x402ExactPermit2ProxyAddress`). */
export const X402_EXACT_PERMIT2_PROXY = '0x402085c248eea27d92e8b30b2c58ed07f9e20001';
/** Uniswap Permit2 (@x402/evm `PERMIT2_ADDRESS`). */
export const PERMIT2_ADDRESS = '0x000000000022d473030f116ddee9f6b43ac78ba3';

/** A requirement Airlock can pay. Addresses lowercase; `raw` is the requirement as received. */
export interface PaymentCandidate {
  index: number;
  x402Version: 1 | 2;
  raw: Record<string, unknown>;
  scheme: 'exact';
  /** The network as the requirement names it (`base-sepolia` in v1, `eip155:84532` in v2). */
  network: string;
  chainId: number;
  asset: string;
  payTo: string;
  amount: bigint;
  maxTimeoutSeconds: number;
  method: 'eip3009' | 'permit2';
  /** Token EIP-712 domain (EIP-3009). */
  domain?: { name: string; version: string };
}

/** What a refusal lists per requirement. */
export interface RequirementSummary {
  index: number;
  scheme: unknown;
  network: unknown;
  asset: unknown;
  amount: unknown;
  payTo: unknown;
}

export type ClassifiedRequirement =
  | { candidate: PaymentCandidate; summary: RequirementSummary }
  | { skipped: ViolationCode; summary: RequirementSummary };

const MAX_REQUIREMENTS = 32;
const ADDRESS = /^0x[0-9a-fA-F]{40}$/;
const AMOUNT = /^(0|[1-9][0-9]{0,77})$/;
const MAX_UINT256 = (1n << 256n) - 1n;

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Validates a decoded 402 payload. `from`: `header` (v2 PAYMENT-REQUIRED), `body` (v1 JSON body) or
 * `accepts` (already-decoded requirements with their version).
 */
export function readPaymentRequired(value: unknown, from: 'header' | 'body' | 'accepts'): PaymentRequired {
  if (!isRecord(value)) throw new AirlockError('invalid_request', `The ${from === 'header' ? 'PAYMENT-REQUIRED header' : '402 body'} is not a JSON object.`);
  const version = value.x402Version;
  if (version !== 1 && version !== 2) throw new AirlockError('invalid_request', 'x402Version must be 1 or 2.');
  if (from === 'header' && version !== 2) throw new AirlockError('invalid_request', 'A PAYMENT-REQUIRED header is x402 version 2.');
  if (from === 'body' && version !== 1) throw new AirlockError('invalid_request', 'A 402 body with requirements is x402 version 1; v2 sends them in the PAYMENT-REQUIRED header.');
  const accepts = value.accepts;
  if (!Array.isArray(accepts) || accepts.length === 0) throw new AirlockError('invalid_request', 'accepts must be a non-empty list of payment requirements.');
  if (accepts.length > MAX_REQUIREMENTS) throw new AirlockError('invalid_request', `at most ${MAX_REQUIREMENTS} payment requirements are read.`);
  if (!accepts.every(isRecord)) throw new AirlockError('invalid_request', 'every entry of accepts must be an object.');
  const out: PaymentRequired = { x402Version: version, accepts };
  if (isRecord(value.resource)) out.resource = value.resource;
  if (isRecord(value.extensions)) out.extensions = value.extensions;
  return out;
}

/** Decides whether Airlock can pay one requirement at all (policy comes later); never throws. */
export function classifyRequirement(raw: Record<string, unknown>, index: number, x402Version: 1 | 2): ClassifiedRequirement {
  const amountField = x402Version === 1 ? raw.maxAmountRequired : raw.amount;
  const summary: RequirementSummary = { index, scheme: raw.scheme, network: raw.network, asset: raw.asset, amount: amountField, payTo: raw.payTo };
  const skip = (code: ViolationCode): ClassifiedRequirement => ({ skipped: code, summary });

  if (raw.scheme !== 'exact') return skip('x402_unsupported_scheme');
  const chainId = evmChainIdOf(raw.network, x402Version);
  if (chainId === undefined) return skip('x402_unsupported_network');
  if (typeof raw.asset !== 'string' || !ADDRESS.test(raw.asset)) return skip('x402_invalid_requirement');
  if (typeof raw.payTo !== 'string' || !ADDRESS.test(raw.payTo)) return skip('x402_invalid_requirement');
  // 78 digits can exceed uint256: such an amount is no payment any token can take, so it is skipped like any
  // malformed requirement instead of aborting the whole 402 (found by review: one such entry hid a valid one after it).
  if (typeof amountField !== 'string' || !AMOUNT.test(amountField) || BigInt(amountField) > MAX_UINT256) return skip('x402_invalid_requirement');
  const timeout = raw.maxTimeoutSeconds;
  if (typeof timeout !== 'number' || !Number.isSafeInteger(timeout) || timeout <= 0) return skip('x402_invalid_requirement');

  const extra = isRecord(raw.extra) ? raw.extra : {};
  const method = extra.assetTransferMethod ?? 'eip3009';
  const base = {
    index, x402Version, raw, scheme: 'exact' as const, network: raw.network as string, chainId,
    asset: raw.asset.toLowerCase(), payTo: raw.payTo.toLowerCase(), amount: BigInt(amountField), maxTimeoutSeconds: timeout,
  };
  if (method === 'eip3009') {
    if (typeof extra.name !== 'string' || extra.name === '' || typeof extra.version !== 'string' || extra.version === '') return skip('x402_missing_domain');
    return { candidate: { ...base, method: 'eip3009', domain: { name: extra.name, version: extra.version } }, summary };
  }
  if (method === 'permit2') {
    // The exact scheme's Permit2 flow signs for the canonical proxy only: that contract enforces the
    // witness (payTo). Any other spender could take the permitted amount anywhere.
    const spender = extra.spender ?? extra.proxy;
    if (spender !== undefined && (typeof spender !== 'string' || spender.toLowerCase() !== X402_EXACT_PERMIT2_PROXY)) return skip('x402_invalid_spender');
    return { candidate: { ...base, method: 'permit2' }, summary };
  }
  return skip('x402_unsupported_scheme');
}
