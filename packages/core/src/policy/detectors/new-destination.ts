import { z } from 'zod';
import { COUNT_ASSET, seriesFor } from '../../ports/ledger.ts';
import { invalidPolicyAt } from '../path.ts';
import { baseOptions, defineDetector, detectorBase } from './types.ts';

/** Everything ever charged to the destination by any agent of the fleet: the ledger alone, no hold. */
const everCharged = (to: string) => ({ series: seriesFor.withDestination(seriesFor.fleet(), to), asset: COUNT_ASSET, sinceMs: 0, chargesOnly: true }) as const;

/**
 * A first payment to a destination no agent of the fleet has ever paid: the ledger's per-destination fleet
 * series (`fleet|to:<addr>`, written by every signature since the first) has nothing charged to it. Its charges
 * only (WindowQuery.chargesOnly): a request held for approval is no payment, nor is a reserved x402 payment or a
 * Lightning payment in flight until it is charged (found by review: one agent's held request to a payee made the
 * payee look paid, and the next agent's payment to it was signed with no finding). Looks only at requests policy
 * would sign or hold: a refused one pays nobody.
 */
export const newDestinationDetector = defineDetector({
  type: 'new_destination',
  schema: z.strictObject({
    ...detectorBase,
    type: z.literal('new_destination'),
  }),
  build(options, env) {
    return {
      ...baseOptions(options, env.path, invalidPolicyAt),
      type: 'new_destination',
      records: {},
      reads(ctx, out) {
        if (ctx.decision === 'deny') return;
        for (const to of ctx.facts.requestedByDestination.keys()) out.windows.push(everCharged(to));
      },
      evaluate(ctx, view) {
        if (ctx.decision === 'deny') return undefined;
        for (const to of ctx.facts.requestedByDestination.keys()) {
          const ever = view.total(everCharged(to)).count;
          if (ever > 0) continue;
          return {
            message: `${to}: no agent of the fleet has paid this destination before`,
            figures: { observed: '0', baseline: '0', threshold: '1', destination: to },
          };
        }
        return undefined;
      },
    };
  },
});
