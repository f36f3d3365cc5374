import type { z } from 'zod';
import type { Approval, Intent } from '../../intent.ts';
import type { LedgerView, WindowQuery } from '../../ports/ledger.ts';
import { seriesFor } from '../../ports/ledger.ts';
import type { Violation } from '../decision.ts';
import type { IntentFacts } from '../facts.ts';
import type { PolicyPath } from '../path.ts';
import type { AddressSets } from '../sets.ts';
import { touchesAnyPart } from '../calls.ts';

export interface EvaluationInput {
  intent: Intent;
  agentId: string;
  sessionId: string;
  /**
   * The session's ancestors (a child session's parent, its parent, ...), nearest first; absent or empty for a
   * session issued by an operator. Each one's session series is charged with the session's own (ledger-writes.ts),
   * so a parent's budget is shared by every session derived from it.
   */
  sessionAncestors?: readonly string[];
  /** Evaluation time (ms since epoch); the core never reads a clock. */
  nowMs: number;
}

/** What a rule sees when it declares the ledger windows it will read. */
export interface WindowContext {
  input: EvaluationInput;
  facts: IntentFacts;
  /** Ledger series of each scope for this input, built once per evaluation. */
  series: ScopeSeries;
}

/** What a rule sees when it evaluates. */
export interface RuleContext extends WindowContext {
  ledger: LedgerView;
}

/** A violation before the evaluator prefixes the rule with its layer. */
export type Finding = Omit<Violation, 'rule'>;

/**
 * `grant`: an allow rule matched. `pass`: nothing to report. A list: violations (deny codes, or
 * `approval_required` from an approval tier).
 */
export type RuleVerdict = 'grant' | 'pass' | readonly Finding[];

export interface CompiledRule {
  readonly name: string;
  readonly type: string;
  /** Appends every ledger window `evaluate` will read for this input. */
  windows(ctx: WindowContext, out: WindowQuery[]): void;
  evaluate(ctx: RuleContext): RuleVerdict;
  /** validity_window rules: the longest validity they allow (the x402 builder clamps to the smallest). */
  readonly maxValiditySeconds?: number;
  /**
   * user_operations rules with a paymaster list: whether the list applies to this request (the rule's `match` does).
   * An operation naming a paymaster is refused where no list applies (`paymaster_not_allowed`, default deny); a list
   * that applies and leaves the paymaster out refuses it itself. A rule whose match does not apply guards nothing
   * there, so it must not lift the default (found by review).
   */
  readonly governsPaymasters?: (ctx: WindowContext) => boolean;
  /**
   * delegations rules: whether the rule applies to this request (its `match` does). EIP-7702 authorizations are
   * refused where no delegations rule applies (`delegate_not_allowed`, default deny): a rule scoped elsewhere lists
   * no delegate here (found by review).
   */
  readonly governsDelegations?: (ctx: WindowContext) => boolean;
  /**
   * approvals rules with `allow_unlimited: true`: whether the rule allows this one unlimited approval of the request
   * (its `match` applies to the request reduced to that approval). An unlimited approval no such rule allows is
   * refused (`unlimited_approval`, default deny).
   */
  readonly allowsUnlimitedApproval?: (ctx: RuleContext, approval: Approval) => boolean;
}

/** An allow rule also says whether it names the kinds that are only granted by name. */
export interface CompiledAllowRule extends CompiledRule {
  readonly type: 'allow';
  grantsByName(intent: Intent, facts: IntentFacts): boolean;
  /** True when the rule names resources and everything but the resource matches. */
  missesOnlyByResource(ctx: WindowContext): boolean;
  /** The argument that alone keeps the rule from granting (everything else matches), if any. */
  failsOnlyOnArgument(ctx: WindowContext): string | undefined;
}

export interface BuildEnv {
  sets: AddressSets;
  /** Path of the rule in its document, e.g. `['rules', 2]`, for error messages. */
  path: PolicyPath;
  /**
   * Set for the budgets of a session's own scope (layers.ts): a `scope: session` rule then reads `series.session`
   * alone, the one session whose scope it is. A policy document's `scope: session` rule reads the whole
   * `series.sessionLineage`.
   */
  ownSessionOnly?: boolean;
}

/**
 * One rule type: its options schema (the whole rule object, validated when the rule is built)
 * and the factory that compiles validated options into a rule.
 */
export interface RuleDefinition<S extends z.ZodType = z.ZodType> {
  readonly type: string;
  readonly schema: S;
  build(options: z.output<S>, env: BuildEnv): CompiledRule;
}

export function defineRule<S extends z.ZodType>(definition: RuleDefinition<S>): RuleDefinition<S> {
  return definition;
}

export type Scope = 'agent' | 'session' | 'fleet';

/** Ledger series each scope charges (see ports/ledger.ts). */
export interface ScopeSeries extends Readonly<Record<Scope, string>> {
  /**
   * The session series a policy rule with `scope: session` bounds: the session's own, then each ancestor's (nearest
   * first). A child session's charges also go to every ancestor's series (ledger-writes.ts), so judging the request
   * against each of them bounds every session together with everything derived from it: deriving a child does not
   * open a fresh window.
   */
  readonly sessionLineage: readonly string[];
}

export function scopeSeries(input: EvaluationInput): ScopeSeries {
  const session = seriesFor.session(input.sessionId);
  return {
    fleet: seriesFor.fleet(),
    agent: seriesFor.agent(input.agentId),
    session,
    sessionLineage: [session, ...(input.sessionAncestors ?? []).map(seriesFor.session)],
  };
}

/**
 * The series a rule of this scope is judged against: one for fleet and agent; for session, every series of the
 * lineage (or the session's own alone for a session scope's budgets, `ownSessionOnly`).
 */
export function seriesOfScope(series: ScopeSeries, scope: Scope, ownSessionOnly = false): readonly string[] {
  if (scope !== 'session' || ownSessionOnly) return [series[scope]];
  return series.sessionLineage;
}

export const NO_FINDINGS: readonly Finding[] = [];

/**
 * Rules that apply only where their `match` touches the intent; absent `match` means everywhere.
 * Every such rule restricts, so it must apply when any part of the intent is in its scope: with the
 * covers reading, adding an unlisted asset or party to a request would switch the restriction off.
 * A request that executes several calls (a Safe transaction, a user operation, a module call) is touched when
 * it or any call it executes is (calls.ts): `kinds: [erc20.transfer]` applies to a batch of transfers.
 */
export function applies(match: { touches(intent: Intent, facts: IntentFacts): boolean } | undefined, ctx: WindowContext): boolean {
  return match === undefined || touchesAnyPart(match, ctx.input.intent, ctx.facts);
}
