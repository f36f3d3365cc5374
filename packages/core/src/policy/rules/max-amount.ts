import { z } from 'zod';
import { toAmount } from '../amount.ts';
import { amountField, assetField, matchField, ruleBase } from '../fields.ts';
import { CompiledMatch } from '../match.ts';
import { applies, defineRule } from './types.ts';

/** Per-request cap for one asset (semantics §5): spends (fees included) plus bounded approvals. */
export const maxAmountRule = defineRule({
  type: 'max_amount',
  schema: z.strictObject({ ...ruleBase, type: z.literal('max_amount'), asset: assetField, max: amountField, match: matchField.optional() }),
  build(options, env) {
    const asset = options.asset.toLowerCase();
    const max = toAmount(options.max);
    const match = options.match && new CompiledMatch(options.match, env.sets, [...env.path, 'match']);
    return {
      name: options.name,
      type: 'max_amount',
      windows() {},
      evaluate(ctx) {
        if (!applies(match, ctx)) return 'pass';
        const requested = ctx.facts.requestedByAsset.get(asset) ?? 0n;
        if (requested <= max) return 'pass';
        return [
          {
            code: 'amount_exceeds_max',
            message: `requests ${requested} base units of ${asset}; the per-request maximum is ${max}`,
            limit: max.toString(),
            requested: requested.toString(),
            asset,
          },
        ];
      },
    };
  },
});
