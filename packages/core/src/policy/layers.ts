import type { SessionScope } from '../ports/store.ts';
import type { Layer } from './decision.ts';
import type { CompiledPolicy } from './compile.ts';
import { createRule } from './compile.ts';
import { buildSets } from './sets.ts';
import type { CompiledRule } from './rules/index.ts';

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
  return { layer: 'session', label: `session:${sessionId}`, policy: { hash: '', rules, allowRules: [], abis: [] } };
}
