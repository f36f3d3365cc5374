import { z } from 'zod';
import { matchField, ruleBase } from '../fields.ts';
import { CompiledMatch } from '../match.ts';
import { defineRule, type Finding } from './types.ts';

/**
 * Explicit deny (semantics §2): wins over every allow rule in every layer. Its `match` is read as
 * "touches": any moved asset, any party, any named chain listed is enough.
 */
export const denyRule = defineRule({
  type: 'deny',
  schema: z.strictObject({ ...ruleBase, type: z.literal('deny'), match: matchField }),
  build(options, env) {
    const match = new CompiledMatch(options.match, env.sets, [...env.path, 'match']);
    const findings: readonly Finding[] = [
      { code: 'denied_by_rule', message: options.description ? `explicitly denied: ${options.description}` : 'explicitly denied by a deny rule' },
    ];
    return {
      name: options.name,
      type: 'deny',
      windows() {},
      evaluate(ctx) {
        return match.touches(ctx.input.intent, ctx.facts) ? findings : 'pass';
      },
    };
  },
});
