// POST /v1/dry-run: Airlock evaluates a request against the policy and the budgets as they stand, without
// reserving, signing or auditing anything.
import type { Violation } from '@airlock/sdk';
import type { ToolContext } from '../context.ts';
import { transferCall, type Transfer } from './transfer-request.ts';

export interface DryRunAnswer {
  decision: { decision: 'allow' | 'deny' | 'require_approval'; violations: Violation[]; allowedBy: string[]; policyVersion: string };
  intent: { kind?: string; summary?: string; spends?: unknown[] };
  digest: string;
}

export function dryRun(ctx: ToolContext, action: 'evm.transaction' | 'evm.typed_data', payload: unknown): Promise<DryRunAnswer> {
  return ctx.http.request<DryRunAnswer>('POST', '/v1/dry-run', { action, payload }).then((r) => r.body);
}

/**
 * The transaction a transfer would be, with nonce and fees from the chain when an RPC URL is configured for
 * it, else fixed stand-ins (nonce 0, no fee): the policy then judges the transfer without its gas cost.
 */
export async function transferTransaction(ctx: ToolContext, t: Transfer, opts: { feesFromChain: boolean }): Promise<{ transaction: Record<string, string | number>; feesFromChain: boolean }> {
  const call = transferCall(t);
  const base = { type: 'eip1559', to: call.to, value: call.value.toString(), ...(call.data ? { data: call.data } : {}), gas: t.token ? '100000' : '21000' };
  if (opts.feesFromChain && ctx.config.rpc.has(t.chainId)) {
    const { publicClient } = ctx.chain(t.chainId);
    const address = (await ctx.account()).address;
    const [nonce, fees] = await Promise.all([publicClient.getTransactionCount({ address, blockTag: 'pending' }), publicClient.estimateFeesPerGas()]);
    return { transaction: { ...base, nonce, maxFeePerGas: fees.maxFeePerGas.toString(), maxPriorityFeePerGas: fees.maxPriorityFeePerGas.toString() }, feesFromChain: true };
  }
  return { transaction: { ...base, nonce: 0, maxFeePerGas: '0', maxPriorityFeePerGas: '0' }, feesFromChain: false };
}

/** Violations as the model reads them: the numbers that matter side by side with the rule. */
export function explainViolations(violations: Violation[]) {
  return violations.map((v) => ({ rule: v.rule, code: v.code, message: v.message, ...(v.asset ? { asset: v.asset } : {}), ...(v.limit ? { limit: v.limit } : {}), ...(v.used ? { used: v.used } : {}), ...(v.requested ? { requested: v.requested } : {}) }));
}
