// What a signed intent granted to others, as grant rows (ports/grants.ts). Pure and cheap: the signing hot path
// calls `grantsOf` on every allowed request, and a request that grants nothing (a transfer, a message) returns
// the shared empty list after two field reads.
import { PERMIT2_ADDRESS, X402_EXACT_PERMIT2_PROXY } from '../x402/requirements.ts';
import type { Intent } from '../intent.ts';
import type { GrantKind, GrantRecord } from '../ports/grants.ts';
import { addressAt, SELECTORS, wordAt } from './abi-words.ts';
import { UNLIMITED_ALLOWANCE } from '../policy/approval-totals.ts';

const NONE: readonly GrantRecord[] = Object.freeze([]);
const MAX_UINT160 = (1n << 160n) - 1n;

/** Who signed, which entry released it, when. */
export interface GrantOrigin {
  agentId: string;
  auditSeq: number;
  nowMs: number;
}

/**
 * The grants `intent` makes, or an empty list (most requests). A grant of 0 grants nothing (approve(spender, 0)
 * and a permit of 0 are how a grant is revoked) and is left out.
 */
export function grantsOf(intent: Intent, origin: GrantOrigin): readonly GrantRecord[] {
  if (intent.approvals.length === 0 && !mayGrantWithoutApprovals(intent)) return NONE;
  const rows = grantRows(intent, origin);
  return rows.some((g) => g.amount === 0n) ? rows.filter((g) => g.amount !== 0n) : rows;
}

function grantRows(intent: Intent, origin: GrantOrigin): readonly GrantRecord[] {
  switch (intent.kind) {
    case 'erc20.approve':
    case 'erc20.increase_allowance':
      return intent.approvals.map((a, index) => row(origin, intent, index, intent.kind as GrantKind, tokenOf(a.asset), tokenOf(a.asset), a.spender, a.amount, a.unlimited, {}));
    case 'eip2612.permit': {
      const a = intent.approvals[0]!;
      const token = tokenOf(a.asset);
      return [row(origin, intent, 0, 'eip2612.permit', token, token, a.spender, a.amount, a.unlimited, { deadline: a.expiresAt, nonce: lastPart(intent.nonceKeys?.[0]), domain: domainOf(intent) })];
    }
    case 'dai.permit': {
      // DAI's permit: allowed = true sets the allowance to uint256 max (a grant, live until its nonce is used or
      // its expiry passes; expiry 0 never does, and the decoder then sets no expiresAt); allowed = false is an
      // approval of 0 (a revocation), left out below like every grant of 0.
      const a = intent.approvals[0]!;
      const token = tokenOf(a.asset);
      return [row(origin, intent, 0, 'dai.permit', token, token, a.spender, a.amount, a.unlimited, { deadline: a.expiresAt, nonce: lastPart(intent.nonceKeys?.[0]), domain: domainOf(intent) })];
    }
    case 'permit2.permit_single':
    case 'permit2.permit_batch': {
      const permit2 = intent.typedData?.domain.verifyingContract?.toLowerCase() ?? PERMIT2_ADDRESS;
      return intent.approvals.map((a, index) => row(origin, intent, index, 'permit2.permit', tokenOf(a.asset), permit2, a.spender, a.amount, a.unlimited, {
        expiresAt: a.expiresAt && a.expiresAt > 0 ? a.expiresAt : undefined,
        deadline: intent.validity?.validBefore,
        nonce: lastPart(intent.nonceKeys?.[index]),
      }));
    }
    case 'permit2.permit_transfer_from':
    case 'permit2.permit_witness_transfer_from': {
      const permit2 = intent.typedData?.domain.verifyingContract?.toLowerCase() ?? PERMIT2_ADDRESS;
      // x402's Permit2 payment names the payee as `to`; the one who pulls is the x402 proxy.
      const spender = intent.payment ? X402_EXACT_PERMIT2_PROXY : (intent.to ?? '');
      const nonce = lastPart(intent.nonceKeys?.[0]);
      return intent.spends.map((s, index) => row(origin, intent, index, 'permit2.transfer', tokenOf(s.asset), permit2, spender, s.amount, false, { deadline: intent.validity?.validBefore, nonce }));
    }
    case 'contract.call':
      return permit2ApproveCall(intent, origin);
    case 'eip3009.transfer_with_authorization':
    case 'eip3009.receive_with_authorization':
      return chainlessAuthorization(intent, origin);
    default:
      return NONE;
  }
}

/** Grants that decode without `approvals`: Permit2 signature transfers, a Permit2 `approve` transaction and a chainless EIP-3009 authorization. */
function mayGrantWithoutApprovals(intent: Intent): boolean {
  return intent.kind === 'permit2.permit_transfer_from' || intent.kind === 'permit2.permit_witness_transfer_from'
    || (intent.kind === 'contract.call' && intent.call?.contract === PERMIT2_ADDRESS && intent.call.selector === SELECTORS.permit2Approve)
    || ((intent.kind === 'eip3009.transfer_with_authorization' || intent.kind === 'eip3009.receive_with_authorization') && intent.typedData?.domain.chainId === undefined);
}

