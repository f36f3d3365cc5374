import { z } from 'zod';
import { chainField, matchField, ruleBase } from '../fields.ts';
import { CompiledMatch } from '../match.ts';
import { applies, defineRule } from './types.ts';

/** Allowlist of CAIP-2 chains (semantics §10). */
export const chainsRule = defineRule({
  type: 'chains',
  schema: z.strictObject({ ...ruleBase, type: z.literal('chains'), allow: z.array(chainField).min(1, 'expected a non-empty list'), match: matchField.optional() }),
  build(options, env) {
    const allow = new Set(options.allow);
    const match = options.match && new CompiledMatch(options.match, env.sets, [...env.path, 'match']);
    return {
      name: options.name,
      type: 'chains',
      windows() {},
      evaluate(ctx) {
        const { chain } = ctx.input.intent;
        if (allow.has(chain) || !applies(match, ctx)) return 'pass';
        return [{ code: 'chain_not_allowed', message: `chain ${chain} is not allowed (allowed: ${options.allow.join(', ')})` }];
      },
    };
  },
});
