import { settleApprovalNonces } from './nonces.ts';
import { AirlockError, canonicalJson, type ApprovalRecord, type ApprovalState, type ApprovalVote, type Approver, type ApproverStatus, type LedgerWrite, type QuorumRequirement } from '@airlock/core';
import { mergeLedgerWrites } from '../shared/ledger-writes.ts';
import { approvalFromRow, approverFromRow, withVotes } from '../shared/rows.ts';
import { clampLimit, toAmount, toInt } from '../shared/values.ts';
import { appendLedger, lockForWrites, type DeferredAppend } from './ledger.ts';
import type { TxLocks } from './tx-locks.ts';
import type { Q } from './pg-query.ts';

export async function getApproval(q: Q, id: string, forUpdate = false): Promise<ApprovalRecord | undefined> {
  const [row] = await q(`SELECT * FROM approvals WHERE id = $1${forUpdate ? ' FOR UPDATE' : ''}`, [id]);
  return row && (await attachVotes(q, [approvalFromRow(row)]))[0];
}

/** One query for the votes of every quorum approval listed. */
async function attachVotes(q: Q, approvals: ApprovalRecord[]): Promise<ApprovalRecord[]> {
  const ids = approvals.filter((a) => a.quorum).map((a) => a.id);
  if (ids.length === 0) return approvals;
  return withVotes(approvals, await q('SELECT * FROM approval_votes WHERE approval_id = ANY($1::text[]) ORDER BY audit_seq', [ids]));
}

export async function listApprovals(q: Q, filter: { state?: ApprovalState; agentId?: string; limit?: number }): Promise<ApprovalRecord[]> {
  const rows = await q(
    `SELECT * FROM approvals WHERE ($1::text IS NULL OR state = $1) AND ($2::text IS NULL OR agent_id = $2)
     ORDER BY created_at DESC, id LIMIT $3`,
    [filter.state ?? null, filter.agentId ?? null, clampLimit(filter.limit)],
  );
  return attachVotes(q, rows.map(approvalFromRow));
}

/** Records a pending approval and holds its budget (counted by windowTotals until decided). */
export async function holdForApproval(q: Q, locks: TxLocks, approval: ApprovalRecord, writes: LedgerWrite[]): Promise<void> {
  if (approval.state !== 'pending') throw new AirlockError('invalid_request', 'a new approval must be pending');
  const merged = mergeLedgerWrites(writes);
  await lockForWrites(locks, merged);
  await q(
    `WITH a AS (
       INSERT INTO approvals (id, agent_id, session_id, audit_seq, action, request, digest, summary, state, created_at, expires_at, quorum)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9, $10, $15) RETURNING id
     )
     INSERT INTO approval_holds (approval_id, series, asset, amount, count, at, state)
     SELECT a.id, w.series, w.asset, w.amount, w.count, $9, 'held'
     FROM a, unnest($11::text[], $12::text[], $13::numeric[], $14::bigint[]) AS w(series, asset, amount, count)`,
    [approval.id, approval.agentId, approval.sessionId, approval.auditSeq, approval.action,
      canonicalJson(approval.request ?? null), approval.digest, canonicalJson(approval.summary ?? null),
      approval.createdAt, approval.expiresAt,
      merged.map((w) => w.series), merged.map((w) => w.asset), merged.map((w) => w.amount.toString()), merged.map((w) => w.count),
      approval.quorum ? canonicalJson(approval.quorum) : null],
  );
}

/** The holds a pending approval still has (StoreTx.approvalHolds). */
export async function approvalHolds(q: Q, id: string): Promise<LedgerWrite[]> {
  const rows = await q("SELECT series, asset, amount::text AS amount, count FROM approval_holds WHERE approval_id = $1 AND state = 'held'", [id]);
  return mergeLedgerWrites(rows.map((h) => ({ series: String(h.series), asset: String(h.asset), amount: toAmount(h.amount), count: toInt(h.count) })));
}

/**
 * pending -> approved | denied | expired. Approval converts the holds into ledger entries at `now`
 * (never earlier, so a window can only over-count); denial and expiry release them.
 */
