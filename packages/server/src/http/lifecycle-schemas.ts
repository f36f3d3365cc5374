// The lifecycle path as operators see it: jobs, sweeps, orphans (docs/api.md, "Lifecycle").
import { z } from 'zod';
import { apiSchema } from './api-schemas.ts';
import { AgentSchema, iso } from './schemas.ts';

const amount = z.string().regex(/^\d+$/).describe('Base units, decimal');

export const LifecycleJobSchema = apiSchema(
  'LifecycleJob',
  z.object({
    id: z.string(),
    agentId: z.string(),
    keyIndex: z.number().describe("The key that signed: m/44'/60'/{accountIndex}'/0/{keyIndex}"),
    chain: z.string(),
    from: z.string().describe('The address of that key'),
    nonce: z.number(),
    origin: z.enum(['sweep', 'call']).describe('`sweep`: built from balances; `call`: a call handed in (revocations)'),
    kind: z.enum(['native_transfer', 'erc20_transfer', 'revocation']),
    purpose: z.string().describe('retire, manual, orphan, hot_balance_cap, rotation, revoke_all, …'),
    asset: z.string().optional(),
    amount,
    recipient: z.string().optional(),
    to: z.string(),
    maxFee: amount.describe('Gas limit x gas price (native base units)'),
    rawTransaction: z.string().optional().describe('The signed transaction, committed before it was broadcast (re-broadcast byte for byte); absent while `planned`'),
    transactionHash: z.string().optional().describe('Absent while `planned`'),
    summary: z.string(),
    state: z.enum(['planned', 'signed', 'submitted', 'mined', 'failed']).describe('`planned`: committed with what will be signed, not signed yet'),
    auditSeq: z.number().describe('The audit entry that created the job and carries its ledger charge: `lifecycle.planned` (what is signed; `lifecycle.signed` for jobs created before jobs were planned first)'),
    signedAuditSeq: z.number().optional().describe('The `lifecycle.signed` audit entry, once the bytes are recorded'),
    broadcasts: z.number(),
    createdAt: iso,
    updatedAt: iso,
    submittedAt: iso.optional(),
    finishedAt: iso.optional(),
    blockNumber: z.string().optional(),
    gasUsed: z.string().optional(),
    failure: z.string().optional(),
    finishAuditSeq: z.number().optional().describe('The `lifecycle.mined` / `lifecycle.failed` audit entry'),
  }),
);

export const LifecycleJobListResponse = apiSchema('LifecycleJobList', z.object({ jobs: z.array(LifecycleJobSchema) }));

export const ListLifecycleJobsParams = z.object({
  agent: z.string().optional().describe('Agent id or name'),
  state: z.enum(['planned', 'signed', 'submitted', 'mined', 'failed', 'open']).optional().describe('`open`: planned, signed or submitted'),
  limit: z.coerce.number().int().min(1).max(1000).optional(),
});

export const SweepSkipSchema = apiSchema(
  'SweepSkip',
  z.object({ chain: z.string(), asset: z.string(), reason: z.enum(['empty', 'dust', 'sweep_open', 'at_or_below_cap']).describe('`dust`: less than the fee of moving it; `sweep_open`: a sweep of it is already open') }),
);

export const SweepRequest = apiSchema(
  'SweepRequest',
  z
    .object({
      keyIndex: z.number().int().min(0).optional().describe("Default: the agent's current key"),
      to: z.enum(['treasury', 'current']).optional().describe("Default `treasury` (the fleet policy's lifecycle.treasury); `current`: the agent's current address (old keys only)"),
      reason: z.string().regex(/^[a-z0-9_.-]{1,64}$/).optional().describe('Recorded on the jobs and audit entries (default `manual`)'),
    })
    .strict(),
);

export const SweepResponse = apiSchema('SweepResponse', z.object({ jobs: z.array(LifecycleJobSchema), skipped: z.array(SweepSkipSchema) }));

export const KeyLifecycleSchema = apiSchema(
  'KeyLifecycle',
  z.object({
    keyState: z.enum(['active', 'sweeping', 'sweep_failed', 'retired']).describe('A retired agent\'s key is `sweeping` until its sweeps are mined, then `retired`'),
    openJobs: z.array(z.string()),
    failedJobs: z.array(z.string()),
  }),
);

export const RetireParams = z.object({ sweep: z.enum(['true', 'false']).optional().describe('Default true: sweep the residual balances to the treasury; `false` leaves them (today\'s retirement)') });

export const RetireResponse = apiSchema('RetireResponse', AgentSchema.extend({ lifecycle: KeyLifecycleSchema, sweep: z.object({ jobs: z.array(LifecycleJobSchema), skipped: z.array(SweepSkipSchema) }) }));

export const OrphanSchema = apiSchema(
  'Orphan',
  z.object({
    agentId: z.string(),
    name: z.string(),
    status: z.enum(['active', 'frozen', 'retired']),
    reason: z.enum(['inactive', 'retired_with_balance']),
    lastActivityAt: iso,
    balances: z.array(z.object({ keyIndex: z.number(), address: z.string(), chain: z.string(), asset: z.string(), amount })),
  }),
);

export const OrphanListResponse = apiSchema('OrphanList', z.object({ orphans: z.array(OrphanSchema) }));

export const OrphanSweepResponse = apiSchema(
  'OrphanSweepResponse',
  z.object({
    orphans: z.array(OrphanSchema),
    reported: z.array(z.string()).describe('Agents reported for the first time (`lifecycle.orphan_found`)'),
    sweeps: z.array(z.object({ agentId: z.string(), jobIds: z.array(z.string()), error: z.string().optional().describe('The error code that stopped this orphan\'s sweep') })),
  }),
);
