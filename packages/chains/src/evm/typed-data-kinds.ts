// Recognises the typed-data standards that move or expose tokens. A match needs the primary type AND the exact
// field list (names and types, in order) of it and of every struct it uses: a lookalike stays typed_data.unknown.
import { AirlockError, EIP3009_AUTHORIZATION_FIELDS, X402_EXACT_PERMIT2_PROXY, X402_PERMIT2_WITNESS_FIELDS, erc20Asset } from '@airlock/core';
import type { Approval, Eip712Fields, IntentKind, PaymentInfo, Spend } from '@airlock/core';
import type { TypedDataParameter } from 'viem';
import { isUnlimitedAllowance, toUnixSeconds } from './fields.ts';
import type { NormalisedTypedData, TypeDefinitions } from './typed-data.ts';

export interface KnownTypedData {
  kind: IntentKind;
  to?: string;
  spends: Spend[];
  approvals: Approval[];
  validity?: { validAfter?: number; validBefore?: number };
  /** x402-capable payments: EIP-3009 TransferWithAuthorization, and Permit2 witness transfers of x402's shape. */
  payment?: PaymentInfo;
  /** Single-use nonces the signature consumes; the decoder turns them into `Intent.nonceKeys` with the signer. */
  nonces?: NonceRef[];
  summary: string;
}

/** A nonce before the signer is known: standard, contract (token or Permit2), extra scope and value. */
export interface NonceRef {
  standard: 'eip3009' | 'eip2612' | 'permit2-transfer' | 'permit2-allowance';
  contract: string;
  nonce: bigint | string;
  scope?: string[];
}

/** The EIP-712 verifying contract, or a marker when the domain has none (Permit2's is always set on chain). */
function verifyingContractOf(data: NormalisedTypedData): string {
  return data.domain.verifyingContract?.toLowerCase() ?? 'no-verifying-contract';
}

// The x402 field lists and the proxy address come from core, shared with the x402 payment builder.
type Shape = Eip712Fields;

const EIP2612_PERMIT: Shape = [['owner', 'address'], ['spender', 'address'], ['value', 'uint256'], ['nonce', 'uint256'], ['deadline', 'uint256']];
// DAI (and tokens copied from it) predates EIP-2612: `allowed` grants an unlimited allowance (uint256 max) or takes
// it away, `expiry` 0 never expires, and the nonce is nonces(holder) as in EIP-2612 (Dai.sol, `permit`). It was read
// as unknown typed data: no approval, so neither the unlimited default nor `spenders` saw it (found by review).
const DAI_PERMIT: Shape = [['holder', 'address'], ['spender', 'address'], ['nonce', 'uint256'], ['expiry', 'uint256'], ['allowed', 'bool']];
const PERMIT2_DETAILS: Shape = [['token', 'address'], ['amount', 'uint160'], ['expiration', 'uint48'], ['nonce', 'uint48']];
const PERMIT2_SINGLE: Shape = [['details', 'PermitDetails'], ['spender', 'address'], ['sigDeadline', 'uint256']];
const PERMIT2_BATCH: Shape = [['details', 'PermitDetails[]'], ['spender', 'address'], ['sigDeadline', 'uint256']];
const PERMIT2_TOKEN_PERMISSIONS: Shape = [['token', 'address'], ['amount', 'uint256']];
const PERMIT2_TRANSFER_FROM: Shape = [['permitted', 'TokenPermissions'], ['spender', 'address'], ['nonce', 'uint256'], ['deadline', 'uint256']];
const PERMIT2_BATCH_TRANSFER_FROM: Shape = [['permitted', 'TokenPermissions[]'], ['spender', 'address'], ['nonce', 'uint256'], ['deadline', 'uint256']];

function hasShape(types: TypeDefinitions, typeName: string, shape: Shape): boolean {
  const fields = types[typeName];
  return !!fields && fields.length === shape.length && shape.every(([name, type], i) => fields[i]?.name === name && fields[i]?.type === type);
}