export async function decideApproval(q: Q, locks: TxLocks, id: string, state: 'approved' | 'denied' | 'expired', by: string, now: number, auditSeq: number, convertHolds = true, deferTo?: DeferredAppend): Promise<ApprovalRecord> {
  const current = await getApproval(q, id, true);
  if (!current) throw new AirlockError('not_found', 'no such approval');
  if (current.state !== 'pending') throw new AirlockError('approval_not_pending', `the approval is already ${current.state}`);
  // An approval past its deadline can only expire: approving it late would sign what nobody is watching.
  if (state === 'approved' && now >= current.expiresAt) throw new AirlockError('approval_not_pending', 'the approval has expired');
  const holds = await q(
    `UPDATE approval_holds SET state = $2 WHERE approval_id = $1 AND state = 'held' RETURNING series, asset, amount::text AS amount, count`,
    [id, state === 'approved' && convertHolds ? 'converted' : 'released'],
  );
  if (state === 'approved' && convertHolds) {
    await appendLedger(q, locks, holds.map((h) => ({ series: String(h.series), asset: String(h.asset), amount: toAmount(h.amount), count: toInt(h.count) })), now, auditSeq, deferTo);
  }
  const [row] = await q('UPDATE approvals SET state = $2, decided_at = $3, decided_by = $4 WHERE id = $1 RETURNING *', [id, state, now, by]);
  await settleApprovalNonces(q, id, state === 'approved');
  return (await attachVotes(q, [approvalFromRow(row!)]))[0]!;
}

export async function raiseApprovalQuorum(q: Q, id: string, quorum: QuorumRequirement[]): Promise<ApprovalRecord> {
  const current = await getApproval(q, id, true);
  if (!current) throw new AirlockError('not_found', 'no such approval');
  if (current.state !== 'pending') throw new AirlockError('approval_not_pending', `the approval is already ${current.state}`);
  const [row] = await q('UPDATE approvals SET quorum = $2 WHERE id = $1 RETURNING *', [id, canonicalJson(quorum)]);
  return (await attachVotes(q, [approvalFromRow(row!)]))[0]!;
}

export async function setApprovalResult(q: Q, id: string, result: unknown): Promise<void> {
  const rows = await q('UPDATE approvals SET result = $2 WHERE id = $1 RETURNING id', [id, canonicalJson(result ?? null)]);
  if (rows.length === 0) throw new AirlockError('not_found', 'no such approval');
}

/**
 * StoreTx.overdueApprovals: each row returned is locked for this transaction and still pending. SKIP LOCKED: a row
 * another transaction holds (another instance's expiry pass, an approve, a vote) is left to it or to the next pass;
 * one decided and committed meanwhile fails the re-checked WHERE. Unlocked, two instances' passes both listed the
 * same rows and the slower one met `approval_not_pending` in decideApproval: its whole pass rolled back and the
 * approve / deny / vote that ran it first was refused with another approval's code (found by review).
 */
export async function overdueApprovals(q: Q, now: number, limit: number): Promise<ApprovalRecord[]> {
  const rows = await q(`SELECT * FROM approvals WHERE state = 'pending' AND expires_at <= $1 ORDER BY expires_at, id LIMIT $2 FOR UPDATE SKIP LOCKED`, [now, clampLimit(limit)]);
  return rows.map(approvalFromRow);
}

export async function recordApprovalVote(q: Q, v: ApprovalVote): Promise<void> {
  await q(
    `INSERT INTO approval_votes (approval_id, approver_id, approver_name, group_names, decision, at, signature, comment, audit_seq, created_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
    [v.approvalId, v.approverId, v.approver, canonicalJson(v.groups), v.decision, v.at, v.signature, v.comment ?? null, v.auditSeq, v.createdAt],
  );
}

export async function getApprover(q: Q, idOrName: string): Promise<Approver | undefined> {
  const [row] = await q('SELECT * FROM approvers WHERE id = $1 OR name = $1', [idOrName]);
  return row && approverFromRow(row);
}

export async function listApprovers(q: Q): Promise<Approver[]> {
  return (await q('SELECT * FROM approvers ORDER BY name')).map(approverFromRow);
}

export async function createApprover(q: Q, a: Approver): Promise<void> {
  await q(
    'INSERT INTO approvers (id, name, public_key, group_names, agent_ids, status, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)',
    [a.id, a.name, a.publicKey, canonicalJson(a.groups), canonicalJson(a.agents), a.status, a.createdAt, a.updatedAt],
  );
}

export async function setApproverStatus(q: Q, id: string, status: ApproverStatus, now: number): Promise<Approver> {
  const [row] = await q('UPDATE approvers SET status = $2, updated_at = $3 WHERE id = $1 RETURNING *', [id, status, now]);
  if (!row) throw new AirlockError('not_found', 'no such approver');
  return approverFromRow(row);
}
