import { settleApprovalNonces } from './nonces.ts';
import { AirlockError, canonicalJson, type ApprovalRecord, type ApprovalState, type ApprovalVote, type Approver, type ApproverStatus, type LedgerWrite, type QuorumRequirement } from '@airlock/core';
import { mergeLedgerWrites } from '../shared/ledger-writes.ts';
import { approvalFromRow, approverFromRow, withVotes } from '../shared/rows.ts';
import { clampLimit, toAmount, toInt } from '../shared/values.ts';
import type { SQLInputValue } from 'node:sqlite';
import { appendLedger } from './ledger.ts';
import type { SqliteDb } from './sqlite-db.ts';

export function getApproval(db: SqliteDb, id: string): ApprovalRecord | undefined {
  const row = db.get('SELECT * FROM approvals WHERE id = ?', id);
  if (!row) return undefined;
  const approval = approvalFromRow(row);
  return approval.quorum ? withVotes([approval], db.all('SELECT * FROM approval_votes WHERE approval_id = ? ORDER BY audit_seq', id))[0] : approval;
}

/** One query for the votes of every quorum approval listed. */
function attachVotes(db: SqliteDb, approvals: ApprovalRecord[]): ApprovalRecord[] {
  const ids = approvals.filter((a) => a.quorum).map((a) => a.id);
  if (ids.length === 0) return approvals;
  const rows = db.all(`SELECT v.* FROM approval_votes v JOIN json_each(?) j ON v.approval_id = j.value ORDER BY v.audit_seq`, JSON.stringify(ids));
  return withVotes(approvals, rows);
}

export function listApprovals(db: SqliteDb, filter: { state?: ApprovalState; agentId?: string; limit?: number }): ApprovalRecord[] {
  const where: string[] = [];
  const params: SQLInputValue[] = [];
  if (filter.state !== undefined) (where.push('state = ?'), params.push(filter.state));
  if (filter.agentId !== undefined) (where.push('agent_id = ?'), params.push(filter.agentId));
  params.push(clampLimit(filter.limit));
  const sql = `SELECT * FROM approvals ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at DESC, id LIMIT ?`;
  return attachVotes(db, db.all(sql, ...params).map(approvalFromRow));
}

/** Records a pending approval and holds its budget (counted by windowTotals until decided). */
export function holdForApproval(db: SqliteDb, approval: ApprovalRecord, writes: LedgerWrite[]): void {
  if (approval.state !== 'pending') throw new AirlockError('invalid_request', 'a new approval must be pending');
  db.run(
    `INSERT INTO approvals (id, agent_id, session_id, audit_seq, action, request, digest, summary, state, created_at, expires_at, quorum)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?)`,
    approval.id, approval.agentId, approval.sessionId, approval.auditSeq, approval.action,
    canonicalJson(approval.request ?? null), approval.digest, canonicalJson(approval.summary ?? null),
    approval.createdAt, approval.expiresAt, approval.quorum ? canonicalJson(approval.quorum) : null,
  );
  for (const w of mergeLedgerWrites(writes)) {
    db.run(
      `INSERT INTO approval_holds (approval_id, series, asset, amount, count, at, state) VALUES (?, ?, ?, ?, ?, ?, 'held')`,
      approval.id, w.series, w.asset, w.amount.toString(), w.count, approval.createdAt,
    );
  }
}

/** The holds a pending approval still has (StoreTx.approvalHolds). */
export function approvalHolds(db: SqliteDb, id: string): LedgerWrite[] {
  const rows = db.all("SELECT series, asset, amount, count FROM approval_holds WHERE approval_id = ? AND state = 'held'", id);
  return mergeLedgerWrites(rows.map((h) => ({ series: String(h.series), asset: String(h.asset), amount: toAmount(h.amount), count: toInt(h.count) })));
}

/**
 * pending -> approved | denied | expired. Approval converts the holds into ledger entries at `now`
 * (never earlier, so a window can only over-count); denial and expiry release them.
 */
