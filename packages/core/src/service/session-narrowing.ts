import { AirlockError } from '../errors.ts';
import type { Session, SessionScope } from '../ports/store.ts';

/** A budget of an ancestor session with what its window has used (ledger and holds, as policy counts it). */
export interface AncestorBudgetUse {
  sessionId: string;
  asset: string;
  max: bigint;
  window: string;
  used: bigint;
}

/** What a child asks for, resolved (omitted fields already taken from the parent). */
export interface ChildRequest {
  scope: SessionScope;
  expiresAt: number;
}

/**
 * Refuses a child that would be wider than the session it derives from on any axis, naming the axis:
 * an action or a chain the parent lacks (a parent without chains leaves them to policy, so a child may list
 * some, which narrows), a budget above what the parent, or any session above it, has left of a budget in the
 * same asset, or an expiry after the parent's. Pure: the caller reads the budgets' use inside its transaction.
 */
export function checkNarrower(parent: Session, child: ChildRequest, ancestorBudgets: readonly AncestorBudgetUse[]): void {
  const refuse = (axis: string, message: string, details: Record<string, unknown> = {}) =>
    new AirlockError('session_not_narrower', message, { details: { axis, ...details } });
  const actions = new Set(parent.scope.actions);
  const action = child.scope.actions.find((a) => !actions.has(a));
  if (action !== undefined) throw refuse('actions', `The action ${action} is not in the parent session's scope.`, { action });
  if (parent.scope.chains.length > 0) {
    if (child.scope.chains.length === 0) throw refuse('chains', 'The parent session is limited to listed chains; a child with no chains would leave them to policy, which is wider.');
    const chains = new Set(parent.scope.chains);
    const chain = child.scope.chains.find((c) => !chains.has(c));
    if (chain !== undefined) throw refuse('chains', `The chain ${chain} is not in the parent session's scope.`, { chain });
  }
  for (const budget of child.scope.budgets) {
    const max = BigInt(budget.max);
    for (const b of ancestorBudgets) {
      if (b.asset.toLowerCase() !== budget.asset.toLowerCase()) continue;
      const remaining = b.used >= b.max ? 0n : b.max - b.used;
      if (max > remaining) {
        throw refuse('budgets', `A budget of ${max} base units of ${b.asset} is above the ${remaining} left of session ${b.sessionId}'s ${b.window} budget.`, {
          asset: b.asset, sessionId: b.sessionId, window: b.window, limit: b.max.toString(), used: b.used.toString(), requested: max.toString(),
        });
      }
    }
  }
  if (child.expiresAt > parent.expiresAt) {
    throw refuse('expiry', 'The child session would outlive its parent session.', { parentExpiresAt: new Date(parent.expiresAt).toISOString() });
  }
}
