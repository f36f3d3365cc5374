// Test helpers shared by the policy tests and the vector runner.
import type { Intent } from '../../intent.ts';
import type { LedgerView, WindowQuery, WindowTotal } from '../../ports/ledger.ts';
import type { SessionScope } from '../../ports/store.ts';
import { compilePolicy } from '../compile.ts';
import { evaluatePolicy, requiredWindows, type EvaluationInput } from '../evaluate.ts';
import { sessionScopeLayer, type PolicyLayer } from '../layers.ts';
import type { Decision, Layer } from '../decision.ts';

export const USDC = 'eip155:8453/erc20:0x833589fcd6edb6e08f4c7c32d4f71b54bda02913';
export const ETH = 'eip155:8453/slip44:60';
export const AGENT = '0x9999999999999999999999999999999999999999';
export const NOW_MS = 1_750_000_000_000;

export function intent(over: Partial<Intent>): Intent {
  return { action: 'evm.transaction', chain: 'eip155:8453', kind: 'native.transfer', from: AGENT, spends: [], approvals: [], summary: 'test', ...over };
}

export function input(i: Intent, over: Partial<EvaluationInput> = {}): EvaluationInput {
  return { intent: i, agentId: 'ag_1', sessionId: 'ses_1', nowMs: NOW_MS, ...over };
}

export function layer(layer: Layer, doc: unknown, label = `${layer}@1`): PolicyLayer {
  return { layer, label, policy: compilePolicy(doc) };
}

export function session(scope: Partial<SessionScope>): PolicyLayer {
  return sessionScopeLayer({ actions: ['evm.transaction', 'evm.typed_data', 'evm.message'], chains: [], budgets: [], ...scope }, 'ses_1');
}

/**
 * Ledger totals by `series|asset` whatever the window, that refuses to answer a query
 * requiredWindows did not declare (so tests also prove the prefetch list is complete).
 */
export function ledger(totals: Record<string, Partial<WindowTotal>>, declared: WindowQuery[]): LedgerView {
  const keys = new Set(declared.map((q) => `${q.series}|${q.asset}|${q.sinceMs}`));
  return {
    total(q) {
      if (!keys.has(`${q.series}|${q.asset}|${q.sinceMs}`)) throw new Error(`undeclared window read: ${q.series} ${q.asset} ${q.sinceMs}`);
      const t = totals[`${q.series}|${q.asset}`];
      return { amount: t?.amount ?? 0n, count: t?.count ?? 0 };
    },
  };
}

export function decide(layers: PolicyLayer[], inp: EvaluationInput, totals: Record<string, Partial<WindowTotal>> = {}): Decision {
  return evaluatePolicy(layers, inp, ledger(totals, requiredWindows(layers, inp)));
}

export const codes = (d: Decision) => d.violations.map((v) => v.code);
export const rules = (d: Decision) => d.violations.map((v) => v.rule);
