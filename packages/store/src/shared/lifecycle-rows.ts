import { AirlockError, OPEN_LIFECYCLE_STATES, type LifecycleJob, type LifecycleJobFilter, type LifecycleJobState } from '@airlock/core';
import type { Row } from './rows.ts';
import { clampLimit, toAmount, toInt, toOptionalInt, toOptionalString } from './values.ts';

// Lifecycle jobs (schema: SQLite 017 + 021, PostgreSQL 018 + 022), the same columns in both dialects.

export const LIFECYCLE_JOB_COLUMNS = [
  'id', 'agent_id', 'key_index', 'chain', 'from_address', 'nonce', 'origin', 'kind', 'purpose', 'asset', 'amount', 'recipient',
  'to_address', 'max_fee', 'raw_transaction', 'transaction_hash', 'summary', 'state', 'audit_seq', 'signed_audit_seq', 'broadcasts', 'created_at', 'updated_at',
] as const;

/** Insert values in LIFECYCLE_JOB_COLUMNS order; amounts as decimal text (both dialects take it). */
export function lifecycleJobValues(j: LifecycleJob): (string | number | null)[] {
  return [
    j.id, j.agentId, j.keyIndex, j.chain, j.from, j.nonce, j.origin, j.kind, j.purpose, j.asset ?? null, j.amount.toString(), j.recipient ?? null,
    j.to, j.maxFee.toString(), j.rawTransaction ?? null, j.transactionHash ?? null, j.summary, j.state, j.auditSeq, j.signedAuditSeq ?? null, j.broadcasts, j.createdAt, j.updatedAt,
  ];
}

export function lifecycleJobFromRow(r: Row): LifecycleJob {
  const asset = toOptionalString(r.asset);
  const recipient = toOptionalString(r.recipient);
  const submittedAt = toOptionalInt(r.submitted_at);
  const finishedAt = toOptionalInt(r.finished_at);
  const failure = toOptionalString(r.failure);
  const finishAuditSeq = toOptionalInt(r.finish_audit_seq);
  const rawTransaction = toOptionalString(r.raw_transaction);
  const transactionHash = toOptionalString(r.transaction_hash);
  const signedAuditSeq = toOptionalInt(r.signed_audit_seq);
  return {
    id: String(r.id), agentId: String(r.agent_id), keyIndex: toInt(r.key_index), chain: String(r.chain), from: String(r.from_address), nonce: toInt(r.nonce),
    origin: String(r.origin) as LifecycleJob['origin'], kind: String(r.kind) as LifecycleJob['kind'], purpose: String(r.purpose),
    ...(asset !== undefined ? { asset } : {}),
    amount: toAmount(r.amount),
    ...(recipient !== undefined ? { recipient } : {}),
    to: String(r.to_address), maxFee: toAmount(r.max_fee),
    ...(rawTransaction !== undefined ? { rawTransaction } : {}),
    ...(transactionHash !== undefined ? { transactionHash } : {}),
    summary: String(r.summary), state: String(r.state) as LifecycleJobState, auditSeq: toInt(r.audit_seq),
    ...(signedAuditSeq !== undefined ? { signedAuditSeq } : {}),
    broadcasts: toInt(r.broadcasts),
    createdAt: toInt(r.created_at), updatedAt: toInt(r.updated_at),
    ...(submittedAt !== undefined ? { submittedAt } : {}),
    ...(finishedAt !== undefined ? { finishedAt } : {}),
    ...(r.block_number !== null && r.block_number !== undefined ? { blockNumber: toAmount(r.block_number) } : {}),
    ...(r.gas_used !== null && r.gas_used !== undefined ? { gasUsed: toAmount(r.gas_used) } : {}),
    ...(failure !== undefined ? { failure } : {}),
    ...(finishAuditSeq !== undefined ? { finishAuditSeq } : {}),
  };
}

/** The open states (OPEN_LIFECYCLE_STATES) as SQL; the partial indexes of SQLite 021 / PostgreSQL 022 name the same list. */
export const OPEN_STATES_SQL = `state IN (${OPEN_LIFECYCLE_STATES.map((s) => `'${s}'`).join(', ')})`;

/** WHERE clause and parameters of a job listing, with `$n` or `?` placeholders. */
export function lifecycleJobWhere(filter: LifecycleJobFilter, placeholder: (i: number) => string): { where: string; params: (string | number)[]; limit: number } {
  const clauses: string[] = [];
  const params: (string | number)[] = [];
  if (filter.agentId !== undefined) {
    params.push(filter.agentId);
    clauses.push(`agent_id = ${placeholder(params.length)}`);
  }
  if (filter.state !== undefined) {
    params.push(filter.state);
    clauses.push(`state = ${placeholder(params.length)}`);
  }
  if (filter.open) clauses.push(OPEN_STATES_SQL);
  return { where: clauses.length ? `WHERE ${clauses.join(' AND ')}` : '', params, limit: clampLimit(filter.limit) };
}

/** The unique index of open sweeps answered as the lifecycle code (the caller saw `conflict`). */
export function openSweepConflict(e: unknown): unknown {
  if (e instanceof AirlockError && e.code === 'conflict') {
    return new AirlockError('lifecycle_sweep_open', 'A sweep of this agent, key index and asset is already open (planned, signed or submitted).', { cause: e });
  }
  return e;
}
