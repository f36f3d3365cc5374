// Builds what the official x402 client builds (@x402/evm 2.27.0, src/exact/client/{eip3009,permit2}.ts and
// src/exact/v1/client), so a resource server and facilitator cannot tell Airlock from the reference client.
import { bytesToHex } from '@noble/hashes/utils.js';
import { AirlockError } from '../errors.ts';
import { toChecksumAddress } from '../evm-address.ts';
import { EIP3009_AUTHORIZATION_FIELDS, X402_PERMIT2_WITNESS_FIELDS, eip712Types } from './eip712-fields.ts';
import { PERMIT2_ADDRESS, X402_EXACT_PERMIT2_PROXY, type PaymentCandidate, type PaymentRequired } from './requirements.ts';

// The reference client sends checksummed addresses; re-exported for the x402 tests that import it from here.
export { toChecksumAddress };

const AUTHORIZATION_TYPES = { TransferWithAuthorization: eip712Types(EIP3009_AUTHORIZATION_FIELDS) };

// @x402/evm `permit2WitnessTypes`: the proxy checks Witness(to, validAfter).
const PERMIT2_WITNESS_TYPES = {
  PermitWitnessTransferFrom: [
    { name: 'permitted', type: 'TokenPermissions' },
    { name: 'spender', type: 'address' },
    { name: 'nonce', type: 'uint256' },
    { name: 'deadline', type: 'uint256' },
    { name: 'witness', type: 'Witness' },
  ],
  TokenPermissions: [
    { name: 'token', type: 'address' },
    { name: 'amount', type: 'uint256' },
  ],
  Witness: eip712Types(X402_PERMIT2_WITNESS_FIELDS),
};

export interface BuiltPayment {
  method: 'eip3009' | 'permit2';
  /** The `/v1/sign/typed-data` payload: what is evaluated and signed. */
  request: { typedData: { domain: Record<string, unknown>; types: Record<string, unknown>; primaryType: string; message: Record<string, unknown> } };
  /** The authorization as the payment payload carries it (`authorization` or `permit2Authorization`). */
  authorization: Record<string, unknown>;
  validBefore: number;
}

/**
 * The longest authorization Airlock builds where the policy sets no `validity_window`. The server's
 * `maxTimeoutSeconds` is a maximum, so a shorter one is still a valid payment; without this bound a server asking
 * for 2^53-1 seconds got an authorization that never expires (its hold never released) and whose validBefore,
 * past 2^53 once added to now, was signed as a different number than the payment record kept (found by review).
 */
export const DEFAULT_MAX_VALIDITY_SECONDS = 86_400;

/**
 * validBefore = now + min(maxTimeoutSeconds, the policy's maximum validity or a day): an authorization never lives
 * longer than the server needs or the operator allows. validAfter is "0" as in the reference client.
 * `nonce` is 32 bytes from a CSPRNG.
 */
export function buildPayment(c: PaymentCandidate, from: string, nonce: Uint8Array, nowSeconds: number, maxValiditySeconds?: number): BuiltPayment {
  if (nonce.length !== 32) throw new Error('an x402 nonce is 32 bytes');
  const lifetime = Math.min(c.maxTimeoutSeconds, maxValiditySeconds ?? DEFAULT_MAX_VALIDITY_SECONDS);
  const validBefore = nowSeconds + lifetime;
  // A validity_window near 2^53 s, met by a server asking as much: past 2^53 the number signed is not the one kept.
  if (!Number.isSafeInteger(validBefore)) throw new AirlockError('invalid_request', 'The authorization would end past 2^53-1 seconds: set a shorter validity_window.');
  const fromAddress = toChecksumAddress(from);
  if (c.method === 'eip3009') {
    const authorization = {
      from: fromAddress,
      to: toChecksumAddress(c.payTo),
      value: c.amount.toString(),
      validAfter: '0',
      validBefore: String(validBefore),
      nonce: `0x${bytesToHex(nonce)}`,
    };
    return {
      method: 'eip3009',
      request: {
        typedData: {
          domain: { name: c.domain!.name, version: c.domain!.version, chainId: c.chainId, verifyingContract: toChecksumAddress(c.asset) },
          types: AUTHORIZATION_TYPES,
          primaryType: 'TransferWithAuthorization',
          message: { ...authorization },
        },
      },
      authorization,
      validBefore,
    };
  }
  // Permit2 nonces are uint256: the reference client uses 32 random bytes as a decimal string.
  const permit2Authorization = {
    from: fromAddress,
    permitted: { token: toChecksumAddress(c.asset), amount: c.amount.toString() },
    spender: toChecksumAddress(X402_EXACT_PERMIT2_PROXY),
    nonce: BigInt(`0x${bytesToHex(nonce)}`).toString(),
    deadline: String(validBefore),
    witness: { to: toChecksumAddress(c.payTo), validAfter: '0' },
  };
  const { from: _from, ...message } = permit2Authorization;
  return {
    method: 'permit2',
    request: {
      typedData: {
        domain: { name: 'Permit2', chainId: c.chainId, verifyingContract: toChecksumAddress(PERMIT2_ADDRESS) },
        types: PERMIT2_WITNESS_TYPES,
        primaryType: 'PermitWitnessTransferFrom',
        message,
      },
    },
    authorization: permit2Authorization,
    validBefore,
  };
}

/**
 * The PaymentPayload the resource server reads. v2: `{x402Version, payload, extensions?, resource, accepted}`
 * with `accepted` the requirement exactly as received (servers match it by deep equality).
 * v1: `{x402Version, scheme, network, payload}`.
 */
export function paymentPayload(c: PaymentCandidate, required: Pick<PaymentRequired, 'resource' | 'extensions'>, resourceUrl: string, built: BuiltPayment, signature: string): Record<string, unknown> {
  // Field order as the reference client writes it, whatever order the plan was stored in (a replay
  // must produce the very same header bytes).
  const a = built.authorization as Record<string, any>;
  const inner = built.method === 'eip3009'
    ? { authorization: { from: a.from, to: a.to, value: a.value, validAfter: a.validAfter, validBefore: a.validBefore, nonce: a.nonce }, signature }
    : {
      signature,
      permit2Authorization: {
        from: a.from, permitted: { token: a.permitted.token, amount: a.permitted.amount }, spender: a.spender, nonce: a.nonce, deadline: a.deadline,
        witness: { to: a.witness.to, validAfter: a.witness.validAfter },
      },
    };
  if (c.x402Version === 1) return { x402Version: 1, scheme: c.scheme, network: c.network, payload: inner };
  return {
    x402Version: 2,
    payload: inner,
    ...(required.extensions !== undefined ? { extensions: required.extensions } : {}),
    resource: required.resource ?? { url: resourceUrl },
    accepted: c.raw,
  };
}

export function paymentHeaderName(x402Version: 1 | 2): 'PAYMENT-SIGNATURE' | 'X-PAYMENT' {
  return x402Version === 2 ? 'PAYMENT-SIGNATURE' : 'X-PAYMENT';
}
