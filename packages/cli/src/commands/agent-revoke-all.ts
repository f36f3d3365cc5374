// `airlock agent revoke-all <agent> [--wait] [--timeout S]`: the incident button (issue 14, section 3). Prints
// what was frozen, revoked and denied off chain, then each on-chain revocation; with --wait it follows each
// lifecycle job until it is mined or failed. Exit 1 when anything failed, was left unplanned or did not finish
// in time: an incident script must not read "done" from a partial revocation.
import type { AirlockHttp } from '@airlock/sdk';
import { UsageError } from '../args.ts';
import { printJson, table } from '../format.ts';

export const AGENT_REVOKE_ALL_USAGE = 'airlock agent revoke-all <id|name> [--wait] [--timeout SECONDS]   (freeze, revoke sessions and approvals, revoke every on-chain grant; --wait follows the transactions, default 120 s)';

interface GrantRefJson { kind: string; auditSeq: number; index?: number; paymentId?: string }
interface RevokeAllJson {
  agent: { id: string; name: string; status: string };
  frozen: boolean;
  revokedSessions: string[];
  deniedApprovals: string[];
  auditSeq: number;
  steps: { purpose: string; keyIndex: number; chain: string; grants: GrantRefJson[]; status: 'submitted' | 'failed'; jobId?: string; error?: { code: string; message: string } }[];
  unplanned: { purpose: string; reason: string; message: string; grants: GrantRefJson[]; keyIndex?: number }[];
  alreadyDead: GrantRefJson[];
  notes: string[];
}
interface JobJson { id: string; state: 'planned' | 'signed' | 'submitted' | 'mined' | 'failed'; transactionHash?: string; failure?: string; blockNumber?: string }

export function revokeAllTimeout(text: unknown): number {
  if (text === undefined) return 120;
  if (typeof text !== 'string' || !/^\d{1,6}$/.test(text) || Number(text) === 0) throw new UsageError('--timeout must be a positive number of seconds');
  return Number(text);
}

export async function agentRevokeAll(http: AirlockHttp, agent: string, options: { wait: boolean; timeoutSeconds: number; json: boolean }): Promise<void> {
  const { body: report } = await http.request<RevokeAllJson>('POST', `/v1/agents/${encodeURIComponent(agent)}/revoke-all`);
  const jobs = options.wait ? await waitForJobs(http, report.steps.flatMap((s) => (s.jobId ? [s.jobId] : [])), options.timeoutSeconds) : new Map<string, JobJson>();
  const incomplete = report.steps.some((s) => s.status === 'failed' || (options.wait && jobs.get(s.jobId!)?.state !== 'mined')) || report.unplanned.length > 0;
  if (incomplete) process.exitCode = 1;
  if (options.json) return printJson(options.wait ? { ...report, jobs: [...jobs.values()].map(({ id, state, transactionHash, blockNumber, failure }) => ({ id, state, transactionHash, ...(blockNumber !== undefined ? { blockNumber } : {}), ...(failure !== undefined ? { failure } : {}) })) } : report);

  const out: string[] = [];
  const { agent: a } = report;
  out.push(`${a.name} (${a.id}): ${report.frozen ? 'frozen now' : 'was frozen already'}; audit entry ${report.auditSeq} (agent.revoke_all)`);
  out.push(`sessions revoked: ${report.revokedSessions.length ? report.revokedSessions.join(', ') : 'none open'}`);
  out.push(`approvals denied: ${report.deniedApprovals.length ? report.deniedApprovals.join(', ') : 'none pending'}`);
  const submitted = report.steps.filter((s) => s.status === 'submitted').length;
  out.push('', `on-chain revocations: ${report.steps.length} (${submitted} submitted, ${report.steps.length - submitted} failed)`);
  if (report.steps.length) {
    out.push(table(report.steps.map((s) => ({ key: s.keyIndex, chain: s.chain, result: stepResult(s, jobs, options.wait), job: s.jobId ?? '', purpose: s.purpose })) as never, ['key', 'chain', 'result', 'job', 'purpose']));
    for (const s of report.steps) if (s.error) out.push(`failed [${s.error.code}] on ${s.chain} (key ${s.keyIndex}): ${s.error.message}`);
  }
  if (report.alreadyDead.length) out.push('', `already dead on chain: ${report.alreadyDead.length} grant(s) (${report.alreadyDead.map(grantText).join(', ')})`);
  for (const u of report.unplanned) out.push('', `NOT PLANNED [${u.reason}] ${u.purpose}: ${u.message}`);
  for (const note of report.notes) out.push('', `note: ${note}`);
  if (!options.wait && submitted > 0) out.push('', 'The transactions are tracked until mined: `airlock lifecycle jobs --agent ' + a.id + '`, or run with --wait.');
  console.log(out.join('\n'));
}

function stepResult(step: RevokeAllJson['steps'][number], jobs: Map<string, JobJson>, waited: boolean): string {
  if (step.status === 'failed') return `failed [${step.error!.code}]`;
  if (!waited) return 'submitted';
  const job = jobs.get(step.jobId!);
  if (job?.state === 'mined') return `revoked (block ${job.blockNumber ?? '?'})`;
  if (job?.state === 'failed') return `failed on chain: ${job.failure ?? 'unknown'}`;
  return `not mined yet (${job?.state ?? 'unknown'})`;
}

function grantText(g: GrantRefJson): string {
  return g.paymentId ? `${g.kind} ${g.paymentId}` : `${g.kind} #${g.auditSeq}`;
}

/** Polls each job until mined or failed, or until the timeout; returns the last state read of each. */
async function waitForJobs(http: AirlockHttp, ids: string[], timeoutSeconds: number): Promise<Map<string, JobJson>> {
  const jobs = new Map<string, JobJson>();
  const deadline = Date.now() + timeoutSeconds * 1000;
  for (;;) {
    for (const id of ids) {
      if (jobs.get(id)?.state === 'mined' || jobs.get(id)?.state === 'failed') continue;
      const { body } = await http.request<JobJson>('GET', `/v1/lifecycle/jobs/${encodeURIComponent(id)}`);
      jobs.set(id, body);
    }
    const open = ids.filter((id) => jobs.get(id)!.state !== 'mined' && jobs.get(id)!.state !== 'failed');
    if (open.length === 0 || Date.now() >= deadline) return jobs;
    await new Promise((r) => setTimeout(r, Math.min(1000, Math.max(0, deadline - Date.now()))));
  }
}
