import { z } from 'zod';
import { COUNT_ASSET, seriesFor } from '../../ports/ledger.ts';
import { parseDuration } from '../duration.ts';
import { durationField, matchField, ruleBase, scopeField } from '../fields.ts';
import { CompiledMatch } from '../match.ts';
import { invalidPolicyAt } from '../path.ts';
import { requestCount, requestCountByDestination } from '../calls.ts';
import { applies, defineRule, seriesOfScope, type Finding, type RuleContext, type WindowContext } from './types.ts';

/** The request-count series (ports/ledger.ts): asset `*`, amount 0, count 1 per request. */

/**
 * Rolling-window request count (semantics §7): used + 1 must stay within `max`; a request that executes several
 * calls counts one per call (used + calls), in the check as in its charge.
 */
export const rateLimitRule = defineRule({
  type: 'rate_limit',
  schema: z.strictObject({
    ...ruleBase,
    type: z.literal('rate_limit'),
    max: z.number({ error: 'expected a positive integer' }).int('expected a positive integer').positive('expected a positive integer'),
    window: durationField,
    scope: scopeField.default('agent'),
    per_destination: z.boolean().default(false),
    per_origin: z.boolean().default(false).describe('x402: one count per paid-resource origin (payments naming a resource only).'),
    per_resource: z.boolean().default(false).describe('x402: one count per paid resource URL (scope agent only).'),
    per_nostr_kind: z.boolean().default(false).describe('Nostr: one count per event kind (Nostr events only; scope agent or fleet).'),
    match: matchField.optional(),
  }),
  build(options, env) {
    if (options.per_destination && options.scope === 'session') {
      throw invalidPolicyAt([...env.path, 'per_destination'], 'per-destination rate limits exist for scope agent and fleet, not session');
    }
    if (options.per_origin && options.scope === 'session') {
      throw invalidPolicyAt([...env.path, 'per_origin'], 'per-origin rate limits exist for scope agent and fleet, not session');
    }
    if (options.per_resource && options.scope !== 'agent') {
      // The ledger keeps per-resource series for the agent only (ports/ledger.ts).
      throw invalidPolicyAt([...env.path, 'per_resource'], 'per-resource rate limits exist for scope agent only');
    }
    if (options.per_nostr_kind && options.scope === 'session') {
      throw invalidPolicyAt([...env.path, 'per_nostr_kind'], 'per-kind rate limits exist for scope agent and fleet, not session');
    }
    // At the second option set, naming both (found by review: always reported at `per_origin`, a field the document
    // might not have, and without naming per_nostr_kind).
    const perOptions = (['per_destination', 'per_origin', 'per_resource', 'per_nostr_kind'] as const).filter((k) => options[k]);
    if (perOptions.length > 1) {
      throw invalidPolicyAt([...env.path, perOptions[1]!], `${perOptions[1]} cannot be combined with ${perOptions[0]}: a rate limit is per destination, per origin, per resource or per Nostr kind; pick one`);
    }
    const { max, scope, per_destination: perDestination, per_origin: perOrigin, per_resource: perResource } = options;
    /** The one payment series this rule counts, or undefined when the rule is not per origin/resource. */
    const paymentSeries = (ctx: WindowContext): string | null | undefined => {
      if (options.per_nostr_kind) {
        // Only Nostr events are counted per kind; anything else is outside this rule (null: nothing to count).
        const kind = ctx.input.intent.nostr?.eventKind;
        return kind === undefined ? null : seriesFor.withNostrKind(ctx.series[scope], kind);
      }
      if (!perOrigin && !perResource) return undefined;
      const payment = ctx.input.intent.payment;
      const key = perOrigin ? payment?.origin : payment?.resource;
      if (key === undefined) return null;
      return perOrigin ? seriesFor.withOrigin(ctx.series[scope], key) : seriesFor.withResource(ctx.series[scope], key);
    };
    const windowMs = parseDuration(options.window);
    const match = options.match && new CompiledMatch(options.match, env.sets, [...env.path, 'match']);
    // `requested`: what the request counts as (calls.ts requestCount: one per call of a batch), as ledgerWritesFor charges it.
    const check = (ctx: RuleContext, series: string, requested = requestCount(ctx.input.intent)): Finding | undefined => {
      const used = ctx.ledger.total({ series, asset: COUNT_ASSET, sinceMs: ctx.input.nowMs - windowMs }).count;
      if (used + requested <= max) return undefined;
      return {
        code: 'rate_limit_exceeded',
        message: `${series}: ${used} requests in the last ${options.window}${requested > 1 ? ` and this one counts ${requested} (one per call)` : ''}; at most ${max} allowed`,
        limit: String(max),
        used: String(used),
        requested: String(requested),
      };
    };

    return {
      name: options.name,
      type: 'rate_limit',
      windows(ctx, out) {
        if (!applies(match, ctx)) return;
        const sinceMs = ctx.input.nowMs - windowMs;
        const series = ctx.series[scope];
        const ps = paymentSeries(ctx);
        if (ps !== undefined) {
          if (ps !== null) out.push({ series: ps, asset: COUNT_ASSET, sinceMs });
          return;
        }
        if (!perDestination) for (const s of seriesOfScope(ctx.series, scope)) out.push({ series: s, asset: COUNT_ASSET, sinceMs });
        else for (const to of ctx.facts.destinations) out.push({ series: seriesFor.withDestination(series, to), asset: COUNT_ASSET, sinceMs });
      },
      evaluate(ctx) {
        if (!applies(match, ctx)) return 'pass';
        const series = ctx.series[scope];
        const ps = paymentSeries(ctx);
        if (ps !== undefined) {
          const f = ps === null ? undefined : check(ctx, ps);
          return f ? [f] : 'pass';
        }
        if (!perDestination) {
          // Scope session: the session and each ancestor (each one's series counts its descendants' requests too).
          const findings: Finding[] = [];
          for (const s of seriesOfScope(ctx.series, scope)) {
            const f = check(ctx, s);
            if (f) findings.push(f);
          }
          return findings.length > 0 ? findings : 'pass';
        }
        const findings: Finding[] = [];
        const callsTo = requestCountByDestination(ctx.input.intent, ctx.facts);
        for (const to of ctx.facts.destinations) {
          const f = check(ctx, seriesFor.withDestination(series, to), callsTo.get(to));
          if (f) findings.push(f);
        }
        return findings.length > 0 ? findings : 'pass';
      },
    };
  },
});
