import { z } from 'zod';
import type { LedgerView, WindowQuery } from '../../ports/ledger.ts';
import type { DestinationPayers, DetectorFigures } from '../../ports/breakers.ts';
import type { DecisionKind } from '../decision.ts';
import type { IntentFacts } from '../facts.ts';
import type { PolicyPath } from '../path.ts';
import { ruleNameField } from '../fields.ts';
import type { EvaluationInput } from '../rules/types.ts';

/** What a detector sees: the request, and what policy decided about it before any detector ran. */
export interface DetectorContext {
  input: EvaluationInput;
  facts: IntentFacts;
  decision: DecisionKind;
}

/** Everything the detectors of a request will read, declared before the reads (as rules declare windows). */
export interface DetectorReads {
  /** Ledger windows (read by `StoreTx.detectorTotals`: a pending hold only in the windows its time is in, none where `chargesOnly`). */
  windows: WindowQuery[];
  /** Destinations whose recent first payers are counted (destination_wave), and since when. */
  payers: { destination: string; sinceMs: number }[];
}

/** The figures the reads returned. */
export interface DetectorView extends LedgerView {
  /** The recorded payers of `destination` (first payment at or after `sinceMs`, declared in `reads`). */
  payers(destination: string, sinceMs: number): DestinationPayers;
}

/** A detector that found the request outside its baseline. */
export interface DetectorFinding {
  message: string;
  figures: DetectorFigures;
  /** Agents besides the requester that a breaker of scope `agent` binds (a wave: every agent of the wave). */
  agents?: readonly string[];
}

export type DetectorAction = 'alert' | 'require_approval' | 'freeze';

export interface CompiledDetector {
  readonly name: string;
  readonly type: string;
  readonly action: DetectorAction;
  readonly scope: 'agent' | 'group' | 'fleet';
  /** scope `group`: the agent label whose value names the group. */
  readonly groupLabel?: string;
  /** What the detector needs recorded beyond the standard ledger writes, so a later request can read it. */
  readonly records: { refusals?: true; hours?: true; payers?: true };
  reads(ctx: DetectorContext, out: DetectorReads): void;
  evaluate(ctx: DetectorContext, view: DetectorView): DetectorFinding | undefined;
}

export interface DetectorBuildEnv {
  /** Path of the detector in its document, e.g. `['detectors', 1]`, for error messages. */
  path: PolicyPath;
}

export interface DetectorDefinition<S extends z.ZodType = z.ZodType> {
  readonly type: string;
  readonly schema: S;
  build(options: z.output<S>, env: DetectorBuildEnv): CompiledDetector;
}

export function defineDetector<S extends z.ZodType>(definition: DetectorDefinition<S>): DetectorDefinition<S> {
  return definition;
}

/** Fields every detector has: what it is called, and what a trip does. */
export const detectorBase = {
  name: ruleNameField,
  description: z.string().optional(),
  action: z
    .enum(['alert', 'require_approval', 'freeze'], { error: 'expected one of: alert, require_approval, freeze' })
    .default('alert')
    .describe('alert: an `alert.<type>` audit entry, the decision unchanged. require_approval: this and every later request of the bound agents waits for a human until the breaker is reset. freeze: the request is refused and the bound agents are frozen until the breaker is reset.'),
  scope: z
    .enum(['agent', 'group', 'fleet'], { error: 'expected one of: agent, group, fleet' })
    .default('agent')
    .describe('Whom a tripped breaker binds: the agent (a destination_wave: every agent of the wave), the active agents sharing its `group_label` value, or every active agent.'),
  group_label: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'a label name is 1-64 characters of A-Z, a-z, 0-9, _ . and -').optional()
    .describe('scope group: the agent label whose value names the group (e.g. team).'),
};

/** A positive factor: how far above the baseline rate a window may go before the detector trips. */
export const factorField = z.number({ error: 'expected a number above 1' }).gt(1, 'a factor is above 1').max(1_000_000, 'a factor is at most 1000000');

/** Shared checks of the base fields: scope group needs a label, and only a breaker has a scope. */
export function baseOptions(options: { name: string; action: DetectorAction; scope: 'agent' | 'group' | 'fleet'; group_label?: string | undefined }, path: PolicyPath, invalid: (path: PolicyPath, message: string) => Error) {
  if (options.scope === 'group' && options.group_label === undefined) throw invalid([...path, 'group_label'], 'scope group needs group_label: the agent label that names the group');
  if (options.scope !== 'group' && options.group_label !== undefined) throw invalid([...path, 'group_label'], 'group_label is only read with scope group');
  if (options.action === 'alert' && options.scope !== 'agent') throw invalid([...path, 'scope'], 'an alert binds no one: scope is for require_approval and freeze');
  return { name: options.name, action: options.action, scope: options.scope, ...(options.group_label !== undefined ? { groupLabel: options.group_label } : {}) };
}

/** A count or amount as the figures show it: integers as they are, rates with two decimals. */
export function figure(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(2);
}
