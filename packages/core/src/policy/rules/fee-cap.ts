import { z } from 'zod';
import type { FeeFields } from '../../intent.ts';
import { toAmount } from '../amount.ts';
import { amountField, matchField, ruleBase } from '../fields.ts';
import { CompiledMatch } from '../match.ts';
import { applies, defineRule, type Finding } from './types.ts';

interface Cap {
  field: string;
  limit: bigint;
  read(fees: FeeFields): bigint | undefined;
}

/** Caps on network fees (semantics §10); one violation per field exceeded. Fields the intent lacks are not checked. */
export const feeCapRule = defineRule({
  type: 'fee_cap',
  schema: z
    .strictObject({
      ...ruleBase,
      type: z.literal('fee_cap'),
      max_fee_per_gas: amountField.optional(),
      max_priority_fee_per_gas: amountField.optional(),
      max_gas: amountField.optional(),
      max_total_fee: amountField.optional(),
      match: matchField.optional(),
    })
    .refine(
      (o) => o.max_fee_per_gas !== undefined || o.max_priority_fee_per_gas !== undefined || o.max_gas !== undefined || o.max_total_fee !== undefined,
      'expected at least one of max_fee_per_gas, max_priority_fee_per_gas, max_gas, max_total_fee',
    ),
  build(options, env) {
    const caps: Cap[] = [];
    // A legacy gasPrice is what a type-0 transaction pays per gas: held to the same cap.
    if (options.max_fee_per_gas !== undefined) caps.push({ field: 'max_fee_per_gas', limit: toAmount(options.max_fee_per_gas), read: (f) => f.maxFeePerGas ?? f.gasPrice });
    if (options.max_priority_fee_per_gas !== undefined) caps.push({ field: 'max_priority_fee_per_gas', limit: toAmount(options.max_priority_fee_per_gas), read: (f) => f.maxPriorityFeePerGas });
    if (options.max_gas !== undefined) caps.push({ field: 'max_gas', limit: toAmount(options.max_gas), read: (f) => f.gasLimit });
    if (options.max_total_fee !== undefined) caps.push({ field: 'max_total_fee', limit: toAmount(options.max_total_fee), read: (f) => f.maxTotalFee });
    const match = options.match && new CompiledMatch(options.match, env.sets, [...env.path, 'match']);
    return {
      name: options.name,
      type: 'fee_cap',
      windows() {},
      evaluate(ctx) {
        const fees = ctx.input.intent.fees;
        if (!fees || !applies(match, ctx)) return 'pass';
        let findings: Finding[] | undefined;
        for (const cap of caps) {
          const value = cap.read(fees);
          if (value === undefined || value <= cap.limit) continue;
          (findings ??= []).push({ code: 'fee_exceeds_cap', message: `${cap.field}: ${value} exceeds the cap of ${cap.limit}`, limit: cap.limit.toString(), requested: value.toString() });
        }
        return findings ?? 'pass';
      },
    };
  },
});