export function decideApproval(db: SqliteDb, id: string, state: 'approved' | 'denied' | 'expired', by: string, now: number, auditSeq: number, convertHolds = true): ApprovalRecord {
  const current = getApproval(db, id);
  if (!current) throw new AirlockError('not_found', 'no such approval');
  if (current.state !== 'pending') throw new AirlockError('approval_not_pending', `the approval is already ${current.state}`);
  // An approval past its deadline can only expire: approving it late would sign what nobody is watching.
  if (state === 'approved' && now >= current.expiresAt) throw new AirlockError('approval_not_pending', 'the approval has expired');
  const holds = db.all("SELECT series, asset, amount, count FROM approval_holds WHERE approval_id = ? AND state = 'held'", id);
  if (state === 'approved' && convertHolds) {
    appendLedger(db, holds.map((h) => ({ series: String(h.series), asset: String(h.asset), amount: toAmount(h.amount), count: toInt(h.count) })), now, auditSeq);
  }
  db.run("UPDATE approval_holds SET state = ? WHERE approval_id = ? AND state = 'held'", state === 'approved' && convertHolds ? 'converted' : 'released', id);
  db.run('UPDATE approvals SET state = ?, decided_at = ?, decided_by = ? WHERE id = ?', state, now, by, id);
  settleApprovalNonces(db, id, state === 'approved');
  return getApproval(db, id)!;
}

export function raiseApprovalQuorum(db: SqliteDb, id: string, quorum: QuorumRequirement[]): ApprovalRecord {
  const current = getApproval(db, id);
  if (!current) throw new AirlockError('not_found', 'no such approval');
  if (current.state !== 'pending') throw new AirlockError('approval_not_pending', `the approval is already ${current.state}`);
  db.run('UPDATE approvals SET quorum = ? WHERE id = ?', canonicalJson(quorum), id);
  return getApproval(db, id)!;
}

export function setApprovalResult(db: SqliteDb, id: string, result: unknown): void {
  if (db.run('UPDATE approvals SET result = ? WHERE id = ?', canonicalJson(result ?? null), id) === 0) {
    throw new AirlockError('not_found', 'no such approval');
  }
}

export function overdueApprovals(db: SqliteDb, now: number, limit: number): ApprovalRecord[] {
  return db
    .all("SELECT * FROM approvals WHERE state = 'pending' AND expires_at <= ? ORDER BY expires_at, id LIMIT ?", now, clampLimit(limit))
    .map(approvalFromRow);
}

export function recordApprovalVote(db: SqliteDb, v: ApprovalVote): void {
  db.run(
    `INSERT INTO approval_votes (approval_id, approver_id, approver_name, group_names, decision, at, signature, comment, audit_seq, created_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    v.approvalId, v.approverId, v.approver, canonicalJson(v.groups), v.decision, v.at, v.signature, v.comment ?? null, v.auditSeq, v.createdAt,
  );
}

export function getApprover(db: SqliteDb, idOrName: string): Approver | undefined {
  const row = db.get('SELECT * FROM approvers WHERE id = ? OR name = ?', idOrName, idOrName);
  return row && approverFromRow(row);
}

export function listApprovers(db: SqliteDb): Approver[] {
  return db.all('SELECT * FROM approvers ORDER BY name').map(approverFromRow);
}

export function createApprover(db: SqliteDb, a: Approver): void {
  db.run(
    `INSERT INTO approvers (id, name, public_key, group_names, agent_ids, status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    a.id, a.name, a.publicKey, canonicalJson(a.groups), canonicalJson(a.agents), a.status, a.createdAt, a.updatedAt,
  );
}

export function setApproverStatus(db: SqliteDb, id: string, status: ApproverStatus, now: number): Approver {
  if (db.run('UPDATE approvers SET status = ?, updated_at = ? WHERE id = ?', status, now, id) === 0) throw new AirlockError('not_found', 'no such approver');
  return getApprover(db, id)!;
}
