// One call an account executes on someone's behalf (a Safe's call or MultiSend entry, the call a module makes
// its Safe execute): decoded like a transaction making it, `from` the account (or the module acting for it).
import { nativeAsset } from '@airlock/core';
import type { Action, ContractCall, Intent, TypedDataInfo } from '@airlock/core';
import type { Hex } from 'viem';
import type { AbiRegistry } from './abi-registry.ts';
import { decodeCall } from './calldata.ts';

export interface AccountCallContext {
  action: Action;
  chain: string;
  /** Who executes the call: the Safe, or the module acting for its account. */
  from: string;
  /** How summaries name the account: `the Safe`, `the module's account`. */
  accountLabel: string;
  /** The SafeTx domain, for a Safe's calls. */
  typedData?: TypedDataInfo;
  abis: AbiRegistry | undefined;
}

/**
 * A CALL decoded like a transaction making it (native value, ERC-20, ABI registry); a DELEGATECALL as
 * `contract.delegatecall`: the target's code runs as the account with all its funds and settings, so nothing it
 * does can be read from the calldata and it moves nothing policy could count. Only a rule naming the exact
 * target grants it.
 */
export function decodeAccountCall(ctx: AccountCallContext, operation: 'call' | 'delegatecall', to: string, value: bigint, data: Hex, path: string): Intent {
  const { chain } = ctx;
  const common = { action: ctx.action, chain, from: ctx.from, ...(ctx.typedData ? { typedData: ctx.typedData } : {}), approvals: [] };
  if (operation === 'delegatecall') {
    const call: ContractCall = { contract: to, selector: data.length >= 10 ? data.slice(0, 10) : '0x', data };
    return { ...common, kind: 'contract.delegatecall', to, spends: [], call, summary: `DELEGATECALL ${to} as ${ctx.accountLabel} (${(data.length - 2) / 2} bytes of calldata)` };
  }
  const spends: Intent['spends'] = [];
  // Native value leaves the account whatever the call does with it.
  if (value > 0n) spends.push({ asset: nativeAsset(chain), amount: value, to, kind: 'value' });
  if (data === '0x') return { ...common, kind: 'native.transfer', to, spends, summary: `transfer ${value} of ${nativeAsset(chain)} to ${to}` };
  const decoded = decodeCall(chain, to, data, ctx.abis, path);
  spends.push(...decoded.spends);
  const valueNote = value > 0n ? ` with value ${value}` : '';
  const transfer = decoded.spends[0];
  const approval = decoded.approvals[0];
  const summary = transfer
    ? `transfer ${transfer.amount} of ${transfer.asset} to ${transfer.to}${valueNote}`
    : approval
      ? `approve ${approval.spender} to spend ${approval.unlimited ? 'UNLIMITED' : approval.amount} of ${approval.asset}${valueNote}`
      : `call ${decoded.call.functionName ?? decoded.call.selector} on ${to}${valueNote}`;
  return { ...common, kind: decoded.kind, to: decoded.to, spends, approvals: decoded.approvals, call: decoded.call, summary };
}
