import type { AuditCheckpoint, AuditEntry, AuditEntryInput, AuditEntryOrigin, AuditQuery, NodeId, SignedTreeHead, StoredAuditHead, TreeNode, VerifiableEntry } from '@airlock/core';
import { buildAuditEntry } from '../shared/audit-entry.ts';
import { auditEntryFromRow, auditLeafFromRow, checkpointFromRow, treeHeadFromRow } from '../shared/rows.ts';
import { clampLimit, MAX_READ_PAGE, toInt, toOptionalInt } from '../shared/values.ts';
import type { Q } from './pg-query.ts';

const EMPTY_HEAD = { seq: 0, hash: '0'.repeat(64), treeSize: 0 };

/** The head is the last leaf: on PostgreSQL `seq` is an identifier (from a sequence), `leaf_index` the order. */
export async function auditHead(q: Q): Promise<StoredAuditHead> {
  const [row] = await q('SELECT seq, hash, leaf_index FROM audit_entries ORDER BY leaf_index DESC NULLS LAST LIMIT 1');
  return row ? { seq: toInt(row.seq), hash: String(row.hash), treeSize: (toOptionalInt(row.leaf_index) ?? -1) + 1 } : EMPTY_HEAD;
}

/**
 * The first half of an append, inside a request: the entry's `seq` comes from a sequence (no lock, so
 * instances never wait for each other here) and its leaf is built. It is written, and gets its leaf index,
 * when its batch commits (`insertAuditEntries`). A seq drawn by a request that rolls back is never used, so
 * seqs may have gaps; the leaf index never does.
 */
export async function prepareAuditEntry(q: Q, input: AuditEntryInput, seqs?: SeqPool): Promise<AuditEntry> {
  // A batch draws one seq per request with its BEGIN (same round trip); an entry beyond those draws its own.
  // (Drawing a block per instance would save as much but leave a gap at every restart and after every
  // short-lived store such as `airlock init`'s; a batch leaves one only where a request appended nothing.)
  const drawn = seqs?.take();
  if (drawn !== undefined) return buildAuditEntry(drawn, undefined, input);
  const [row] = await q("SELECT nextval('audit_entry_seq') AS seq");
  return buildAuditEntry(toInt(row!.seq), undefined, input);
}

/** Audit seqs drawn for one batch, handed out in order (ascending, as appended). */
export class SeqPool {
  private readonly seqs: number[];
  private next = 0;
  constructor(seqs: number[]) {
    this.seqs = seqs;
  }
  take(): number | undefined {
    return this.next < this.seqs.length ? this.seqs[this.next++] : undefined;
  }
}

/** Simple-protocol SQL that draws `n` audit seqs (appended to the batch's BEGIN). */
export const drawSeqsSql = (n: number) => `SELECT nextval('audit_entry_seq') AS seq FROM generate_series(1, ${Math.max(0, Math.trunc(n))})`;

/**
 * The second half, once per batch, last before COMMIT: one statement takes the next leaf indexes from the
 * counter row and inserts the batch's entries in the order they were appended. The counter's row lock is
 * the only thing instances serialise on for the audit log, and only from this statement to COMMIT (the
 * ledger insert goes with it in one round trip, COMMIT after it answers: postgres-store.ts); the
 * lock is also what keeps the visible leaves a gap-free prefix (a later batch cannot take indexes before an
 * earlier one commits or rolls back, and a rollback returns its indexes).
 */
const INSERT_ENTRIES = `
  WITH c AS (UPDATE audit_leaf_counter SET next_leaf = next_leaf + $11 RETURNING next_leaf - $11 AS first)
  INSERT INTO audit_entries (seq, at, type, actor, agent_id, session_id, action, decision, hash, hash_version, leaf_index, leaf)
  SELECT e.seq, e.at, e.type, e.actor, e.agent_id, e.session_id, e.action, e.decision, e.hash, e.hash_version, c.first + e.ord - 1, e.leaf
  FROM c, unnest($1::int8[], $2::int8[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $12::int2[])
    WITH ORDINALITY AS e(seq, at, type, actor, agent_id, session_id, action, decision, hash, leaf, hash_version, ord)
  RETURNING seq, leaf_index`;

export async function insertAuditEntries(q: Q, entries: readonly AuditEntry[]): Promise<void> {
  if (entries.length === 0) return;
  const rows = await q(INSERT_ENTRIES, [
    entries.map((e) => e.seq), entries.map((e) => e.at), entries.map((e) => e.type), entries.map((e) => e.actor),
    entries.map((e) => e.agentId ?? null), entries.map((e) => e.sessionId ?? null), entries.map((e) => e.action ?? null),
    entries.map((e) => e.decision ?? null), entries.map((e) => e.hash), entries.map((e) => e.leaf!), entries.length,
    entries.map((e) => e.hashVersion),
  ]);
  const leafBySeq = new Map(rows.map((r) => [toInt(r.seq), toInt(r.leaf_index)]));
  // The entries handed out by prepareAuditEntry learn their place before anyone is answered (receipts).
  for (const e of entries) e.leafIndex = leafBySeq.get(e.seq)!;
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
  // Pages follow the log's order (leaf index): seqs are not in commit order across batches, and a reader
  // paging by seq could step over an entry that commits after it read a larger seq.
  // A seq that is no entry's (a gap, or a cursor computed by arithmetic) falls back to the last leaf of a lower seq.
  if (query.afterSeq !== undefined) {
    params.push(query.afterSeq);
    const n = `$${params.length}`;
    where.push(`leaf_index > COALESCE((SELECT a.leaf_index FROM audit_entries a WHERE a.seq = ${n}), (SELECT max(a.leaf_index) FROM audit_entries a WHERE a.seq < ${n}), -1)`);
  }
  // Only rows in the tree (auditEntriesOutsideTree).
  where.push('leaf_index >= 0');
  params.push(clampLimit(query.limit));
  const sql = `SELECT * FROM audit_entries WHERE ${where.join(' AND ')} ORDER BY leaf_index ${query.newestFirst ? 'DESC' : 'ASC'} LIMIT $${params.length}`;
  return (await q(sql, params)).map(auditEntryFromRow);
}

