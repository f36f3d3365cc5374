import { z } from 'zod';
import { parseDuration } from '../duration.ts';
import { durationField } from '../fields.ts';
import { invalidPolicyAt } from '../path.ts';
import { baseOptions, defineDetector, detectorBase } from './types.ts';

/**
 * Lateral movement: at least `agents` distinct agents paying one destination that the fleet first paid within
 * `window`. No single agent looks odd (each pays once); together they are a wave. The destination is new to
 * the fleet when its fleet series holds nothing older than the window; its payers are the agents whose first
 * payment to it was recorded within the window (StoreTx.destinationPayers, written for requests signed or held
 * for approval where a destination_wave detector is configured). Payers are recorded only from when such a
 * detector is in the policy: a destination the fleet was charged for before its first recorded payer (paid before
 * the detector was configured) is not counted as a wave. That is judged by time, not by comparing counts: a
 * replay, a granted approval or a batch's further calls charge the fleet series without recording a payer, but
 * always after the screening that recorded one, so none of them can make a new payee look known. A breaker of
 * scope agent binds every agent of the wave.
 */
export const destinationWaveDetector = defineDetector({
  type: 'destination_wave',
  schema: z.strictObject({
    ...detectorBase,
    type: z.literal('destination_wave'),
    agents: z.number({ error: 'expected an integer of at least 2' }).int('expected an integer of at least 2').min(2, 'expected an integer of at least 2')
      .describe('The detector trips when this many distinct agents (the requester included) have paid the destination.'),
    window: durationField.default('1h'),
  }),
  build(options, env) {
    const windowMs = parseDuration(options.window);
    return {
      ...baseOptions(options, env.path, invalidPolicyAt),
      type: 'destination_wave',
      records: { payers: true },
      reads(ctx, out) {
        if (ctx.decision === 'deny') return;
        const sinceMs = ctx.input.nowMs - windowMs;
        for (const to of ctx.facts.requestedByDestination.keys()) out.payers.push({ destination: to, sinceMs });
      },
      evaluate(ctx, view) {
        if (ctx.decision === 'deny') return undefined;
        const sinceMs = ctx.input.nowMs - windowMs;
        for (const to of ctx.facts.requestedByDestination.keys()) {
          // Paid before the window (a ledger entry, not a hold: a held request is no payment): a destination the
          // fleet already knew, not a wave. Charged before its first recorded payer (before the detector was
          // configured): who paid it is unknown, so it is not counted either. By time only: counts of charges
          // without a payer (replays, grants, batches) never exempt it.
          const payers = view.payers(to, sinceMs);
          if (payers.paidBeforeWindow || payers.paidBeforeRecorded) continue;
          const wave = new Set([...payers.agents, ctx.input.agentId]);
          if (wave.size < options.agents) continue;
          return {
            message: `${wave.size} agents paid ${to}, first paid by the fleet within the last ${options.window}; the detector trips at ${options.agents}`,
            figures: { observed: String(wave.size), baseline: '0', threshold: String(options.agents), window: options.window, destination: to },
            agents: [...wave].filter((a) => a !== ctx.input.agentId),
          };
        }
        return undefined;
      },
    };
  },
});
