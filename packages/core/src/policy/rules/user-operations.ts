import { z } from 'zod';
import { toAmount } from '../amount.ts';
import { addressListField, amountField, matchField, ruleBase } from '../fields.ts';
import { CompiledMatch } from '../match.ts';
import { resolveAddressList } from '../sets.ts';
import { applies, defineRule, type Finding } from './types.ts';

/**
 * Limits on ERC-4337 user operations beyond their calls (which policy evaluates one by one): the prefund
 * the account can lose to gas (`max_prefund`: every gas limit times maxFeePerGas), the paymasters it may
 * name and the EntryPoints it may use. A paymaster is an external party (it can charge the account in its
 * postOp), so an operation naming one is refused unless a rule whose `match` applies to the operation lists it
 * (`governsPaymasters`: where no list applies, the evaluator refuses; where one applies, it refuses what it leaves out).
 */
export const userOperationsRule = defineRule({
  type: 'user_operations',
  schema: z
    .strictObject({
      ...ruleBase,
      type: z.literal('user_operations'),
      max_prefund: amountField.optional().describe('The most (wei) an operation may commit to gas: (call + verification + pre-verification + paymaster gas limits) x maxFeePerGas.'),
      paymasters: addressListField.optional().describe('Paymasters an operation may name where this rule applies. An operation naming a paymaster is refused (paymaster_not_allowed) unless a user_operations rule whose match applies to it lists the paymaster.'),
      entry_points: addressListField.optional().describe('EntryPoint contracts an operation may be signed for; absent: any.'),
      match: matchField.optional(),
    })
    .refine((o) => o.max_prefund !== undefined || o.paymasters !== undefined || o.entry_points !== undefined, 'expected at least one of max_prefund, paymasters, entry_points'),
  build(options, env) {
    const maxPrefund = options.max_prefund === undefined ? undefined : toAmount(options.max_prefund);
    const paymasters = options.paymasters === undefined ? undefined : resolveAddressList(options.paymasters, env.sets, [...env.path, 'paymasters']);
    const entryPoints = options.entry_points === undefined ? undefined : resolveAddressList(options.entry_points, env.sets, [...env.path, 'entry_points']);
    const match = options.match && new CompiledMatch(options.match, env.sets, [...env.path, 'match']);
    return {
      name: options.name,
      type: 'user_operations',
      windows() {},
      governsPaymasters: paymasters === undefined ? undefined : (ctx) => applies(match, ctx),
      evaluate(ctx) {
        const op = ctx.input.intent.userOperation;
        if (!op || !applies(match, ctx)) return 'pass';
        let findings: Finding[] | undefined;
        if (maxPrefund !== undefined && op.prefund > maxPrefund) {
          (findings ??= []).push({
            code: 'prefund_exceeds_cap',
            message: `the operation commits up to ${op.prefund} wei to gas (${op.totalGas} gas at its maxFeePerGas); the cap is ${maxPrefund}`,
            limit: maxPrefund.toString(),
            requested: op.prefund.toString(),
          });
        }
        if (op.paymaster !== undefined && paymasters !== undefined && !paymasters.has(op.paymaster)) {
          (findings ??= []).push({ code: 'paymaster_not_allowed', message: `paymaster ${op.paymaster} is not in the paymaster allowlist` });
        }
        if (entryPoints !== undefined && !entryPoints.has(op.entryPoint)) {
          (findings ??= []).push({ code: 'entry_point_not_allowed', message: `EntryPoint ${op.entryPoint} is not in the allowlist` });
        }
        return findings ?? 'pass';
      },
    };
  },
});
