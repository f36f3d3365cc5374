// Request and response schemas of the operator console's routes (docs/console.md): its session and the
// spend history its charts read.
import { z } from 'zod';
import { apiSchema } from './api-schemas.ts';
import { iso } from './schemas.ts';

const amountString = z.string().regex(/^\d{1,78}$/, 'a non-negative integer string (base units)');
const duration = z.string().regex(/^[1-9][0-9]{0,9}(s|m|h|d)$/, 'a duration like 90s, 15m, 1h, 7d');

export const ConsoleLoginRequest = apiSchema(
  'ConsoleLoginRequest',
  z.strictObject({ token: z.string().min(1).max(256).describe('The admin token (`adm_…`). Sent once; the answer sets the session cookie and never repeats the token.') }),
);

export const ConsoleSessionResponse = apiSchema(
  'ConsoleSession',
  z.object({
    active: z.boolean().describe('the request carries a live console session cookie'),
    expiresAt: iso.optional().describe('when the session ends at the latest (it also ends after 30 minutes unused)'),
    proof: z.string().optional().describe('login only: the session\'s second secret; the console keeps it in sessionStorage and sends it as the X-Airlock-Console header of every request (the cookie alone is not the session)'),
  }),
);

export const ConsoleLogoutResponse = apiSchema('ConsoleLogout', z.object({ closed: z.boolean().describe('a live console session was ended') }));

export const SpendParams = z.object({
  agent: z.string().optional().describe('an agent id or name; default: the fleet'),
  bucket: duration.optional().describe('bucket size (default 1h), at least 1m'),
  since: z.string().optional().describe('ISO time or ms since epoch (default: 24 buckets before `until`)'),
  until: z.string().optional().describe('ISO time or ms since epoch (default and latest: now)'),
  asset: z.string().max(200).optional().describe('a CAIP-19 asset to chart besides those the budget rules name'),
});

export const SpendHistoryResponse = apiSchema(
  'SpendHistory',
  z.object({
    scope: z.enum(['fleet', 'agent']),
    agent: z.object({ id: z.string(), name: z.string() }).optional(),
    bucketMs: z.number(),
    edges: z.array(iso).describe('N + 1 bucket edges: bucket i is [edges[i], edges[i+1])'),
    assets: z.array(
      z.object({
        asset: z.string().describe('CAIP-19'),
        amounts: z.array(amountString).describe('charged per bucket (base units)'),
        counts: z.array(z.number()).describe('charges per bucket'),
      }),
    ),
    budgets: z
      .array(
        z.object({
          rule: z.string().describe('`<layer>/<rule name>` as violations name it'),
          asset: z.string(),
          max: amountString,
          window: duration,
          used: amountString.describe('use now, pending holds included: what policy reads for the next request'),
          usedAt: z.array(amountString).describe("use over the rule's window at each bucket end (charges written by then; holds pending at that time are not kept)"),
        }),
      )
      .describe('plain budget rules of the scope (fleet-scope rules for the fleet, agent-scope rules for an agent), without per-destination or per-origin splits'),
  }),
);
