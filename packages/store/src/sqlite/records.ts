import {
  AirlockError, canonicalJson,
  type Agent, type AgentStatus, type IdempotencyRecord, type NewAgent, type PolicyRecord, type Session, type SessionDescendantsFilter, type ChildSessionCounts,
} from '@airlock/core';
import { agentFromRow, idempotencyFromRow, policyFromRow, policyVersionFromRow, sessionFromRow, type Row } from '../shared/rows.ts';
import { clampLimit, toInt } from '../shared/values.ts';
import type { SQLInputValue } from 'node:sqlite';
import type { SqliteDb } from './sqlite-db.ts';
import { insertFirstKeys } from './agent-keys.ts';

// Hardened BIP-32 indexes are below 2^31; the counter never hands out one beyond that.
const MAX_ACCOUNT_INDEX = 2 ** 31 - 1;

// ---- meta ----

export function getMeta(db: SqliteDb, key: string): string | undefined {
  const row = db.get('SELECT value FROM meta WHERE key = ?', key);
  return row ? String(row.value) : undefined;
}

export function initMeta(db: SqliteDb, key: string, value: string): string {
  db.run('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING', key, value);
  return getMeta(db, key)!;
}

export function setMeta(db: SqliteDb, key: string, value: string): void {
  db.run('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value', key, value);
}

export function compareAndSetMeta(db: SqliteDb, key: string, expected: string, value: string): boolean {
  return db.get('UPDATE meta SET value = ? WHERE key = ? AND value = ? RETURNING key', value, key, expected) !== undefined;
}

// ---- agents ----

/** Must run inside a write transaction: the counter update and the inserts commit or vanish together. */
export async function createAgents(db: SqliteDb, agents: NewAgent[], deriveAddress: (accountIndex: number, keyIndex: number) => string | Promise<string>, now: number): Promise<Agent[]> {
  if (agents.length === 0) return [];
  const row = db.get('UPDATE account_counter SET next_index = next_index + ? WHERE id = 1 RETURNING next_index', agents.length);
  const end = toInt(row?.next_index);
  if (end - 1 > MAX_ACCOUNT_INDEX) throw new AirlockError('conflict', 'no hardened account indexes left');
  let accountIndex = end - agents.length;
  const created: Agent[] = [];
  for (const a of agents) {
    // The derivation may be async (an HSM); the write lock is held meanwhile, so indexes stay ours.
    const address = (await deriveAddress(accountIndex, 0)).toLowerCase();
    const agent: Agent = {
      id: a.id,
      name: a.name,
      accountIndex,
      keyIndex: 0,
      address,
      status: 'active',
      labels: a.labels ?? {},
      createdAt: now,
      updatedAt: now,
    };
    try {
      db.run(
        `INSERT INTO agents (id, name, account_index, key_index, address, status, labels, created_at, updated_at)
         VALUES (?, ?, ?, 0, ?, 'active', ?, ?, ?)`,
        agent.id, agent.name, agent.accountIndex, agent.address, canonicalJson(agent.labels), now, now,
      );
    } catch (e) {
      if (e instanceof AirlockError && e.code === 'conflict') {
        throw new AirlockError('conflict', 'an agent with this name or id already exists', { cause: e, details: { name: a.name } });
      }
      throw e;
    }
    created.push(agent);
    accountIndex++;
  }
  insertFirstKeys(db, created, now);
  return created;
}

export function getAgent(db: SqliteDb, idOrName: string): Agent | undefined {
  const row = db.get('SELECT * FROM agents WHERE id = ? UNION ALL SELECT * FROM agents WHERE name = ? LIMIT 1', idOrName, idOrName);
  return row && agentFromRow(row);
}

export function getAgentById(db: SqliteDb, id: string): Agent | undefined {
  const row = db.get('SELECT * FROM agents WHERE id = ?', id);
  return row && agentFromRow(row);
}