/** Permit2's witness variants: the transfer fields, then exactly one witness field of any type and name. */
function hasWitnessShape(types: TypeDefinitions, typeName: string, shape: Shape): boolean {
  const fields = types[typeName];
  if (!fields || fields.length !== shape.length + 1) return false;
  return hasShape({ [typeName]: fields.slice(0, shape.length) as TypedDataParameter[] }, typeName, shape);
}

const EIP3009_CANCEL: Shape = [['authorizer', 'address'], ['nonce', 'bytes32']];

/**
 * The message field that names the account whose funds or allowance the signature moves, for the standards
 * that name it (EIP-3009 `from` and `authorizer`, EIP-2612 `owner`), with its value. The token checks the
 * signature against that account, and with ERC-1271 (USDC v2.2's SignatureChecker, EIP-2612 tokens that accept
 * contract signatures) a contract wallet the agent's key owns accepts the agent's signature: the funds would
 * move from that wallet while Airlock holds and reconciles the payment under the agent's own address (the
 * chain says the agent's nonce was never used, the hold is released, the value moved uncharged). The decoder
 * refuses any other account. Permit2 names no owner in what is signed (the caller passes it): its spends are
 * charged when signed, never held against the owner's nonce state.
 */
export function namedAccount(data: NormalisedTypedData): { field: string; address: string } | undefined {
  const { types, primaryType, message } = data;
  switch (primaryType) {
    case 'TransferWithAuthorization':
    case 'ReceiveWithAuthorization':
      return hasShape(types, primaryType, EIP3009_AUTHORIZATION_FIELDS) ? { field: 'from', address: (message.from as string).toLowerCase() } : undefined;
    case 'CancelAuthorization':
      return hasShape(types, primaryType, EIP3009_CANCEL) ? { field: 'authorizer', address: (message.authorizer as string).toLowerCase() } : undefined;
    case 'Permit':
      if (hasShape(types, primaryType, DAI_PERMIT)) return { field: 'holder', address: (message.holder as string).toLowerCase() };
      return hasShape(types, primaryType, EIP2612_PERMIT) ? { field: 'owner', address: (message.owner as string).toLowerCase() } : undefined;
    default:
      return undefined;
  }
}

export function classifyTypedData(data: NormalisedTypedData, chain: string): KnownTypedData | undefined {
  const { types, primaryType, message } = data;
  switch (primaryType) {
    case 'TransferWithAuthorization':
    case 'ReceiveWithAuthorization':
      return hasShape(types, primaryType, EIP3009_AUTHORIZATION_FIELDS) ? eip3009(data, chain) : undefined;
    case 'Permit':
      if (hasShape(types, primaryType, DAI_PERMIT)) return daiPermit(data, chain);
      return hasShape(types, primaryType, EIP2612_PERMIT) ? eip2612(data, chain) : undefined;
    case 'PermitSingle':
      if (!hasShape(types, primaryType, PERMIT2_SINGLE) || !hasShape(types, 'PermitDetails', PERMIT2_DETAILS)) return undefined;
      return permit2Allowance('permit2.permit_single', [message.details as Record<string, unknown>], message, chain, verifyingContractOf(data));
    case 'PermitBatch':
      if (!hasShape(types, primaryType, PERMIT2_BATCH) || !hasShape(types, 'PermitDetails', PERMIT2_DETAILS)) return undefined;
      return permit2Allowance('permit2.permit_batch', message.details as Record<string, unknown>[], message, chain, verifyingContractOf(data));
    case 'PermitTransferFrom':
    case 'PermitBatchTransferFrom': {
      const shape = primaryType === 'PermitTransferFrom' ? PERMIT2_TRANSFER_FROM : PERMIT2_BATCH_TRANSFER_FROM;
      if (!hasShape(types, primaryType, shape) || !hasShape(types, 'TokenPermissions', PERMIT2_TOKEN_PERMISSIONS)) return undefined;
      return permit2Transfer('permit2.permit_transfer_from', message, chain, verifyingContractOf(data));
    }
    case 'PermitWitnessTransferFrom':
    case 'PermitBatchWitnessTransferFrom': {
      const shape = primaryType === 'PermitWitnessTransferFrom' ? PERMIT2_TRANSFER_FROM : PERMIT2_BATCH_TRANSFER_FROM;
      if (!hasWitnessShape(types, primaryType, shape) || !hasShape(types, 'TokenPermissions', PERMIT2_TOKEN_PERMISSIONS)) return undefined;
      const known = permit2Transfer('permit2.permit_witness_transfer_from', message, chain, verifyingContractOf(data));
      const witnessField = types[primaryType]![shape.length]!;
      if (primaryType === 'PermitWitnessTransferFrom' && witnessField.name === 'witness' && hasShape(types, witnessField.type, X402_PERMIT2_WITNESS_FIELDS)
        && (message.spender as string).toLowerCase() === X402_EXACT_PERMIT2_PROXY) {
        // x402 exact via Permit2: the canonical proxy only transfers to witness.to, so that is where the
        // money goes. With any other spender the spender itself is the destination (it can send anywhere).
        const witness = message.witness as Record<string, unknown>;
        const payTo = (witness.to as string).toLowerCase();
        known.to = payTo;
        for (const spend of known.spends) spend.to = payTo;
        known.payment = { protocol: 'x402', payTo, network: chain, nonce: (message.nonce as bigint).toString(), validBefore: toUnixSeconds(message.deadline as bigint) };
        known.summary = `x402 permit2: pay ${known.spends.map((x) => `${x.amount} of ${x.asset}`).join(', ')} to ${payTo} via the x402 proxy (deadline ${known.validity?.validBefore})`;
      }
      return known;
    }
    default:
      return undefined;
  }
}

