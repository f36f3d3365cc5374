import type { SessionScope } from '../ports/store.ts';
import type { Layer, Violation } from './decision.ts';
import { intentFacts } from './facts.ts';
import type { CompiledPolicy } from './compile.ts';
import { createRule } from './compile.ts';
import { buildSets } from './sets.ts';
import { scopeSeries, type CompiledRule, type EvaluationInput, type RuleContext } from './rules/index.ts';

export interface PolicyLayer {
  layer: Layer;
  /** Identifies the version evaluated, e.g. `fleet@3:1a2b3c4d`; joined into `Decision.policyVersion`. */
  label: string;
  policy: CompiledPolicy;
}

/**
 * A session's scope as a policy layer. It has no allow rules: it never grants, it only
 * restricts (actions, chains when non-empty, sub-budgets with scope session).
 */
export function sessionScopeLayer(scope: SessionScope, sessionId: string): PolicyLayer {
  const sets = buildSets(undefined);
  const rules: CompiledRule[] = [createRule({ type: 'actions', name: 'actions', allow: scope.actions }, { sets, path: ['actions'] })];
  if (scope.chains.length > 0) rules.push(createRule({ type: 'chains', name: 'chains', allow: scope.chains }, { sets, path: ['chains'] }));
  scope.budgets.forEach((b, i) => {
    rules.push(createRule({ type: 'budget', name: `budget-${i}`, asset: b.asset, max: b.max, window: b.window, scope: 'session' }, { sets, path: ['budgets', i] }));
  });
  return { layer: 'session', label: `session:${sessionId}`, policy: { hash: '', rules, allowRules: [], abis: [], detectors: [] } };
}

/**
 * What a session's scope alone says about an intent (actions and chains; budgets aside): the check a
 * replay must pass, since a replay re-releases a signature without a new charge. Same rules, same codes
 * as the session layer of a full evaluation.
 */
export function sessionScopeViolations(scope: SessionScope, sessionId: string, input: EvaluationInput): Violation[] {
  const { policy, layer } = sessionScopeLayer({ ...scope, budgets: [] }, sessionId);
  const ctx: RuleContext = {
    input,
    facts: intentFacts(input.intent),
    series: scopeSeries(input),
    ledger: { total: () => { throw new Error('scope rules read no ledger window'); } },
  };
  const violations: Violation[] = [];
  for (const rule of policy.rules) {
    const verdict = rule.evaluate(ctx);
    if (Array.isArray(verdict)) for (const finding of verdict) violations.push({ rule: `${layer}/${rule.name}`, ...finding });
  }
  return violations;
}
