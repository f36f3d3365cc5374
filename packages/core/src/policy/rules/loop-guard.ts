import { z } from 'zod';
import { COUNT_ASSET, seriesFor } from '../../ports/ledger.ts';
import { parseDuration } from '../duration.ts';
import { durationField, matchField, ruleBase } from '../fields.ts';
import { CompiledMatch } from '../match.ts';
import { applies, defineRule } from './types.ts';

/** The request-count series (ports/ledger.ts): asset `*`, amount 0, count 1 per request. */

/**
 * Runaway-loop guard for paid APIs (x402): at most `max` payments by one agent to the same resource
 * (URL without query) per `window`. A trip is a deny with `loop_guard_tripped`; the signing service also
 * appends an `alert.loop_guard` audit entry. Payments that name no resource are not counted.
 */
export const loopGuardRule = defineRule({
  type: 'loop_guard',
  schema: z.strictObject({
    ...ruleBase,
    type: z.literal('loop_guard'),
    max: z.number({ error: 'expected a positive integer' }).int('expected a positive integer').positive('expected a positive integer'),
    window: durationField.default('1m'),
    match: matchField.optional(),
  }),
  build(options, env) {
    const { max } = options;
    const windowMs = parseDuration(options.window);
    const match = options.match && new CompiledMatch(options.match, env.sets, [...env.path, 'match']);
    return {
      name: options.name,
      type: 'loop_guard',
      windows(ctx, out) {
        const resource = ctx.input.intent.payment?.resource;
        if (resource === undefined || !applies(match, ctx)) return;
        out.push({ series: seriesFor.withResource(ctx.series.agent, resource), asset: COUNT_ASSET, sinceMs: ctx.input.nowMs - windowMs });
      },
      evaluate(ctx) {
        const resource = ctx.input.intent.payment?.resource;
        if (resource === undefined || !applies(match, ctx)) return 'pass';
        const used = ctx.ledger.total({ series: seriesFor.withResource(ctx.series.agent, resource), asset: COUNT_ASSET, sinceMs: ctx.input.nowMs - windowMs }).count;
        if (used + 1 <= max) return 'pass';
        return [{
          code: 'loop_guard_tripped',
          message: `${used} payments to ${resource} in the last ${options.window}; at most ${max} allowed (runaway loop?)`,
          limit: String(max),
          used: String(used),
          requested: '1',
        }];
      },
    };
  },
});