/** Ordered by account index; `after` is the id of the last agent of the previous page. */
export function listAgents(db: SqliteDb, filter: { status?: AgentStatus; limit?: number; after?: string }): Agent[] {
  const where: string[] = [];
  const params: SQLInputValue[] = [];
  if (filter.after !== undefined) {
    const cursor = db.get('SELECT account_index FROM agents WHERE id = ?', filter.after);
    if (!cursor) throw new AirlockError('not_found', 'the `after` cursor is not an agent id');
    where.push('account_index > ?');
    params.push(toInt(cursor.account_index));
  }
  if (filter.status !== undefined) (where.push('status = ?'), params.push(filter.status));
  params.push(clampLimit(filter.limit));
  const sql = `SELECT * FROM agents ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY account_index LIMIT ?`;
  return db.all(sql, ...params).map(agentFromRow);
}

/** 'frozen' is an operator's freeze (operator_frozen, schema 026): a breaker reset leaves the agent frozen. */
export function setAgentStatus(db: SqliteDb, id: string, status: AgentStatus, now: number): Agent {
  const row = db.get('UPDATE agents SET status = ?, operator_frozen = ?, updated_at = ? WHERE id = ? RETURNING *', status, status === 'frozen' ? 1 : 0, now, id);
  if (!row) throw new AirlockError('not_found', 'no such agent');
  return agentFromRow(row);
}

// ---- policies ----

/** Must run inside a write transaction, so two writers cannot both take version max + 1. */
export function putPolicy(db: SqliteDb, record: Omit<PolicyRecord, 'version'>): PolicyRecord {
  const row = db.get('SELECT COALESCE(MAX(version), 0) AS v FROM policies WHERE scope = ?', record.scope);
  const version = toInt(row?.v) + 1;
  db.run(
    'INSERT INTO policies (scope, version, hash, document, source, author, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
    record.scope, version, record.hash, canonicalJson(record.document ?? null), record.source ?? null, record.author, record.createdAt,
  );
  db.transactionMemo()?.delete(latestPolicyKey(record.scope));
  return { ...record, version };
}

const latestPolicyKey = (scope: string) => `latest-policy\u0000${scope}`;

/**
 * The latest version of a scope's policy is remembered for the rest of a write transaction (every request of
 * a batch reads the fleet's and its agent's): only this transaction can add a version meanwhile (putPolicy
 * forgets it then). The row is remembered, not the record, so no caller shares an object with another.
 */
export function getPolicy(db: SqliteDb, scope: string, version?: number): PolicyRecord | undefined {
  if (version !== undefined) {
    const row = db.get('SELECT * FROM policies WHERE scope = ? AND version = ?', scope, version);
    return row && policyFromRow(row);
  }
  const memo = db.transactionMemo();
  const key = latestPolicyKey(scope);
  let row = memo?.get(key) as Row | null | undefined;
  if (row === undefined) {
    row = db.get('SELECT * FROM policies WHERE scope = ? ORDER BY version DESC LIMIT 1', scope) ?? null;
    memo?.set(key, row);
  }
  return row === null ? undefined : policyFromRow(row);
}

export function listPolicyVersions(db: SqliteDb, scope: string): Omit<PolicyRecord, 'document'>[] {
  return db
    .all('SELECT scope, version, hash, author, created_at FROM policies WHERE scope = ? ORDER BY version DESC', scope)
    .map(policyVersionFromRow);
}

// ---- sessions ----

