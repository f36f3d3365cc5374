import { z } from 'zod';
import { COUNT_ASSET, seriesFor } from '../../ports/ledger.ts';
import { parseDuration } from '../duration.ts';
import { amountField, assetField, durationField } from '../fields.ts';
import { toAmount } from '../amount.ts';
import { invalidPolicyAt } from '../path.ts';
import { baseOptions, defineDetector, detectorBase, factorField, figure, type CompiledDetector, type DetectorContext } from './types.ts';
import { requestCount } from '../calls.ts';

/**
 * Bursts: the count (or amount) of a short window against the rate of a long one, the baseline. A window
 * trips when what it holds with this request is above max(min, factor x baseline x window / baseline window):
 * a steady agent's own rate sets its threshold, and `min` keeps a new or quiet one from tripping on a handful.
 * The long window includes the short one: a burst raises its own baseline a little, never enough to hide.
 * A pending hold counts in the windows its time is in, its amount as its count (StoreTx.detectorTotals): a
 * request held for a human ten minutes ago is not spend of the last minute, however long it waits (found by
 * review: read as a budget reads it, one stale hold plus an ordinary payment tripped a fleet-wide freeze).
 */
const windowsFields = {
  window: durationField.default('1m').describe('The short window whose count is compared with the baseline.'),
  baseline: durationField.default('24h').describe('The long window whose rate is the baseline.'),
  factor: factorField.default(10).describe('How many times the baseline rate the short window may reach.'),
};

interface BurstSpec {
  type: string;
  series: (ctx: DetectorContext) => string;
  asset: string | undefined;
  min: bigint;
  windowMs: number;
  baselineMs: number;
  factor: number;
  window: string;
  baselineText: string;
  what: string;
}

function burst(base: ReturnType<typeof baseOptions>, spec: BurstSpec): CompiledDetector {
  const asset = spec.asset ?? COUNT_ASSET;
  // The factor as thousandths, so amounts stay exact in bigint.
  const factorMilli = BigInt(Math.round(spec.factor * 1000));
  return {
    ...base,
    type: spec.type,
    records: {},
    reads(ctx, out) {
      if (ctx.decision === 'deny') return;
      if (spec.asset !== undefined && !ctx.facts.requestedByAsset.has(spec.asset)) return;
      const series = spec.series(ctx);
      out.windows.push({ series, asset, sinceMs: ctx.input.nowMs - spec.windowMs }, { series, asset, sinceMs: ctx.input.nowMs - spec.baselineMs });
    },
    evaluate(ctx, view) {
      if (ctx.decision === 'deny') return undefined;
      // A request counts as it is charged: one, or one per call of a batch (calls.ts).
      const requested = spec.asset === undefined ? BigInt(requestCount(ctx.input.intent)) : ctx.facts.requestedByAsset.get(spec.asset);
      if (requested === undefined) return undefined;
      const series = spec.series(ctx);
      const short = view.total({ series, asset, sinceMs: ctx.input.nowMs - spec.windowMs });
      const long = view.total({ series, asset, sinceMs: ctx.input.nowMs - spec.baselineMs });
      const observed = (spec.asset === undefined ? BigInt(short.count) : short.amount) + requested;
      const history = spec.asset === undefined ? BigInt(long.count) : long.amount;
      const scaled = (history * factorMilli * BigInt(spec.windowMs)) / (BigInt(spec.baselineMs) * 1000n);
      const threshold = scaled > spec.min ? scaled : spec.min;
      if (observed <= threshold) return undefined;
      const expected = figure(Number(history) * spec.windowMs / spec.baselineMs);
      return {
        message: `${observed} ${spec.what} in the last ${spec.window}; baseline ${expected} per ${spec.window} (over ${spec.baselineText}), threshold ${threshold}`,
        figures: { observed: String(observed), baseline: expected, threshold: String(threshold), window: spec.window, ...(spec.asset !== undefined ? { asset: spec.asset } : {}) },
      };
    },
  };
}

function checkWindows(options: { window: string; baseline: string }, path: readonly (string | number)[]) {
  const windowMs = parseDuration(options.window);
  const baselineMs = parseDuration(options.baseline);
  if (baselineMs <= windowMs) throw invalidPolicyAt([...path, 'baseline'], 'the baseline window must be longer than window');
  return { windowMs, baselineMs };
}

/** The agent's signed (or held) requests in a short window against its own baseline rate. */
export const requestBurstDetector = defineDetector({
  type: 'request_burst',
  schema: z.strictObject({
    ...detectorBase,
    type: z.literal('request_burst'),
    ...windowsFields,
    min_count: z.number({ error: 'expected a positive integer' }).int('expected a positive integer').positive('expected a positive integer').default(20)
      .describe('The window never trips at or below this count, whatever the baseline.'),
  }),
  build(options, env) {
    const { windowMs, baselineMs } = checkWindows(options, env.path as (string | number)[]);
    return burst(baseOptions(options, env.path, invalidPolicyAt), {
      type: 'request_burst', series: (ctx) => seriesFor.agent(ctx.input.agentId), asset: undefined, min: BigInt(options.min_count),
      windowMs, baselineMs, factor: options.factor, window: options.window, baselineText: options.baseline, what: 'requests',
    });
  },
});

/** The agent's spend of one asset in a short window against its own baseline. */
export const spendBurstDetector = defineDetector({
  type: 'spend_burst',
  schema: z.strictObject({
    ...detectorBase,
    type: z.literal('spend_burst'),
    asset: assetField,
    ...windowsFields,
    min_amount: amountField.describe('The window never trips at or below this amount (base units), whatever the baseline.'),
  }),
  build(options, env) {
    const { windowMs, baselineMs } = checkWindows(options, env.path as (string | number)[]);
    return burst(baseOptions(options, env.path, invalidPolicyAt), {
      // Lowercase like every rule's asset: the request's assets are (facts.ts), so a checksummed token address still matches.
      type: 'spend_burst', series: (ctx) => seriesFor.agent(ctx.input.agentId), asset: options.asset.toLowerCase(), min: toAmount(options.min_amount),
      windowMs, baselineMs, factor: options.factor, window: options.window, baselineText: options.baseline, what: `base units of ${options.asset}`,
    });
  },
});

/** The whole fleet's spend of one asset in a short window against the fleet's baseline. */
export const fleetSpendBurstDetector = defineDetector({
  type: 'fleet_spend_burst',
  schema: z.strictObject({
    ...detectorBase,
    type: z.literal('fleet_spend_burst'),
    asset: assetField,
    ...windowsFields,
    min_amount: amountField.describe('The window never trips at or below this amount (base units), whatever the baseline.'),
  }),
  build(options, env) {
    const { windowMs, baselineMs } = checkWindows(options, env.path as (string | number)[]);
    return burst(baseOptions(options, env.path, invalidPolicyAt), {
      type: 'fleet_spend_burst', series: () => seriesFor.fleet(), asset: options.asset.toLowerCase(), min: toAmount(options.min_amount),
      windowMs, baselineMs, factor: options.factor, window: options.window, baselineText: options.baseline, what: `base units of ${options.asset} fleet-wide`,
    });
  },
});