export async function readAudit(q: Q, fromSeq: number, limit: number): Promise<AuditEntry[]> {
  const rows = await q('SELECT * FROM audit_entries WHERE seq >= $1 AND leaf_index >= 0 ORDER BY seq LIMIT $2', [fromSeq, clampLimit(limit, limit, MAX_READ_PAGE)]);
  return rows.map(auditEntryFromRow);
}

/** StoreTx.auditEntryOrigin (committed entries only: a batch writes its entries at its commit). */
export async function auditEntryOrigin(q: Q, seq: number): Promise<AuditEntryOrigin | undefined> {
  const [row] = await q('SELECT session_id, decision, at FROM audit_entries WHERE seq = $1', [seq]);
  if (!row) return undefined;
  return { at: toInt(row.at), ...(row.session_id != null ? { sessionId: String(row.session_id) } : {}), ...(row.decision != null ? { decision: String(row.decision) } : {}) };
}

/** Rows a writer never makes: no leaf index, or a negative one (a row inserted behind the log's back). */
export async function auditEntriesOutsideTree(q: Q, limit: number): Promise<number[]> {
  const rows = await q('SELECT seq FROM audit_entries WHERE leaf_index IS NULL OR leaf_index < 0 ORDER BY seq LIMIT $1', [clampLimit(limit)]);
  return rows.map((r) => toInt(r.seq));
}

/** Store.countAuditLeaves. */
export async function countAuditLeaves(q: Q): Promise<number> {
  const [row] = await q('SELECT count(*) AS n FROM audit_entries WHERE leaf_index >= 0');
  return toInt(row!.n);
}

export async function readAuditLeaves(q: Q, fromLeafIndex: number, limit: number): Promise<VerifiableEntry[]> {
  const rows = await q('SELECT * FROM audit_entries WHERE leaf_index >= $1 ORDER BY leaf_index LIMIT $2', [fromLeafIndex, clampLimit(limit, limit, MAX_READ_PAGE)]);
  return rows.map(auditLeafFromRow);
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

export async function listTreeHeads(q: Q): Promise<SignedTreeHead[]> {
  return (await q('SELECT * FROM audit_tree_heads ORDER BY tree_size')).map(treeHeadFromRow);
}

export async function lastTreeHead(q: Q): Promise<SignedTreeHead | undefined> {
  const [row] = await q('SELECT * FROM audit_tree_heads ORDER BY tree_size DESC LIMIT 1');
  return row ? treeHeadFromRow(row) : undefined;
}

export async function getTreeHead(q: Q, treeSize: number): Promise<SignedTreeHead | undefined> {
  const [row] = await q('SELECT * FROM audit_tree_heads WHERE tree_size = $1', [treeSize]);
  return row ? treeHeadFromRow(row) : undefined;
}

export async function appendTreeHead(q: Q, head: SignedTreeHead): Promise<void> {
  await q('INSERT INTO audit_tree_heads (tree_size, root_hash, at, public_key, signature) VALUES ($1, $2, $3, $4, $5)', [
    head.treeSize, head.rootHash, head.at, head.publicKey, head.signature,
  ]);
}

export async function builtTreeSize(q: Q): Promise<number> {
  const [row] = await q('SELECT max(idx) AS last FROM audit_tree_nodes WHERE level = 0');
  return (toOptionalInt(row?.last) ?? -1) + 1;
}

/** One round trip for all the nodes a root or proof needs. */
export async function readTreeNodes(q: Q, ids: readonly NodeId[]): Promise<(Uint8Array | undefined)[]> {
  if (ids.length === 0) return [];
  const rows = await q(
    'SELECT n.level, n.idx, n.hash FROM audit_tree_nodes n JOIN unnest($1::smallint[], $2::bigint[]) AS w(level, idx) ON n.level = w.level AND n.idx = w.idx',
    [ids.map((i) => i.level), ids.map((i) => i.index)],
  );
  const found = new Map(rows.map((r) => [`${toInt(r.level)}:${toInt(r.idx)}`, new Uint8Array(r.hash as Buffer)]));
  return ids.map((id) => found.get(`${id.level}:${id.index}`));
}

/** Nodes are a function of the leaves: a node already stored (another builder got there first) is kept. */
export async function appendTreeNodes(q: Q, nodes: readonly TreeNode[], replace = false): Promise<void> {
  if (nodes.length === 0) return;
  await q(
    `INSERT INTO audit_tree_nodes (level, idx, hash) SELECT * FROM unnest($1::smallint[], $2::bigint[], $3::bytea[])
     ON CONFLICT (level, idx) ${replace ? 'DO UPDATE SET hash = excluded.hash' : 'DO NOTHING'}`,
    [nodes.map((n) => n.level), nodes.map((n) => n.index), nodes.map((n) => Buffer.from(n.hash))],
  );
}
