// Circuit breakers as operators see them (docs/api.md, docs/policy.md "Detectors and circuit breakers").
import { z } from 'zod';
import { apiSchema } from './api-schemas.ts';
import { iso } from './schemas.ts';

export const DetectorFiguresSchema = apiSchema(
  'DetectorFigures',
  z.object({
    observed: z.string().describe('What the detector saw, with the request that tripped it (a count, or base units of `asset`)'),
    threshold: z.string().describe('The figure it may not exceed'),
    baseline: z.string().optional().describe('What history led it to expect (per `window`)'),
    window: z.string().optional(),
    asset: z.string().optional(),
    destination: z.string().optional(),
  }),
);

export const BreakerSchema = apiSchema(
  'Breaker',
  z.object({
    id: z.string(),
    detector: z.string().describe('`detector/<layer>/<name>`'),
    type: z.string().describe('The detector type (request_burst, spend_burst, refusal_run, new_destination, off_hours, destination_wave, fleet_spend_burst)'),
    action: z.enum(['require_approval', 'freeze']),
    scope: z.enum(['agent', 'group', 'fleet']),
    group: z.object({ label: z.string(), value: z.string() }).optional(),
    agentId: z.string().describe('The agent whose request tripped it'),
    policyVersion: z.string(),
    figures: DetectorFiguresSchema,
    message: z.string(),
    agents: z.array(z.string()).describe('The agents it binds (a freeze: the agents it froze)'),
    state: z.enum(['tripped', 'reset']),
    trippedAt: iso,
    trippedSeq: z.number().describe('The `breaker.tripped` audit entry'),
    resetAt: iso.optional(),
    resetBy: z.string().optional(),
    resetSeq: z.number().optional().describe('The `breaker.reset` audit entry'),
  }),
);

export const BreakerListResponse = apiSchema('BreakerList', z.object({ breakers: z.array(BreakerSchema) }));
export const BreakerResetResponse = apiSchema(
  'BreakerReset',
  BreakerSchema.extend({
    unfrozen: z.array(z.string()).describe('The agents the reset unfroze (still frozen by it, held by no other tripped freeze breaker, not frozen by the operator)'),
    keptFrozen: z
      .array(z.object({ agentId: z.string(), operatorFreeze: z.boolean().describe('The operator froze it (freeze or revoke-all), which only an unfreeze ends'), breakers: z.array(z.string()).describe('Other tripped freeze breakers holding it') }))
      .describe("The breaker's agents the reset left frozen, and why (also in the reset's agent.kept_frozen audit entry)"),
  }),
);
export const ListBreakersParams = z.object({ state: z.enum(['tripped', 'reset', 'all']).optional().describe('Default: tripped') });
