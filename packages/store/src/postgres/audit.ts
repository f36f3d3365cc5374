import { GENESIS_HASH, type AuditCheckpoint, type AuditEntry, type AuditEntryInput, type AuditQuery } from '@airlock/core';
import { buildAuditEntry } from '../shared/audit-entry.ts';
import { auditEntryFromRow, checkpointFromRow } from '../shared/rows.ts';
import { clampLimit, MAX_READ_PAGE, toInt } from '../shared/values.ts';
import type { Q } from './pg-query.ts';

export async function auditHead(q: Q): Promise<{ seq: number; hash: string }> {
  const [row] = await q('SELECT seq, hash FROM audit_entries ORDER BY seq DESC LIMIT 1');
  return row ? { seq: toInt(row.seq), hash: String(row.hash) } : { seq: 0, hash: GENESIS_HASH };
}

/** Must run inside the signing transaction (its advisory lock serialises head read + insert). */
export async function appendAudit(q: Q, input: AuditEntryInput): Promise<AuditEntry> {
  const { entry, dataJson } = buildAuditEntry(await auditHead(q), input);
  await q(
    `INSERT INTO audit_entries (seq, at, type, actor, agent_id, session_id, action, decision, prev_hash, hash, data, hash_version)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
    [entry.seq, entry.at, entry.type, entry.actor, entry.agentId ?? null, entry.sessionId ?? null,
      entry.action ?? null, entry.decision ?? null, entry.prevHash, entry.hash, dataJson, entry.hashVersion],
  );
  return entry;
}

export async function queryAudit(q: Q, query: AuditQuery): Promise<AuditEntry[]> {
  const where: string[] = [];
  const params: unknown[] = [];
  const add = (clause: string, value: unknown) => {
    params.push(value);
    where.push(clause.replace('?', `$${params.length}`));
  };
  if (query.agentId !== undefined) add('agent_id = ?', query.agentId);
  if (query.decision !== undefined) add('decision = ?', query.decision);
  if (query.type !== undefined) add('type = ?', query.type);
  if (query.fromMs !== undefined) add('at >= ?', query.fromMs);
  if (query.toMs !== undefined) add('at <= ?', query.toMs);
  if (query.afterSeq !== undefined) add('seq > ?', query.afterSeq);
  params.push(clampLimit(query.limit));
  const sql = `SELECT * FROM audit_entries ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY seq LIMIT $${params.length}`;
  return (await q(sql, params)).map(auditEntryFromRow);
}

export async function readAudit(q: Q, fromSeq: number, limit: number): Promise<AuditEntry[]> {
  const rows = await q('SELECT * FROM audit_entries WHERE seq >= $1 ORDER BY seq LIMIT $2', [fromSeq, clampLimit(limit, limit, MAX_READ_PAGE)]);
  return rows.map(auditEntryFromRow);
}

export async function listCheckpoints(q: Q): Promise<AuditCheckpoint[]> {
  return (await q('SELECT * FROM audit_checkpoints ORDER BY seq')).map(checkpointFromRow);
}

export async function lastCheckpoint(q: Q): Promise<AuditCheckpoint | undefined> {
  const [row] = await q('SELECT * FROM audit_checkpoints ORDER BY seq DESC LIMIT 1');
  return row ? checkpointFromRow(row) : undefined;
}

export async function appendCheckpoint(q: Q, cp: AuditCheckpoint): Promise<void> {
  await q('INSERT INTO audit_checkpoints (seq, head_hash, at, public_key, signature) VALUES ($1, $2, $3, $4, $5)', [
    cp.seq, cp.headHash, cp.at, cp.publicKey, cp.signature,
  ]);
}