export function createSession(db: SqliteDb, s: Session): void {
  db.run(
    `INSERT INTO sessions (id, agent_id, token_hash, scope, label, created_at, expires_at, revoked_at, parent_id)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    s.id, s.agentId, s.tokenHash, canonicalJson(s.scope), s.label ?? null, s.createdAt, s.expiresAt, s.revokedAt ?? null, s.parentId ?? null,
  );
}

export function getSession(db: SqliteDb, id: string): Session | undefined {
  const row = db.get('SELECT * FROM sessions WHERE id = ?', id);
  return row && sessionFromRow(row);
}

/** By default only active sessions: not revoked and not expired at `now`. */
export function listSessions(db: SqliteDb, filter: { agentId?: string; includeInactive?: boolean; now: number }): Session[] {
  const where: string[] = [];
  const params: SQLInputValue[] = [];
  if (filter.agentId !== undefined) (where.push('agent_id = ?'), params.push(filter.agentId));
  if (!filter.includeInactive) (where.push('revoked_at IS NULL AND expires_at > ?'), params.push(filter.now));
  const sql = `SELECT * FROM sessions ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at, id`;
  return db.all(sql, ...params).map(sessionFromRow);
}

/**
 * Revocation happens once: revoking again returns the session unchanged. It takes every session derived from
 * this one with it, in the same statement (a descendant already revoked keeps its first revocation time).
 */
export function revokeSession(db: SqliteDb, id: string, now: number): Session {
  db.run(`WITH RECURSIVE tree(id) AS (SELECT ? UNION SELECT s.id FROM sessions s JOIN tree t ON s.parent_id = t.id)
          UPDATE sessions SET revoked_at = ? WHERE id IN (SELECT id FROM tree) AND revoked_at IS NULL`, id, now);
  const session = getSession(db, id);
  if (!session) throw new AirlockError('not_found', 'no such session');
  return session;
}

/** Every session derived from `id`, at any depth, oldest first. */
export function sessionDescendants(db: SqliteDb, id: string): Session[] {
  return db.all(`WITH RECURSIVE tree(id) AS (SELECT s.id FROM sessions s WHERE s.parent_id = ? UNION SELECT s.id FROM sessions s JOIN tree t ON s.parent_id = t.id)
                 SELECT * FROM sessions WHERE id IN (SELECT id FROM tree) ORDER BY created_at, id`, id).map(sessionFromRow);
}

/** One page of the sessions derived from `id` (Store.sessionDescendantsPage): a live listing walks live sessions only. */
export function sessionDescendantsPage(db: SqliteDb, id: string, filter: SessionDescendantsFilter): Session[] {
  const live = filter.includeInactive ? '' : ' AND s.revoked_at IS NULL AND s.expires_at > ?';
  const liveParams = filter.includeInactive ? [] : [filter.now];
  const after = filter.after ? ' AND (created_at > ? OR (created_at = ? AND id > ?))' : '';
  const afterParams = filter.after ? [filter.after.createdAt, filter.after.createdAt, filter.after.id] : [];
  return db.all(`WITH RECURSIVE tree(id) AS (SELECT s.id FROM sessions s WHERE s.parent_id = ?${live} UNION SELECT s.id FROM sessions s JOIN tree t ON s.parent_id = t.id WHERE 1 = 1${live})
                 SELECT * FROM sessions WHERE id IN (SELECT id FROM tree)${after} ORDER BY created_at, id LIMIT ?`,
    id, ...liveParams, ...liveParams, ...afterParams, filter.limit).map(sessionFromRow);
}

/** Store.childSessionCounts: one query on the `sessions_by_parent` index. */
export function childSessionCounts(db: SqliteDb, parentId: string, now: number): ChildSessionCounts {
  const row = db.get(`SELECT count(*) AS total, coalesce(sum(CASE WHEN revoked_at IS NULL AND expires_at > ? THEN 1 ELSE 0 END), 0) AS live
                      FROM sessions WHERE parent_id = ?`, now, parentId);
  return { total: Number(row?.total ?? 0), live: Number(row?.live ?? 0) };
}

/**
 * Store.sessionTreeDerivations: the sessions derived under `rootId` at any depth, revoked and expired included,
 * counted up to `atMost` (the walk stops there; each step is a lookup on the `sessions_by_parent` index).
 */
export function sessionTreeDerivations(db: SqliteDb, rootId: string, atMost: number): number {
  const row = db.get(`WITH RECURSIVE tree(id) AS (SELECT s.id FROM sessions s WHERE s.parent_id = ? UNION SELECT s.id FROM sessions s JOIN tree t ON s.parent_id = t.id LIMIT ?)
                      SELECT count(*) AS n FROM tree`, rootId, Math.max(0, Math.trunc(atMost)));
  return Number(row?.n ?? 0);
}

// ---- idempotency ----

export function getIdempotency(db: SqliteDb, scope: string, key: string): IdempotencyRecord | undefined {
  const row = db.get('SELECT * FROM idempotency WHERE scope = ? AND key = ?', scope, key);
  return row && idempotencyFromRow(row);
}

export function putIdempotency(db: SqliteDb, r: IdempotencyRecord): void {
  db.run(
    'INSERT INTO idempotency (scope, key, request_hash, audit_seq, response, digest, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
    r.scope, r.key, r.requestHash, r.auditSeq, canonicalJson(r.response), r.digest ?? null, r.createdAt,
  );
}
