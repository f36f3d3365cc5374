import { z } from 'zod';
import { COUNT_ASSET, seriesFor } from '../../ports/ledger.ts';
import { parseDuration } from '../duration.ts';
import { durationField } from '../fields.ts';
import { invalidPolicyAt } from '../path.ts';
import { baseOptions, defineDetector, detectorBase } from './types.ts';

/** The UTC hour of day of a time (ms). An agent's quiet hours are the same hours in any time zone. */
export const utcHour = (ms: number) => new Date(ms).getUTCHours();

/**
 * A request in an hour of day in which the agent's history (`lookback`) shows no request at all, once that
 * history holds at least `min_history` requests. The history is the series `agent:<id>|hour:<h>` and
 * `agent:<id>|hour:*`, written for every signed or held request where an off_hours detector is configured,
 * so it starts with the detector (min_history keeps it quiet until then).
 */
export const offHoursDetector = defineDetector({
  type: 'off_hours',
  schema: z.strictObject({
    ...detectorBase,
    type: z.literal('off_hours'),
    lookback: durationField.default('14d').describe('How far back the agent\'s hours of activity are read.'),
    min_history: z.number({ error: 'expected a positive integer' }).int('expected a positive integer').positive('expected a positive integer').default(100)
      .describe('Requests the lookback must hold before an hour without activity means anything.'),
  }),
  build(options, env) {
    const lookbackMs = parseDuration(options.lookback);
    const windows = (agentId: string, nowMs: number) => [
      { series: seriesFor.hourOfDay(agentId, utcHour(nowMs)), asset: COUNT_ASSET, sinceMs: nowMs - lookbackMs },
      { series: seriesFor.allHours(agentId), asset: COUNT_ASSET, sinceMs: nowMs - lookbackMs },
    ];
    return {
      ...baseOptions(options, env.path, invalidPolicyAt),
      type: 'off_hours',
      records: { hours: true },
      reads(ctx, out) {
        if (ctx.decision === 'deny') return;
        out.windows.push(...windows(ctx.input.agentId, ctx.input.nowMs));
      },
      evaluate(ctx, view) {
        if (ctx.decision === 'deny') return undefined;
        const [hourQuery, allQuery] = windows(ctx.input.agentId, ctx.input.nowMs);
        const inHour = view.total(hourQuery!).count;
        const history = view.total(allQuery!).count;
        if (history < options.min_history || inHour > 0) return undefined;
        const hour = utcHour(ctx.input.nowMs);
        return {
          message: `a request at ${String(hour).padStart(2, '0')}:00-${String(hour).padStart(2, '0')}:59 UTC, an hour with no request among the agent's ${history} in the last ${options.lookback}`,
          figures: { observed: '1', baseline: '0', threshold: '0', window: options.lookback },
        };
      },
    };
  },
});
