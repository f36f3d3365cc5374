import { z } from 'zod';
import { ACTIONS } from '../../intent.ts';
import { matchField, ruleBase } from '../fields.ts';
import { CompiledMatch } from '../match.ts';
import { applies, defineRule } from './types.ts';

/** Allowlist of actions. Sessions use it for their `actions` scope; documents may too. */
export const actionsRule = defineRule({
  type: 'actions',
  schema: z.strictObject({
    ...ruleBase,
    type: z.literal('actions'),
    // May be empty: a session scoped to no action may do nothing (fail closed).
    allow: z.array(z.enum(ACTIONS, { error: `expected one of: ${ACTIONS.join(', ')}` })),
    match: matchField.optional(),
  }),
  build(options, env) {
    const allow = new Set<string>(options.allow);
    const match = options.match && new CompiledMatch(options.match, env.sets, [...env.path, 'match']);
    return {
      name: options.name,
      type: 'actions',
      windows() {},
      evaluate(ctx) {
        const { action } = ctx.input.intent;
        if (allow.has(action) || !applies(match, ctx)) return 'pass';
        return [{ code: 'action_not_allowed', message: `action ${action} is not allowed (allowed: ${options.allow.join(', ') || 'none'})` }];
      },
    };
  },
});
