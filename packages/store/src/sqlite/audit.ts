import type { AuditCheckpoint, AuditEntry, AuditEntryInput, AuditEntryOrigin, AuditQuery, NodeId, SignedTreeHead, StoredAuditHead, TreeNode, VerifiableEntry } from '@airlock/core';
import { buildAuditEntry } from '../shared/audit-entry.ts';
import { auditEntryFromRow, auditLeafFromRow, checkpointFromRow, treeHeadFromRow } from '../shared/rows.ts';
import { clampLimit, MAX_READ_PAGE, toInt, toOptionalInt } from '../shared/values.ts';
import type { SQLInputValue } from 'node:sqlite';
import type { SqliteDb } from './sqlite-db.ts';

const EMPTY_HEAD = { seq: 0, hash: '0'.repeat(64), treeSize: 0 };

// The head is remembered for the rest of a write transaction once read or appended after (see
// SqliteDb.transactionMemo): appendAudit is the only writer of the table, and the transaction's write lock
// keeps every other connection out, so a batch reads it once instead of once per request.
const HEAD_KEY = 'audit-head';

export function auditHead(db: SqliteDb): StoredAuditHead {
  const memo = db.transactionMemo();
  const known = memo?.get(HEAD_KEY) as StoredAuditHead | undefined;
  if (known) return { ...known };
  const row = db.get('SELECT seq, hash, (SELECT max(leaf_index) FROM audit_entries) AS last_leaf FROM audit_entries ORDER BY seq DESC LIMIT 1');
  const head = row ? { seq: toInt(row.seq), hash: String(row.hash), treeSize: (toOptionalInt(row.last_leaf) ?? -1) + 1 } : EMPTY_HEAD;
  memo?.set(HEAD_KEY, head);
  return { ...head };
}

