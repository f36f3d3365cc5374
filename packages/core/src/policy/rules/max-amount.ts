import { z } from 'zod';
import { toAmount } from '../amount.ts';
import { amountField, assetField, matchField, ruleBase } from '../fields.ts';
import { CompiledMatch } from '../match.ts';
import { matchedFacts } from '../calls.ts';
import { defineRule } from './types.ts';

/**
 * Per-request cap for one asset (semantics §5): spends (fees included) plus bounded approvals; an unlimited
 * approval of the asset exceeds it, whatever the cap (it exposes the whole balance). With a `match`, a
 * request that executes several calls is capped on the sum of the calls the match touches (or its whole sum when
 * the match touches the request itself): the calls of one request are one request.
 */
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
        // A batch whose match touches only some calls: the sum of those calls is what is capped (calls.ts).
        const facts = matchedFacts(match, ctx.input.intent, ctx.facts);
        if (facts === undefined) return 'pass';
        const unlimited = facts.unlimitedApprovals.get(asset);
        const requested = unlimited ?? facts.requestedByAsset.get(asset) ?? 0n;
        if (unlimited === undefined && requested <= max) return 'pass';
        return [
          {
            code: 'amount_exceeds_max',
            message: unlimited !== undefined ? `approves an unlimited amount of ${asset}; the per-request maximum is ${max}` : `requests ${requested} base units of ${asset}; the per-request maximum is ${max}`,
            limit: max.toString(),
            requested: requested.toString(),
            asset,
          },
        ];
      },
    };
  },
});
