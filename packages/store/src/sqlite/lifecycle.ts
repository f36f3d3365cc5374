import { AirlockError, type LifecycleFinish, type LifecycleJob, type LifecycleJobFilter, type LifecycleSignature } from '@airlock/core';
import type { SQLInputValue } from 'node:sqlite';
import { LIFECYCLE_JOB_COLUMNS, OPEN_STATES_SQL, lifecycleJobFromRow, lifecycleJobValues, lifecycleJobWhere, openSweepConflict } from '../shared/lifecycle-rows.ts';
import type { SqliteDb } from './sqlite-db.ts';

// Lifecycle jobs (schema 017 + 021; core/service/lifecycle-service.ts).

export function insertLifecycleJob(db: SqliteDb, job: LifecycleJob): void {
  try {
    db.run(`INSERT INTO lifecycle_jobs (${LIFECYCLE_JOB_COLUMNS.join(', ')}) VALUES (${LIFECYCLE_JOB_COLUMNS.map(() => '?').join(', ')})`, ...(lifecycleJobValues(job) as SQLInputValue[]));
  } catch (e) {
    throw openSweepConflict(e);
  }
}

export function getLifecycleJob(db: SqliteDb, id: string): LifecycleJob | undefined {
  const row = db.get('SELECT * FROM lifecycle_jobs WHERE id = ?', id);
  return row ? lifecycleJobFromRow(row) : undefined;
}

export function listLifecycleJobs(db: SqliteDb, filter: LifecycleJobFilter): LifecycleJob[] {
  const { where, params, limit } = lifecycleJobWhere(filter, () => '?');
  return db.all(`SELECT * FROM lifecycle_jobs ${where} ORDER BY created_at DESC, id DESC LIMIT ?`, ...params, limit).map(lifecycleJobFromRow);
}

export function openLifecycleJobs(db: SqliteDb, agentId: string): LifecycleJob[] {
  return db.all(`SELECT * FROM lifecycle_jobs WHERE agent_id = ? AND ${OPEN_STATES_SQL} ORDER BY created_at, id`, agentId).map(lifecycleJobFromRow);
}

export function recordLifecycleSignature(db: SqliteDb, id: string, signature: LifecycleSignature, now: number): LifecycleJob | undefined {
  const row = db.get(
    "UPDATE lifecycle_jobs SET state = 'signed', raw_transaction = ?, transaction_hash = ?, signed_audit_seq = ?, updated_at = ? WHERE id = ? AND state = 'planned' RETURNING *",
    signature.rawTransaction, signature.transactionHash, signature.signedAuditSeq, now, id,
  );
  return row ? lifecycleJobFromRow(row) : undefined;
}

export function recordLifecycleBroadcast(db: SqliteDb, id: string, now: number): LifecycleJob | undefined {
  const row = db.get(
    "UPDATE lifecycle_jobs SET broadcasts = broadcasts + 1, state = CASE WHEN state = 'signed' THEN 'submitted' ELSE state END, submitted_at = coalesce(submitted_at, ?1), updated_at = ?1 WHERE id = ?2 AND state IN ('signed', 'submitted') RETURNING *",
    now, id,
  );
  return row ? lifecycleJobFromRow(row) : undefined;
}

export function finishLifecycleJob(db: SqliteDb, id: string, finish: LifecycleFinish, now: number, auditSeq: number): LifecycleJob {
  const row = db.get(
    "UPDATE lifecycle_jobs SET state = ?, block_number = ?, gas_used = ?, failure = ?, finished_at = ?, updated_at = ?, finish_audit_seq = ? WHERE id = ? AND state IN ('planned', 'signed', 'submitted') RETURNING *",
    finish.state, finish.blockNumber?.toString() ?? null, finish.gasUsed?.toString() ?? null, finish.failure ?? null, now, now, auditSeq, id,
  );
  if (!row) throw new AirlockError('conflict', 'The lifecycle job is not open.');
  return lifecycleJobFromRow(row);
}
