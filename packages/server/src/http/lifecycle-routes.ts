// The lifecycle path for operators (admin token only): sweeps, jobs, orphans, retire with sweep
// (docs/api.md "Lifecycle", docs/operations.md "Retire, sweep, orphans and hot-balance caps").
import type { z } from 'zod';
import type { LifecycleJob, Orphan, SweepReport } from '@airlock/core';
import type { AirlockHolder } from './holder.ts';
import type { RouteSpec } from './route-table.ts';
import { agentJson } from './serialize.ts';
import * as L from './lifecycle-schemas.ts';

const OPERATOR = 'admin';
const iso = (ms: number) => new Date(ms).toISOString();

export function lifecycleJobJson(j: LifecycleJob): z.output<typeof L.LifecycleJobSchema> {
  return {
    id: j.id, agentId: j.agentId, keyIndex: j.keyIndex, chain: j.chain, from: j.from, nonce: j.nonce, origin: j.origin, kind: j.kind, purpose: j.purpose,
    ...(j.asset !== undefined ? { asset: j.asset } : {}),
    amount: j.amount.toString(),
    ...(j.recipient !== undefined ? { recipient: j.recipient } : {}),
    to: j.to, maxFee: j.maxFee.toString(),
    ...(j.rawTransaction !== undefined ? { rawTransaction: j.rawTransaction } : {}),
    ...(j.transactionHash !== undefined ? { transactionHash: j.transactionHash } : {}),
    summary: j.summary, state: j.state, auditSeq: j.auditSeq,
    ...(j.signedAuditSeq !== undefined ? { signedAuditSeq: j.signedAuditSeq } : {}),
    broadcasts: j.broadcasts, createdAt: iso(j.createdAt), updatedAt: iso(j.updatedAt),
    ...(j.submittedAt !== undefined ? { submittedAt: iso(j.submittedAt) } : {}),
    ...(j.finishedAt !== undefined ? { finishedAt: iso(j.finishedAt) } : {}),
    ...(j.blockNumber !== undefined ? { blockNumber: j.blockNumber.toString() } : {}),
    ...(j.gasUsed !== undefined ? { gasUsed: j.gasUsed.toString() } : {}),
    ...(j.failure !== undefined ? { failure: j.failure } : {}),
    ...(j.finishAuditSeq !== undefined ? { finishAuditSeq: j.finishAuditSeq } : {}),
  };
}

function orphanJson(o: Orphan): z.output<typeof L.OrphanSchema> {
  return { ...o, lastActivityAt: iso(o.lastActivityAt) };
}

function mergeReports(reports: SweepReport[]) {
  return { jobs: reports.flatMap((r) => r.jobs.map(lifecycleJobJson)), skipped: reports.flatMap((r) => r.skipped) };
}

export function buildLifecycleRoutes(holder: AirlockHolder): RouteSpec[] {
  const lifecycle = () => holder.get().lifecycle;
  return [
    {
      method: 'post', path: '/v1/agents/:id/retire', operationId: 'retireAgent', summary: 'Retire for good: revokes its sessions at once (the account index is never reused) and sweeps its residual balances to the treasury (unless sweep=false); the key counts as retired once the sweeps are mined', tag: 'agents', auth: 'admin',
      query: L.RetireParams, responses: { 200: L.RetireResponse }, errors: [404, 409, 502],
      handler: async (c, { query }) => {
        const { agent, sweeps } = await lifecycle().retire(c.req.param('id')!, { sweep: (query as { sweep?: string }).sweep !== 'false' }, OPERATOR);
        return c.json({ ...agentJson(agent), lifecycle: await lifecycle().keyLifecycle(agent), sweep: mergeReports(sweeps) });
      },
    },
    {
      method: 'post', path: '/v1/agents/:id/sweep', operationId: 'sweepAgent', summary: "Sweep an agent key's native and lifecycle.sweep_assets balances to the treasury (or, from an old key, to its current address) through the lifecycle path", tag: 'lifecycle', auth: 'admin',
      body: L.SweepRequest, responses: { 200: L.SweepResponse }, errors: [400, 403, 404, 409, 502],
      handler: async (c, { body }) => {
        const b = (body ?? {}) as { keyIndex?: number; to?: 'treasury' | 'current'; reason?: string };
        const agent = await holder.get().operator.getAgent(c.req.param('id')!);
        const report = await lifecycle().sweep(agent.id, b.keyIndex ?? agent.keyIndex, b.to ?? 'treasury', b.reason ?? 'manual');
        return c.json(mergeReports([report]));
      },
    },
    {
      method: 'get', path: '/v1/lifecycle/jobs', operationId: 'listLifecycleJobs', summary: 'Lifecycle jobs (sweeps and revocations signed on the lifecycle path), newest first', tag: 'lifecycle', auth: 'admin',
      query: L.ListLifecycleJobsParams, responses: { 200: L.LifecycleJobListResponse }, errors: [404],
      handler: async (c, { query }) => {
        const q = query as { agent?: string; state?: 'planned' | 'signed' | 'submitted' | 'mined' | 'failed' | 'open'; limit?: number };
        const jobs = await lifecycle().listJobs({ ...(q.agent ? { agent: q.agent } : {}), ...(q.state === 'open' ? { open: true } : q.state ? { state: q.state } : {}), limit: q.limit ?? 100 });
        return c.json({ jobs: jobs.map(lifecycleJobJson) });
      },
    },
    {
      method: 'get', path: '/v1/lifecycle/jobs/:id', operationId: 'getLifecycleJob', summary: 'One lifecycle job: its signed bytes, state, receipt and audit entries', tag: 'lifecycle', auth: 'admin',
      responses: { 200: L.LifecycleJobSchema }, errors: [404],
      handler: async (c) => c.json(lifecycleJobJson(await lifecycle().getJob(c.req.param('id')!))),
    },
    {
      method: 'get', path: '/v1/lifecycle/orphans', operationId: 'listOrphans', summary: "Orphaned wallets: agents without session activity for the fleet's lifecycle.orphan_after, and retired agents with a balance", tag: 'lifecycle', auth: 'admin',
      responses: { 200: L.OrphanListResponse }, errors: [502],
      handler: async (c) => c.json({ orphans: (await lifecycle().orphans()).map(orphanJson) }),
    },
    {
      method: 'post', path: '/v1/lifecycle/orphans/sweep', operationId: 'sweepOrphans', summary: 'Report the orphans (audited once each) and sweep their balances to the treasury', tag: 'lifecycle', auth: 'admin',
      responses: { 200: L.OrphanSweepResponse }, errors: [502],
      handler: async (c) => {
        const pass = await lifecycle().orphanPass({ sweep: true });
        return c.json({ orphans: pass.orphans.map(orphanJson), reported: pass.reported, sweeps: pass.sweeps });
      },
    },
  ];
}