/** The token whose contract is the EIP-712 verifying contract (EIP-3009, EIP-2612). */
function domainToken(data: NormalisedTypedData): string {
  const token = data.domain.verifyingContract;
  if (!token) throw new AirlockError('undecodable_payload', `typedData.domain.verifyingContract is required for ${data.primaryType}`);
  return token.toLowerCase();
}

// EIP-3009: the signer authorizes `value` of the token to `to`, usable between validAfter and validBefore.
function eip3009(data: NormalisedTypedData, chain: string): KnownTypedData {
  const m = data.message;
  const asset = erc20Asset(chain, domainToken(data));
  const to = m.to as string;
  const amount = m.value as bigint;
  const validAfter = toUnixSeconds(m.validAfter as bigint);
  const validBefore = toUnixSeconds(m.validBefore as bigint);
  const receive = data.primaryType === 'ReceiveWithAuthorization';
  return {
    kind: receive ? 'eip3009.receive_with_authorization' : 'eip3009.transfer_with_authorization',
    to,
    spends: [{ asset, amount, to, kind: 'authorization' }],
    approvals: [],
    validity: { validAfter, validBefore },
    payment: { protocol: 'x402', payTo: to, network: chain, nonce: (m.nonce as string).toLowerCase(), validBefore },
    // EIP-3009: authorizationState(authorizer, nonce) is one map per token, shared by transfer and receive.
    nonces: [{ standard: 'eip3009', contract: domainToken(data), nonce: (m.nonce as string).toLowerCase() }],
    summary: `authorize ${receive ? 'receive of ' : 'transfer of '}${amount} of ${asset} to ${to}, valid ${validAfter}..${validBefore}`,
  };
}

// EIP-2612: an allowance for `spender`, granted off-chain, submittable until `deadline`.
function eip2612(data: NormalisedTypedData, chain: string): KnownTypedData {
  const m = data.message;
  const asset = erc20Asset(chain, domainToken(data));
  const spender = m.spender as string;
  const amount = m.value as bigint;
  const deadline = toUnixSeconds(m.deadline as bigint);
  const unlimited = isUnlimitedAllowance(amount);
  return {
    kind: 'eip2612.permit',
    to: spender,
    spends: [],
    approvals: [{ asset, amount, spender, unlimited, expiresAt: deadline }],
    validity: { validBefore: deadline },
    // EIP-2612: nonces(owner) per token; a permit consumes the current one.
    nonces: [{ standard: 'eip2612', contract: domainToken(data), nonce: m.nonce as bigint }],
    summary: `permit ${spender} to spend ${unlimited ? 'UNLIMITED' : amount} of ${asset} (deadline ${deadline})`,
  };
}

