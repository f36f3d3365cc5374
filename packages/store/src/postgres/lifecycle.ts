import { AirlockError, type LifecycleFinish, type LifecycleJob, type LifecycleJobFilter, type LifecycleSignature } from '@airlock/core';
import { LIFECYCLE_JOB_COLUMNS, OPEN_STATES_SQL, lifecycleJobFromRow, lifecycleJobValues, lifecycleJobWhere, openSweepConflict } from '../shared/lifecycle-rows.ts';
import type { Q } from './pg-query.ts';

// Lifecycle jobs (schema 018 + 025; core/service/lifecycle-service.ts). Writers hold the agent's lock (the service
// reads the agent first in its transaction), so two open sweeps of one key and asset never race to the index.

export async function insertLifecycleJob(q: Q, job: LifecycleJob): Promise<void> {
  try {
    await q(`INSERT INTO lifecycle_jobs (${LIFECYCLE_JOB_COLUMNS.join(', ')}) VALUES (${LIFECYCLE_JOB_COLUMNS.map((_, i) => `$${i + 1}`).join(', ')})`, lifecycleJobValues(job));
  } catch (e) {
    throw openSweepConflict(e);
  }
}

export async function getLifecycleJob(q: Q, id: string): Promise<LifecycleJob | undefined> {
  const [row] = await q('SELECT * FROM lifecycle_jobs WHERE id = $1', [id]);
  return row && lifecycleJobFromRow(row);
}

export async function listLifecycleJobs(q: Q, filter: LifecycleJobFilter): Promise<LifecycleJob[]> {
  const { where, params, limit } = lifecycleJobWhere(filter, (i) => `$${i}`);
  return (await q(`SELECT * FROM lifecycle_jobs ${where} ORDER BY created_at DESC, id DESC LIMIT $${params.length + 1}`, [...params, limit])).map(lifecycleJobFromRow);
}

export async function openLifecycleJobs(q: Q, agentId: string): Promise<LifecycleJob[]> {
  return (await q(`SELECT * FROM lifecycle_jobs WHERE agent_id = $1 AND ${OPEN_STATES_SQL} ORDER BY created_at, id`, [agentId])).map(lifecycleJobFromRow);
}

export async function recordLifecycleSignature(q: Q, id: string, signature: LifecycleSignature, now: number): Promise<LifecycleJob | undefined> {
  const [row] = await q(
    "UPDATE lifecycle_jobs SET state = 'signed', raw_transaction = $1, transaction_hash = $2, signed_audit_seq = $3, updated_at = $4 WHERE id = $5 AND state = 'planned' RETURNING *",
    [signature.rawTransaction, signature.transactionHash, signature.signedAuditSeq, now, id],
  );
  return row && lifecycleJobFromRow(row);
}

export async function recordLifecycleBroadcast(q: Q, id: string, now: number): Promise<LifecycleJob | undefined> {
  const [row] = await q(
    "UPDATE lifecycle_jobs SET broadcasts = broadcasts + 1, state = CASE WHEN state = 'signed' THEN 'submitted' ELSE state END, submitted_at = coalesce(submitted_at, $1), updated_at = $1 WHERE id = $2 AND state IN ('signed', 'submitted') RETURNING *",
    [now, id],
  );
  return row && lifecycleJobFromRow(row);
}

export async function finishLifecycleJob(q: Q, id: string, finish: LifecycleFinish, now: number, auditSeq: number): Promise<LifecycleJob> {
  const [row] = await q(
    "UPDATE lifecycle_jobs SET state = $1, block_number = $2, gas_used = $3, failure = $4, finished_at = $5, updated_at = $5, finish_audit_seq = $6 WHERE id = $7 AND state IN ('planned', 'signed', 'submitted') RETURNING *",
    [finish.state, finish.blockNumber?.toString() ?? null, finish.gasUsed?.toString() ?? null, finish.failure ?? null, now, auditSeq, id],
  );
  if (!row) throw new AirlockError('conflict', 'The lifecycle job is not open.');
  return lifecycleJobFromRow(row);
}
