import { AirlockError } from '../errors.ts';
import type { SessionScope } from '../ports/store.ts';
import type { Layer, Violation } from './decision.ts';
import { intentFacts } from './facts.ts';
import type { CompiledPolicy } from './compile.ts';
import { createRule } from './compile.ts';
import { buildSets } from './sets.ts';
import { EMPTY_LIFECYCLE } from './lifecycle.ts';
import { scopeSeries, type CompiledRule, type EvaluationInput, type RuleContext, type WindowContext } from './rules/index.ts';
import { seriesFor } from '../ports/ledger.ts';

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
    // ownSessionOnly: a scope's budget bounds this session (its series holds its descendants' charges), not its ancestors.
    rules.push(createRule({ type: 'budget', name: `budget-${i}`, asset: b.asset, max: b.max, window: b.window, scope: 'session' }, { sets, path: ['budgets', i], ownSessionOnly: true }));
  });
  return { layer: 'session', label: `session:${sessionId}`, policy: { hash: '', rules, allowRules: [], abis: [], detectors: [], lifecycle: EMPTY_LIFECYCLE } };
}

/**
 * Refuses a scope its session layer could not be built from (a budget asset that is not a CAIP-19 id, say):
 * checked when a session is issued or derived, so the bad input is refused there and nothing is created,
 * instead of every later signing request failing in its transaction (unaudited, rolled back with it).
 */
export function assertSessionScope(scope: SessionScope): void {
  try {
    sessionScopeLayer(scope, 'ses_check');
  } catch (e) {
    if (e instanceof AirlockError && e.code === 'invalid_policy') throw new AirlockError('invalid_request', e.message);
    throw e;
  }
}

/**
 * The scope of an ancestor of the requesting session (a child session's parent, grandparent, ...) as a policy
 * layer: the same restrictions, each rule named `<ancestorId>/<rule>`, and its budgets read the ancestor's own
 * session series, which every descendant's charges also go to (ledger-writes.ts). So the children of a
 * session share its budget and together can never spend more than it allows.
 */
export function ancestorScopeLayer(scope: SessionScope, ancestorId: string): PolicyLayer {
  const own = sessionScopeLayer(scope, ancestorId);
  const series = seriesFor.session(ancestorId);
  const onAncestor = <C extends WindowContext>(ctx: C): C => ({ ...ctx, series: { ...ctx.series, session: series } });
  const rules: CompiledRule[] = own.policy.rules.map((rule) => ({
    name: `${ancestorId}/${rule.name}`,
    type: rule.type,
    windows: (ctx, out) => rule.windows(onAncestor(ctx), out),
    evaluate: (ctx) => rule.evaluate(onAncestor(ctx)),
  }));
  return { ...own, policy: { ...own.policy, rules } };
}

/** The session layers of a request: its own scope, then each ancestor's (nearest first). */
export function sessionScopeLayers(session: { id: string; scope: SessionScope }, ancestors: readonly { id: string; scope: SessionScope }[] = []): PolicyLayer[] {
  return [sessionScopeLayer(session.scope, session.id), ...ancestors.map((a) => ancestorScopeLayer(a.scope, a.id))];
}

/**
 * What a session's scope alone says about an intent (actions and chains; budgets aside): the check a
 * replay must pass, since a replay re-releases a signature without a new charge. Same rules, same codes
 * as the session layers of a full evaluation, the ancestors' scopes included.
 */
export function sessionScopeViolations(scope: SessionScope, sessionId: string, input: EvaluationInput, ancestors: readonly { id: string; scope: SessionScope }[] = []): Violation[] {
  const layers = [sessionScopeLayer({ ...scope, budgets: [] }, sessionId), ...ancestors.map((a) => ancestorScopeLayer({ ...a.scope, budgets: [] }, a.id))];
  const ctx: RuleContext = {
    input,
    facts: intentFacts(input.intent),
    series: scopeSeries(input),
    ledger: { total: () => { throw new Error('scope rules read no ledger window'); } },
  };
  const violations: Violation[] = [];
  for (const { policy, layer } of layers) {
    for (const rule of policy.rules) {
      const verdict = rule.evaluate(ctx);
      if (Array.isArray(verdict)) for (const finding of verdict) violations.push({ rule: `${layer}/${rule.name}`, ...finding });
    }
  }
  return violations;
}
