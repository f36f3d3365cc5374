import type { Approval, Intent } from '../intent.ts';
import { innerCalls, without } from './calls.ts';

/**
 * From this many base units an allowance is unlimited in effect: 2^128 base units is 3.4e20 tokens of an 18-decimal
 * token, more than any balance. The EVM adapter marks `Approval.unlimited` by it approval by approval (only the
 * exact maximum was flagged before, so `max - 1` passed as bounded: found by review); the totals here by the same line.
 */
export const UNLIMITED_ALLOWANCE = 1n << 128n;

/** What one request's approvals do to the allowance of one spender over one token, its calls taken in order. */
export interface ApprovalTotal {
  /** Lowercase CAIP-19 asset (it names the chain) and spender. */
  asset: string;
  spender: string;
  /**
   * The highest allowance the request's approvals reach for the pair: an approve (or permit) sets the running
   * value, an increaseAllowance adds to it. Where the request only increases, the allowance already on chain
   * (unknown here) comes on top: the sum is a lower bound of what the spender may take.
   */
  amount: bigint;
  /** `amount` reaches the unlimited line, or an approval that made it is unlimited by itself. */
  unlimited: boolean;
  /** The running value starts from the allowance already on chain (no approve set it): `amount` is a lower bound. */
  lowerBound: boolean;
  /** The approvals that made `amount`: the approve that set the running value, if any, and the increases after it. */
  approvals: readonly Approval[];
  /** The calls those approvals come from, in order (one per approval; a call may appear more than once). */
  parts: readonly Intent[];
}

interface Entry {
  approval: Approval;
  call: Intent;
}

/**
 * Every approval a request grants with the call that grants it, in the order the calls run: a Safe transaction's,
 * a user operation's and a module's calls at any depth (a module call's own approvals, beyond those of the call it
 * executes, first); a request that executes no call grants its own.
 */
function approvalEntries(intent: Intent, out: Entry[] = []): Entry[] {
  const calls = innerCalls(intent);
  const own = calls.length === 0 ? intent.approvals : without(intent.approvals, calls.flatMap((c) => c.approvals));
  for (const approval of own) out.push({ approval, call: intent });
  for (const call of calls) approvalEntries(call, out);
  return out;
}

/**
 * Per (token, spender), what the request's approvals add up to (`ApprovalTotal`). One approval alone is judged as
 * it is; what this adds is the sum of increaseAllowance calls of one batch, each under a cap or the unlimited line
 * but together over it. Permit2 allowances are a store of their own (the Permit2 contract's), kept apart from the
 * token's: a Permit2 permit does not reset an ERC-20 running value or the reverse. Pure: no I/O.
 */
export function approvalTotals(intent: Intent): ApprovalTotal[] {
  const running = new Map<string, { amount: bigint; entries: Entry[]; peak?: { amount: bigint; entries: Entry[] } }>();
  for (const entry of approvalEntries(intent)) {
    const { approval, call } = entry;
    const store = call.kind.startsWith('permit2.') ? 'permit2' : 'token';
    const key = `${store}\u0000${approval.asset.toLowerCase()}\u0000${approval.spender.toLowerCase()}`;
    let r = running.get(key);
    if (!r) running.set(key, (r = { amount: 0n, entries: [] }));
    if (call.kind === 'erc20.increase_allowance') {
      r.amount += approval.amount;
      r.entries = [...r.entries, entry];
    } else {
      r.amount = approval.amount;
      r.entries = [entry];
    }
    if (r.peak === undefined || r.amount > r.peak.amount) r.peak = { amount: r.amount, entries: r.entries };
  }
  const totals: ApprovalTotal[] = [];
  for (const { peak } of running.values()) {
    if (!peak) continue;
    const first = peak.entries[0]!.approval;
    const approvals = peak.entries.map((e) => e.approval);
    totals.push({
      asset: first.asset.toLowerCase(),
      spender: first.spender.toLowerCase(),
      amount: peak.amount,
      unlimited: peak.amount >= UNLIMITED_ALLOWANCE || approvals.some((a) => a.unlimited),
      lowerBound: peak.entries[0]!.call.kind === 'erc20.increase_allowance',
      approvals,
      parts: peak.entries.map((e) => e.call),
    });
  }
  return totals;
}
