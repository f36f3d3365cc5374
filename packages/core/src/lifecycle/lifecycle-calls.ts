// What the lifecycle path may sign, decided from the decoded transaction. Default deny: a transaction is
// signed only if it is exactly one of these, with every argument checked (docs/policy.md#lifecycle):
//
//   native_transfer  no calldata, value > 0, to = the fleet treasury of the chain or the agent's current address
//   erc20_transfer   ERC-20 transfer(to, amount), no native value, to = the treasury or the current address
//   revocation       no native value, and a call that grants nothing and moves nothing:
//                      ERC-20 approve(spender, 0)
//                      Permit2 (canonical address only) lockdown(pairs), invalidateNonces(token, spender, n),
//                        invalidateUnorderedNonces(word, mask), approve(token, spender, 0, expiration)
//                      EIP-3009 cancelAuthorization(authorizer = the signing key, nonce, v, r, s)
//                      EIP-2612 permit(owner = the signing key, spender, 0, deadline, v, r, s)
//                      DAI permit(holder = the signing key, spender, nonce, expiry, false, v, r, s)
//
// The Permit2, EIP-3009/2612 and DAI calls are decoded here word by word and must be the canonical ABI encoding (no
// trailing bytes, no dirty high bits), so what is checked is what the contract reads. A contract deployment,
// a transfer anywhere else, an approval of anything but zero and every other selector are refused.
import { AirlockError } from '../errors.ts';
import { erc20Asset, nativeAsset, type Intent } from '../intent.ts';
import type { LifecycleKind } from '../ports/lifecycle.ts';
import { PERMIT2_ADDRESS } from '../x402/requirements.ts';

export interface LifecycleCall {
  /** The transaction's fields as signed (lowercase hex). */
  to?: string;
  value: bigint;
  data: string;
}

export interface LifecycleDestinations {
  /** The address of the key that signs. */
  from: string;
  /** The fleet treasury on this chain, if the fleet policy names one. */
  treasury?: string;
  /** The agent's current address (its newest key). */
  current: string;
}

export interface ClassifiedLifecycleCall {
  kind: LifecycleKind;
  /** What moves (transfers): CAIP-19 asset, amount, recipient. */
  asset?: string;
  amount: bigint;
  recipient?: string;
  /** One line for the job and the audit entry. */
  summary: string;
}

export const LIFECYCLE_SELECTORS = {
  erc20Approve: '0x095ea7b3',
  permit2Lockdown: '0xcc53287f',
  permit2InvalidateNonces: '0x65d9723c',
  permit2InvalidateUnorderedNonces: '0x3ff9dcb1',
  permit2Approve: '0x87517c45',
  eip3009CancelAuthorization: '0x5a049a70',
  eip2612Permit: '0xd505accf',
  daiPermit: '0x8fcbaf0c',
} as const;

function refuse(message: string): never {
  throw new AirlockError('lifecycle_kind_refused', message, { hints: ['The lifecycle path signs only transfers to the fleet treasury or the agent\'s current address, and revocations (docs/policy.md#lifecycle).'] });
}

/** Classifies a decoded transaction for the lifecycle path, or throws `lifecycle_kind_refused`. */
export function classifyLifecycleCall(intent: Intent, call: LifecycleCall, who: LifecycleDestinations): ClassifiedLifecycleCall {
  const to = call.to?.toLowerCase();
  if (!to) refuse('A contract deployment is not a lifecycle transaction.');
  const allowedRecipients = new Set([who.current.toLowerCase(), ...(who.treasury ? [who.treasury.toLowerCase()] : [])]);
  allowedRecipients.delete(who.from.toLowerCase()); // a transfer to itself moves nothing and is not a sweep
  const data = call.data.toLowerCase();
  if (data === '0x') {
    if (intent.kind !== 'native.transfer') refuse('The transaction did not decode as a native transfer.');
    if (call.value <= 0n) refuse('A native transfer of nothing is not a lifecycle transaction.');
    if (!allowedRecipients.has(to)) refuse('A native transfer goes only to the fleet treasury or the agent\'s current address.');
    return { kind: 'native_transfer', asset: nativeAsset(intent.chain), amount: call.value, recipient: to, summary: `sweep ${call.value} ${nativeAsset(intent.chain)} to ${to}` };
  }
  if (call.value !== 0n) refuse('A call on the lifecycle path carries no native value.');
  if (intent.kind === 'erc20.transfer') {
    const spend = intent.spends.find((s) => s.kind === 'transfer');
    if (!spend || !spend.to || intent.spends.some((s) => s.kind !== 'transfer' && s.kind !== 'fee')) refuse('The token transfer did not decode to one transfer.');
    if (!allowedRecipients.has(spend.to)) refuse('A token transfer goes only to the fleet treasury or the agent\'s current address.');
    if (spend.amount <= 0n) refuse('A token transfer of nothing is not a lifecycle transaction.');
    return { kind: 'erc20_transfer', asset: erc20Asset(intent.chain, to), amount: spend.amount, recipient: spend.to, summary: `sweep ${spend.amount} ${erc20Asset(intent.chain, to)} to ${spend.to}` };
  }
  if (intent.kind === 'erc20.approve') {
    const approval = intent.approvals[0];
    if (!approval || intent.approvals.length !== 1 || approval.amount !== 0n) refuse('An approval on the lifecycle path sets the allowance to zero.');
    return { kind: 'revocation', amount: 0n, summary: `revoke the allowance of ${approval.spender} on ${to} (approve 0)` };
  }
  const revocation = classifyRevocationCall(to, data, who.from.toLowerCase());
  if (revocation) return { kind: 'revocation', amount: 0n, summary: revocation };
  refuse('The call is not a lifecycle kind (default deny).');
}

