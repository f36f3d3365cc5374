import { z } from 'zod';
import { seriesFor } from '../../ports/ledger.ts';
import { toAmount } from '../amount.ts';
import { parseDuration } from '../duration.ts';
import { amountField, assetField, durationField, matchField, ruleBase, scopeField } from '../fields.ts';
import { CompiledMatch } from '../match.ts';
import { invalidPolicyAt } from '../path.ts';
import { applies, defineRule, seriesOfScope, type Finding, type RuleContext } from './types.ts';

/**
 * Rolling-window sum for one asset (semantics §6): used (from the ledger) + requested must stay
 * within `max`. Unlimited approvals carry no amount and are not counted; the approvals rule governs them.
 */
export const budgetRule = defineRule({
  type: 'budget',
  schema: z.strictObject({
    ...ruleBase,
    type: z.literal('budget'),
    asset: assetField,
    max: amountField,
    window: durationField,
    scope: scopeField.default('agent'),
    per_destination: z.boolean().default(false),
    per_origin: z.boolean().default(false).describe('x402: one budget per paid-resource origin; payments that name no resource are not counted.'),
    match: matchField.optional(),
  }),
  build(options, env) {
    if (options.per_destination && options.scope === 'session') {
      // The ledger keeps per-destination series only for fleet and agent (ports/ledger.ts).
      throw invalidPolicyAt([...env.path, 'per_destination'], 'per-destination budgets exist for scope agent and fleet, not session');
    }
    if (options.per_origin && options.scope === 'session') {
      throw invalidPolicyAt([...env.path, 'per_origin'], 'per-origin budgets exist for scope agent and fleet, not session');
    }
    if (options.per_origin && options.per_destination) {
      throw invalidPolicyAt([...env.path, 'per_origin'], 'a budget is per destination or per origin, not both');
    }
    const perOrigin = options.per_origin;
    const asset = options.asset.toLowerCase();
    const max = toAmount(options.max);
    const windowMs = parseDuration(options.window);
    const { scope, per_destination: perDestination } = options;
    const ownSessionOnly = env.ownSessionOnly === true;
    const match = options.match && new CompiledMatch(options.match, env.sets, [...env.path, 'match']);

    const check = (ctx: RuleContext, series: string, requested: bigint, to?: string, origin?: string): Finding | undefined => {
      if (requested === 0n) return undefined;
      const sinceMs = ctx.input.nowMs - windowMs;
      const used = ctx.ledger.total({ series, asset, sinceMs }).amount;
      if (used + requested <= max) return undefined;
      // A session budget names the session series it was judged on: the requester's own or an ancestor's.
      const base = scope === 'session' ? `${scope} ${options.window} (${series})` : `${scope} ${options.window}`;
      const where = origin !== undefined ? `${base} for ${origin}` : to === undefined ? base : `${base} to ${to}`;
      return {
        code: 'budget_exceeded',
        message: `${where} budget: used ${used} + requested ${requested} > ${max} base units of ${asset}`,
        limit: max.toString(),
        used: used.toString(),
        requested: requested.toString(),
        asset,
      };
    };

    return {
      name: options.name,
      type: 'budget',
      windows(ctx, out) {
        if (!applies(match, ctx)) return;
        const series = ctx.series[scope];
        const sinceMs = ctx.input.nowMs - windowMs;
        if (perOrigin) {
          const origin = ctx.input.intent.payment?.origin;
          if (origin !== undefined && (ctx.facts.requestedByAsset.get(asset) ?? 0n) > 0n) out.push({ series: seriesFor.withOrigin(series, origin), asset, sinceMs });
          return;
        }
        if (!perDestination) {
          if ((ctx.facts.requestedByAsset.get(asset) ?? 0n) > 0n) for (const s of seriesOfScope(ctx.series, scope, ownSessionOnly)) out.push({ series: s, asset, sinceMs });
          return;
        }
        for (const [to, amounts] of ctx.facts.requestedByDestination) {
          if ((amounts.get(asset) ?? 0n) > 0n) out.push({ series: seriesFor.withDestination(series, to), asset, sinceMs });
        }
      },
      evaluate(ctx) {
        if (!applies(match, ctx)) return 'pass';
        const series = ctx.series[scope];
        if (perOrigin) {
          const origin = ctx.input.intent.payment?.origin;
          if (origin === undefined) return 'pass';
          const f = check(ctx, seriesFor.withOrigin(series, origin), ctx.facts.requestedByAsset.get(asset) ?? 0n, undefined, origin);
          return f ? [f] : 'pass';
        }
        if (!perDestination) {
          // Scope session: the session and each ancestor (each one's series holds its descendants' charges too).
          const requested = ctx.facts.requestedByAsset.get(asset) ?? 0n;
          const findings: Finding[] = [];
          for (const s of seriesOfScope(ctx.series, scope, ownSessionOnly)) {
            const f = check(ctx, s, requested);
            if (f) findings.push(f);
          }
          return findings.length > 0 ? findings : 'pass';
        }
        const findings: Finding[] = [];
        for (const [to, amounts] of ctx.facts.requestedByDestination) {
          const f = check(ctx, seriesFor.withDestination(series, to), amounts.get(asset) ?? 0n, to);
          if (f) findings.push(f);
        }
        return findings.length > 0 ? findings : 'pass';
      },
    };
  },
});