/** Must run inside the write transaction: reading the head and inserting after it is one step. */
export function appendAudit(db: SqliteDb, input: AuditEntryInput): AuditEntry {
  const head = auditHead(db);
  const entry = buildAuditEntry(head.seq + 1, head.treeSize, input);
  db.run(
    `INSERT INTO audit_entries (seq, at, type, actor, agent_id, session_id, action, decision, hash, hash_version, leaf_index, leaf)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    entry.seq, entry.at, entry.type, entry.actor, entry.agentId ?? null, entry.sessionId ?? null,
    entry.action ?? null, entry.decision ?? null, entry.hash, entry.hashVersion!, entry.leafIndex!, entry.leaf!,
  );
  db.transactionMemo()?.set(HEAD_KEY, { seq: entry.seq, hash: entry.hash, treeSize: entry.leafIndex! + 1 });
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
  // Only rows in the tree (auditEntriesOutsideTree). The unary + keeps SQLite from choosing the leaf_index index
  // for it (and sorting by seq afterwards): it is a check on each row the other conditions select.
  where.push('+leaf_index >= 0');
  const sql = `SELECT * FROM audit_entries WHERE ${where.join(' AND ')} ORDER BY seq ${query.newestFirst ? 'DESC' : 'ASC'} LIMIT ?`;
  return db.all(sql, ...params).map(auditEntryFromRow);
}

export function readAudit(db: SqliteDb, fromSeq: number, limit: number): AuditEntry[] {
  return db.all('SELECT * FROM audit_entries WHERE seq >= ? AND +leaf_index >= 0 ORDER BY seq LIMIT ?', fromSeq, clampLimit(limit, limit, MAX_READ_PAGE)).map(auditEntryFromRow);
}

/** StoreTx.auditEntryOrigin. */
export function auditEntryOrigin(db: SqliteDb, seq: number): AuditEntryOrigin | undefined {
  const row = db.get('SELECT session_id, decision, at FROM audit_entries WHERE seq = ?', seq);
  if (!row) return undefined;
  return { at: toInt(row.at), ...(row.session_id != null ? { sessionId: String(row.session_id) } : {}), ...(row.decision != null ? { decision: String(row.decision) } : {}) };
}

/**
 * Rows a writer never makes: no leaf index, or a negative one (a row inserted behind the log's back).
 * `+seq`: ordered by plain seq under a bound LIMIT, SQLite walked the whole table in seq order looking for
 * such a row (half a second of a million-entry `audit verify`, after its workers were done); this way it
 * looks both conditions up in the leaf_index index and sorts the few rows found.
 */
export const AUDIT_OUTSIDE_TREE_SQL = 'SELECT seq FROM audit_entries WHERE leaf_index IS NULL OR leaf_index < 0 ORDER BY +seq LIMIT ?';

export function auditEntriesOutsideTree(db: SqliteDb, limit: number): number[] {
  return db.all(AUDIT_OUTSIDE_TREE_SQL, clampLimit(limit)).map((r) => toInt(r.seq));
}

/** Store.countAuditLeaves: counted in the leaf_index index. */
export function countAuditLeaves(db: SqliteDb): number {
  return toInt(db.get('SELECT count(*) AS n FROM audit_entries WHERE leaf_index >= 0')!.n);
}

export function readAuditLeaves(db: SqliteDb, fromLeafIndex: number, limit: number): VerifiableEntry[] {
  return db.all('SELECT * FROM audit_entries WHERE leaf_index >= ? ORDER BY leaf_index LIMIT ?', fromLeafIndex, clampLimit(limit, limit, MAX_READ_PAGE)).map(auditLeafFromRow);
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

export function listTreeHeads(db: SqliteDb): SignedTreeHead[] {
  return db.all('SELECT * FROM audit_tree_heads ORDER BY tree_size').map(treeHeadFromRow);
}

export function lastTreeHead(db: SqliteDb): SignedTreeHead | undefined {
  const row = db.get('SELECT * FROM audit_tree_heads ORDER BY tree_size DESC LIMIT 1');
  return row ? treeHeadFromRow(row) : undefined;
}

export function getTreeHead(db: SqliteDb, treeSize: number): SignedTreeHead | undefined {
  const row = db.get('SELECT * FROM audit_tree_heads WHERE tree_size = ?', treeSize);
  return row ? treeHeadFromRow(row) : undefined;
}

export function appendTreeHead(db: SqliteDb, head: SignedTreeHead): void {
  db.run(
    'INSERT INTO audit_tree_heads (tree_size, root_hash, at, public_key, signature) VALUES (?, ?, ?, ?, ?)',
    head.treeSize, head.rootHash, head.at, head.publicKey, head.signature,
  );
}

/** Leaves the stored tree covers: one past the highest stored leaf node. */
export function builtTreeSize(db: SqliteDb): number {
  const row = db.get('SELECT max(idx) AS last FROM audit_tree_nodes WHERE level = 0');
  return (toOptionalInt(row?.last) ?? -1) + 1;
}

export function readTreeNodes(db: SqliteDb, ids: readonly NodeId[]): (Uint8Array | undefined)[] {
  return ids.map((id) => {
    const row = db.get('SELECT hash FROM audit_tree_nodes WHERE level = ? AND idx = ?', id.level, id.index);
    return row ? new Uint8Array(row.hash as Uint8Array) : undefined;
  });
}

/** Nodes are a function of the leaves: a node already stored (another builder got there first) is kept. */
export function appendTreeNodes(db: SqliteDb, nodes: readonly TreeNode[], replace = false): void {
  const sql = replace
    ? 'INSERT INTO audit_tree_nodes (level, idx, hash) VALUES (?, ?, ?) ON CONFLICT (level, idx) DO UPDATE SET hash = excluded.hash'
    : 'INSERT INTO audit_tree_nodes (level, idx, hash) VALUES (?, ?, ?) ON CONFLICT DO NOTHING';
  for (const n of nodes) db.run(sql, n.level, n.index, n.hash);
}