/** Reads 32-byte words after the selector; undefined unless the length is exactly `4 + 32 * n`. */
function words(data: string): bigint[] | undefined {
  const body = data.slice(10);
  if (body.length % 64 !== 0) return undefined;
  const out: bigint[] = [];
  for (let i = 0; i < body.length; i += 64) out.push(BigInt(`0x${body.slice(i, i + 64)}`));
  return out;
}

const addressOf = (w: bigint): string | undefined => (w >> 160n === 0n ? `0x${w.toString(16).padStart(40, '0')}` : undefined);
const fitsBits = (w: bigint, bits: number) => w >> BigInt(bits) === 0n;

/** The summary of a revocation call Airlock recognises, or undefined. */
function classifyRevocationCall(to: string, data: string, from: string): string | undefined {
  const selector = data.slice(0, 10);
  const w = words(data);
  if (!w) return undefined;
  if (to === PERMIT2_ADDRESS) {
    switch (selector) {
      case LIFECYCLE_SELECTORS.permit2Lockdown: {
        // lockdown((address token, address spender)[]): offset 0x20, length n, then n pairs.
        if (w.length < 2 || w[0] !== 32n) return undefined;
        const n = w[1]!;
        if (n < 1n || BigInt(w.length) !== 2n + 2n * n) return undefined;
        if (!w.slice(2).every((x) => addressOf(x) !== undefined)) return undefined;
        return `Permit2 lockdown of ${n} token/spender pair(s)`;
      }
      case LIFECYCLE_SELECTORS.permit2InvalidateNonces:
        if (w.length !== 3 || !addressOf(w[0]!) || !addressOf(w[1]!) || !fitsBits(w[2]!, 48)) return undefined;
        return `Permit2 invalidateNonces(${addressOf(w[0]!)}, ${addressOf(w[1]!)}, ${w[2]})`;
      case LIFECYCLE_SELECTORS.permit2InvalidateUnorderedNonces:
        if (w.length !== 2) return undefined;
        return `Permit2 invalidateUnorderedNonces(word ${w[0]})`;
      case LIFECYCLE_SELECTORS.permit2Approve:
        if (w.length !== 4 || !addressOf(w[0]!) || !addressOf(w[1]!) || w[2] !== 0n || !fitsBits(w[3]!, 48)) return undefined;
        return `Permit2 approve(${addressOf(w[0]!)}, ${addressOf(w[1]!)}, 0)`;
      default:
        return undefined;
    }
  }
  switch (selector) {
    case LIFECYCLE_SELECTORS.eip3009CancelAuthorization:
      // cancelAuthorization(address authorizer, bytes32 nonce, uint8 v, bytes32 r, bytes32 s): only the key's own.
      if (w.length !== 5 || addressOf(w[0]!) !== from || !fitsBits(w[2]!, 8)) return undefined;
      return `EIP-3009 cancelAuthorization on ${to}`;
    case LIFECYCLE_SELECTORS.eip2612Permit:
      // permit(owner, spender, value, deadline, v, r, s) with value 0: sets the allowance to zero, uses the nonce.
      if (w.length !== 7 || addressOf(w[0]!) !== from || !addressOf(w[1]!) || w[2] !== 0n || !fitsBits(w[4]!, 8)) return undefined;
      return `EIP-2612 zero-value permit of ${addressOf(w[1]!)} on ${to}`;
    case LIFECYCLE_SELECTORS.daiPermit:
      // DAI permit(holder, spender, nonce, expiry, allowed, v, r, s) with allowed false (the bool word exactly 0):
      // sets the allowance to zero, uses the nonce.
      if (w.length !== 8 || addressOf(w[0]!) !== from || !addressOf(w[1]!) || w[4] !== 0n || !fitsBits(w[5]!, 8)) return undefined;
      return `DAI permit allowed = false of ${addressOf(w[1]!)} on ${to}`;
    default:
      return undefined;
  }
}