/**
 * An EIP-3009 authorization over a domain without chainId. One bound to a chain is held as a payment and the map
 * reads it from the payments table; a chainless one is not (signing-service.ts `isHeldPayment`: it is charged when
 * signed, since it may be used on any chain), so without this row neither the map nor revoke-all saw it (found by
 * review: an 800 USDC authorization valid 30 days on every chain was missing). Written in the signing transaction,
 * beside its charge. `chain` is the request's label, the one chain it can be named on; `spender` is the payee.
 */
function chainlessAuthorization(intent: Intent, origin: GrantOrigin): readonly GrantRecord[] {
  const spend = intent.spends[0];
  if (intent.typedData?.domain.chainId !== undefined || !spend || !intent.payment) return NONE;
  const token = tokenOf(spend.asset);
  return [row(origin, intent, 0, 'eip3009.authorization', token, token, intent.payment.payTo, spend.amount, false, { deadline: intent.validity?.validBefore, nonce: intent.payment.nonce, domain: domainOf(intent) })];
}

/** Permit2 `approve(token, spender, uint160 amount, uint48 expiration)`: the calldata, or the args a registered ABI decoded. */
function permit2ApproveCall(intent: Intent, origin: GrantOrigin): readonly GrantRecord[] {
  const call = intent.call!;
  let token: string | undefined, spender: string | undefined, amount: bigint, expiration: bigint;
  if (call.args) {
    const a = call.args;
    token = typeof a.token === 'string' ? a.token : undefined;
    spender = typeof a.spender === 'string' ? a.spender : undefined;
    amount = uintArg(a.amount);
    // viem decodes an int of 48 bits or fewer as a JS number, not a bigint: read both, or an approve decoded through
    // a policy `abis` declaration left no grant row (found by review: the allowance was missing from the map).
    expiration = uintArg(a.expiration);
  } else {
    const data = call.data ?? '';
    if (data.length !== 10 + 4 * 64) return NONE;
    token = addressAt(data, 0);
    spender = addressAt(data, 1);
    amount = wordAt(data, 2);
    expiration = wordAt(data, 3);
  }
  if (!token || !spender || amount < 0n || amount > MAX_UINT160 || expiration < 0n || expiration >= 1n << 48n) return NONE;
  // Permit2: an expiration of 0 means "valid for this block only" (block.timestamp): nothing lasting.
  return [row(origin, intent, 0, 'permit2.approve', token.toLowerCase(), PERMIT2_ADDRESS, spender.toLowerCase(), amount, amount >= UNLIMITED_ALLOWANCE, { expiresAt: expiration === 0n ? undefined : Number(expiration) })];
}

/** A decoded uint argument: a bigint, or a non-negative safe-integer number (how viem decodes uint48 and below); -1n otherwise. */
function uintArg(value: unknown): bigint {
  if (typeof value === 'bigint') return value;
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 ? BigInt(value) : -1n;
}

function row(origin: GrantOrigin, intent: Intent, index: number, kind: GrantKind, token: string, contract: string, spender: string, amount: bigint, unlimited: boolean, extra: { expiresAt?: number | undefined; deadline?: number | undefined; nonce?: string | undefined; domain?: RecordedDomain | undefined }): GrantRecord {
  return {
    agentId: origin.agentId, auditSeq: origin.auditSeq, index, kind, chain: intent.chain, token, contract, owner: intent.from, spender: spender.toLowerCase(), amount, unlimited,
    ...(extra.expiresAt !== undefined ? { expiresAt: extra.expiresAt } : {}),
    ...(extra.deadline !== undefined ? { deadline: extra.deadline } : {}),
    ...(extra.nonce !== undefined ? { nonce: extra.nonce } : {}),
    ...(extra.domain !== undefined ? { domain: extra.domain } : {}),
    createdAt: origin.nowMs,
  };
}

/**
 * The EIP-712 domain a grant was signed under, as recorded: its name and version (what a cancellation or a burn
 * permit signs under), its salt, and which fields it had. A signature under a domain of another shape does not
 * verify, so the revocation planner refuses a shape it cannot reproduce. Rows written before `fields` have none.
 */
export interface RecordedDomain {
  name?: string;
  version?: string;
  salt?: string;
  /** The domain's fields present, in EIP-712 order (`name`, `version`, `chainId`, `verifyingContract`, `salt`). */
  fields?: string[];
}

const DOMAIN_FIELDS = ['name', 'version', 'chainId', 'verifyingContract', 'salt'] as const;

// Found by review: only name and version were kept, so an authorization signed under a salted domain was
// "cancelled" under the domain without the salt, a signature the token rejects, and reported submitted.
function domainOf(intent: Intent): RecordedDomain | undefined {
  const d = intent.typedData?.domain;
  if (!d) return undefined;
  return {
    ...(d.name !== undefined ? { name: d.name } : {}), ...(d.version !== undefined ? { version: d.version } : {}), ...(d.salt !== undefined ? { salt: d.salt } : {}),
    fields: DOMAIN_FIELDS.filter((f) => d[f] !== undefined),
  };
}

/** The token of a CAIP-19 `…/erc20:0x…` asset. */
function tokenOf(asset: string): string {
  const i = asset.indexOf('/erc20:');
  return i < 0 ? asset : asset.slice(i + '/erc20:'.length);
}

/** The nonce at the end of a nonce key (intent.ts `nonceKey`). */
function lastPart(key: string | undefined): string | undefined {
  if (key === undefined) return undefined;
  return key.slice(key.lastIndexOf('|') + 1);
}