// DAI's permit: `allowed` sets the spender's allowance to uint256 max (unlimited) or to 0, submittable until
// `expiry` (0: forever). A revocation (allowed false) is an approval of 0, which nothing limits. Expiry 0 is valid
// for as long as any validity can be, so its validBefore is the furthest one: a `validity_window` refuses it like a
// far expiry (with no validBefore the rule skipped it; found by review). The approval keeps no expiresAt (it never
// lapses) and the nonce claim never lapses either, as before.
function daiPermit(data: NormalisedTypedData, chain: string): KnownTypedData {
  const m = data.message;
  const asset = erc20Asset(chain, domainToken(data));
  const spender = m.spender as string;
  const allowed = m.allowed === true;
  const expiry = m.expiry as bigint;
  const deadline = expiry === 0n ? undefined : toUnixSeconds(expiry);
  const amount = allowed ? (1n << 256n) - 1n : 0n;
  return {
    kind: 'dai.permit',
    to: spender,
    spends: [],
    approvals: [{ asset, amount, spender, unlimited: allowed, ...(deadline !== undefined ? { expiresAt: deadline } : {}) }],
    validity: { validBefore: deadline ?? Number.MAX_SAFE_INTEGER },
    nonces: [{ standard: 'eip2612', contract: domainToken(data), nonce: m.nonce as bigint }],
    summary: allowed
      ? `DAI permit: allow ${spender} to spend UNLIMITED ${asset} (${deadline === undefined ? 'never expires' : `deadline ${deadline}`})`
      : `DAI permit: take away ${spender}'s allowance of ${asset}`,
  };
}

// Permit2 AllowanceTransfer: per-token allowances (uint160, max = unlimited) that lapse at `expiration`.
function permit2Allowance(kind: IntentKind, details: Record<string, unknown>[], m: Record<string, unknown>, chain: string, permit2: string): KnownTypedData {
  const spender = m.spender as string;
  const sigDeadline = toUnixSeconds(m.sigDeadline as bigint);
  const approvals: Approval[] = details.map((d) => {
    const amount = d.amount as bigint;
    return { asset: erc20Asset(chain, d.token as string), amount, spender, unlimited: isUnlimitedAllowance(amount), expiresAt: toUnixSeconds(d.expiration as bigint) };
  });
  const what = approvals.map((a) => `${a.unlimited ? 'UNLIMITED' : a.amount} of ${a.asset}`).join(', ');
  return {
    kind,
    to: spender,
    spends: [],
    approvals,
    validity: { validBefore: sigDeadline },
    // AllowanceTransfer: nonces are sequential per (owner, token, spender); each detail consumes one.
    nonces: details.map((d) => ({ standard: 'permit2-allowance' as const, contract: permit2, nonce: d.nonce as bigint, scope: [(d.token as string).toLowerCase(), spender.toLowerCase()] })),
    summary: `permit2: allow ${spender} to spend ${what || 'nothing'} (signature deadline ${sigDeadline})`,
  };
}

// Permit2 SignatureTransfer: the spender may pull the permitted amounts once, until `deadline`.
function permit2Transfer(kind: IntentKind, m: Record<string, unknown>, chain: string, permit2: string): KnownTypedData {
  const spender = m.spender as string;
  const permitted = (Array.isArray(m.permitted) ? m.permitted : [m.permitted]) as Record<string, unknown>[];
  const deadline = toUnixSeconds(m.deadline as bigint);
  const spends: Spend[] = permitted.map((p) => ({ asset: erc20Asset(chain, p.token as string), amount: p.amount as bigint, to: spender, kind: 'authorization' }));
  const what = spends.map((s) => `${s.amount} of ${s.asset}`).join(', ');
  return {
    kind,
    to: spender,
    spends,
    approvals: [],
    validity: { validBefore: deadline },
    // SignatureTransfer: one unordered nonce (a bit in the owner's bitmap), whatever the witness.
    nonces: [{ standard: 'permit2-transfer', contract: permit2, nonce: m.nonce as bigint }],
    summary: `permit2: authorize ${spender} to transfer ${what || 'nothing'} (deadline ${deadline})`,
  };
}
