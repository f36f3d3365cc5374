import { z } from 'zod';
import { COUNT_ASSET, seriesFor } from '../../ports/ledger.ts';
import { parseDuration } from '../duration.ts';
import { durationField } from '../fields.ts';
import { invalidPolicyAt } from '../path.ts';
import { baseOptions, defineDetector, detectorBase } from './types.ts';

/**
 * A run of policy refusals: what a prompt-injected agent produces while it probes for what it may do. Trips
 * on the refusal that brings the agent's refusals in `window` to `max`. Refusals are counted in the series
 * `agent:<id>|refused`, written only where a refusal_run detector is configured.
 */
export const refusalRunDetector = defineDetector({
  type: 'refusal_run',
  schema: z.strictObject({
    ...detectorBase,
    type: z.literal('refusal_run'),
    max: z.number({ error: 'expected an integer of at least 2' }).int('expected an integer of at least 2').min(2, 'expected an integer of at least 2')
      .describe('The refusal that brings the count in the window to this number trips the detector.'),
    window: durationField.default('10m'),
  }),
  build(options, env) {
    const windowMs = parseDuration(options.window);
    return {
      ...baseOptions(options, env.path, invalidPolicyAt),
      type: 'refusal_run',
      records: { refusals: true },
      reads(ctx, out) {
        if (ctx.decision !== 'deny') return;
        out.windows.push({ series: seriesFor.refusals(ctx.input.agentId), asset: COUNT_ASSET, sinceMs: ctx.input.nowMs - windowMs });
      },
      evaluate(ctx, view) {
        if (ctx.decision !== 'deny') return undefined;
        const before = view.total({ series: seriesFor.refusals(ctx.input.agentId), asset: COUNT_ASSET, sinceMs: ctx.input.nowMs - windowMs }).count;
        const observed = before + 1;
        if (observed < options.max) return undefined;
        return {
          message: `${observed} refused requests in the last ${options.window}; the detector trips at ${options.max}`,
          figures: { observed: String(observed), threshold: String(options.max), window: options.window },
        };
      },
    };
  },
});
