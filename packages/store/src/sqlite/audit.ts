import { GENESIS_HASH, type AuditCheckpoint, type AuditEntry, type AuditEntryInput, type AuditQuery } from '@airlock/core';
import { buildAuditEntry } from '../shared/audit-entry.ts';
import { auditEntryFromRow, checkpointFromRow } from '../shared/rows.ts';
import { clampLimit, MAX_READ_PAGE, toInt } from '../shared/values.ts';
import type { SQLInputValue } from 'node:sqlite';
import type { SqliteDb } from './sqlite-db.ts';

export function auditHead(db: SqliteDb): { seq: number; hash: string } {
  const row = db.get('SELECT seq, hash FROM audit_entries ORDER BY seq DESC LIMIT 1');
  return row ? { seq: toInt(row.seq), hash: String(row.hash) } : { seq: 0, hash: GENESIS_HASH };
}

/** Must run inside the write transaction: reading the head and inserting after it is one step. */
export function appendAudit(db: SqliteDb, input: AuditEntryInput): AuditEntry {
  const { entry, dataJson } = buildAuditEntry(auditHead(db), input);
  db.run(
    `INSERT INTO audit_entries (seq, at, type, actor, agent_id, session_id, action, decision, prev_hash, hash, data, hash_version)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    entry.seq, entry.at, entry.type, entry.actor, entry.agentId ?? null, entry.sessionId ?? null,
    entry.action ?? null, entry.decision ?? null, entry.prevHash, entry.hash, dataJson, entry.hashVersion!,
  );
  return entry;
}

export function queryAudit(db: SqliteDb, query: AuditQuery): AuditEntry[] {
  const where: string[] = [];
  const params: SQLInputValue[] = [];
  if (query.agentId !== undefined) (where.push('agent_id = ?'), params.push(query.agentId));
  if (query.decision !== undefined) (where.push('decision = ?'), params.push(query.decision));
  if (query.type !== undefined) (where.push('type = ?'), params.push(query.type));
  if (query.fromMs !== undefined) (where.push('at >= ?'), params.push(query.fromMs));
  if (query.toMs !== undefined) (where.push('at <= ?'), params.push(query.toMs));
  if (query.afterSeq !== undefined) (where.push('seq > ?'), params.push(query.afterSeq));
  params.push(clampLimit(query.limit));
  const sql = `SELECT * FROM audit_entries ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY seq LIMIT ?`;
  return db.all(sql, ...params).map(auditEntryFromRow);
}

export function readAudit(db: SqliteDb, fromSeq: number, limit: number): AuditEntry[] {
  return db.all('SELECT * FROM audit_entries WHERE seq >= ? ORDER BY seq LIMIT ?', fromSeq, clampLimit(limit, limit, MAX_READ_PAGE)).map(auditEntryFromRow);
}

export function listCheckpoints(db: SqliteDb): AuditCheckpoint[] {
  return db.all('SELECT * FROM audit_checkpoints ORDER BY seq').map(checkpointFromRow);
}

export function lastCheckpoint(db: SqliteDb): AuditCheckpoint | undefined {
  const row = db.get('SELECT * FROM audit_checkpoints ORDER BY seq DESC LIMIT 1');
  return row ? checkpointFromRow(row) : undefined;
}

export function appendCheckpoint(db: SqliteDb, cp: AuditCheckpoint): void {
  db.run(
    'INSERT INTO audit_checkpoints (seq, head_hash, at, public_key, signature) VALUES (?, ?, ?, ?, ?)',
    cp.seq, cp.headHash, cp.at, cp.publicKey, cp.signature,
  );
}
