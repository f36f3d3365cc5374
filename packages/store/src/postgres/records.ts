import {
  AirlockError, canonicalJson,
  type Agent, type AgentStatus, type IdempotencyRecord, type NewAgent, type PolicyRecord, type Session, type SessionDescendantsFilter, type ChildSessionCounts,
} from '@airlock/core';
import { agentFromRow, idempotencyFromRow, policyFromRow, policyVersionFromRow, sessionFromRow } from '../shared/rows.ts';
import { clampLimit, toInt } from '../shared/values.ts';
import type { Q } from './pg-query.ts';
import { insertFirstKeys } from './agent-keys.ts';

const MAX_ACCOUNT_INDEX = 2 ** 31 - 1;
// Rows per multi-row INSERT when provisioning: arrays keep it to 8 parameters whatever the size.
const AGENT_CHUNK = 2000;

// ---- meta ----

export async function getMeta(q: Q, key: string): Promise<string | undefined> {
  const [row] = await q('SELECT value FROM meta WHERE key = $1', [key]);
  return row ? String(row.value) : undefined;
}

export async function initMeta(q: Q, key: string, value: string): Promise<string> {
  await q('INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING', [key, value]);
  return (await getMeta(q, key))!;
}

export async function setMeta(q: Q, key: string, value: string): Promise<void> {
  await q('INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value', [key, value]);
}

export async function compareAndSetMeta(q: Q, key: string, expected: string, value: string): Promise<boolean> {
  // READ COMMITTED: a concurrent update of the row makes this one wait, then re-check `value = $2` on the new row.
  return (await q('UPDATE meta SET value = $3 WHERE key = $1 AND value = $2 RETURNING key', [key, expected, value])).length === 1;
}

// ---- agents ----

/** Must run inside a transaction: the counter row stays locked until the inserts commit or roll back. */
export async function createAgents(q: Q, agents: NewAgent[], deriveAddress: (accountIndex: number, keyIndex: number) => string | Promise<string>, now: number): Promise<Agent[]> {
  if (agents.length === 0) return [];
  const [row] = await q('UPDATE account_counter SET next_index = next_index + $1 WHERE id = 1 RETURNING next_index', [agents.length]);
  const end = toInt(row?.next_index);
  if (end - 1 > MAX_ACCOUNT_INDEX) throw new AirlockError('conflict', 'no hardened account indexes left');
  const first = end - agents.length;
  const addresses: string[] = [];
  for (let i = 0; i < agents.length; i++) addresses.push((await deriveAddress(first + i, 0)).toLowerCase());
  const created: Agent[] = agents.map((a, i) => ({
    id: a.id,
    name: a.name,
    accountIndex: first + i,
    keyIndex: 0,
    address: addresses[i]!,
    status: 'active',
    labels: a.labels ?? {},
    createdAt: now,
    updatedAt: now,
  }));
  for (let start = 0; start < created.length; start += AGENT_CHUNK) {
    const chunk = created.slice(start, start + AGENT_CHUNK);
    try {
      await q(
        `INSERT INTO agents (id, name, account_index, key_index, address, status, labels, created_at, updated_at)
         SELECT id, name, account_index, 0, address, 'active', labels::jsonb, $6, $6
         FROM unnest($1::text[], $2::text[], $3::integer[], $4::text[], $5::text[]) AS t(id, name, account_index, address, labels)`,
        [chunk.map((a) => a.id), chunk.map((a) => a.name), chunk.map((a) => a.accountIndex), chunk.map((a) => a.address), chunk.map((a) => canonicalJson(a.labels)), now],
      );
    } catch (e) {
      if (e instanceof AirlockError && e.code === 'conflict') {
        throw new AirlockError('conflict', 'an agent with this name or id already exists', { cause: e });
      }
      throw e;
    }
    await insertFirstKeys(q, chunk, now);
  }
  return created;
}

export async function getAgent(q: Q, idOrName: string): Promise<Agent | undefined> {
  const [row] = await q('SELECT * FROM agents WHERE id = $1 UNION ALL SELECT * FROM agents WHERE name = $1 LIMIT 1', [idOrName]);
  return row && agentFromRow(row);
}

export async function getAgentById(q: Q, id: string): Promise<Agent | undefined> {
  const [row] = await q('SELECT * FROM agents WHERE id = $1', [id]);
  return row && agentFromRow(row);
}

/** Ordered by account index; `after` is the id of the last agent of the previous page. */
export async function listAgents(q: Q, filter: { status?: AgentStatus; limit?: number; after?: string }): Promise<Agent[]> {
  let afterIndex = -1;
  if (filter.after !== undefined) {
    const [cursor] = await q('SELECT account_index FROM agents WHERE id = $1', [filter.after]);
    if (!cursor) throw new AirlockError('not_found', 'the `after` cursor is not an agent id');
    afterIndex = toInt(cursor.account_index);
  }
  const rows = await q(
    'SELECT * FROM agents WHERE account_index > $1 AND ($2::text IS NULL OR status = $2) ORDER BY account_index LIMIT $3',
    [afterIndex, filter.status ?? null, clampLimit(filter.limit)],
  );
  return rows.map(agentFromRow);
}

/** 'frozen' is an operator's freeze (operator_frozen, schema 027): a breaker reset leaves the agent frozen. */
export async function setAgentStatus(q: Q, id: string, status: AgentStatus, now: number): Promise<Agent> {
  const [row] = await q("UPDATE agents SET status = $2, operator_frozen = ($2 = 'frozen'), updated_at = $3 WHERE id = $1 RETURNING *", [id, status, now]);
  if (!row) throw new AirlockError('not_found', 'no such agent');
  return agentFromRow(row);
}

// ---- policies ----

/** Must run under the signing lock, so two writers cannot both take version max + 1. */
export async function putPolicy(q: Q, record: Omit<PolicyRecord, 'version'>): Promise<PolicyRecord> {
  const [row] = await q(
    `INSERT INTO policies (scope, version, hash, document, source, author, created_at)
     SELECT $1, COALESCE(MAX(version), 0) + 1, $2, $3, $6, $4, $5 FROM policies WHERE scope = $1
     RETURNING version`,
    [record.scope, record.hash, canonicalJson(record.document ?? null), record.author, record.createdAt, record.source ?? null],
  );
  return { ...record, version: toInt(row!.version) };
}

export async function getPolicy(q: Q, scope: string, version?: number): Promise<PolicyRecord | undefined> {
  const [row] =
    version === undefined
      ? await q('SELECT * FROM policies WHERE scope = $1 ORDER BY version DESC LIMIT 1', [scope])
      : await q('SELECT * FROM policies WHERE scope = $1 AND version = $2', [scope, version]);
  return row && policyFromRow(row);
}

export async function listPolicyVersions(q: Q, scope: string): Promise<Omit<PolicyRecord, 'document'>[]> {
  const rows = await q('SELECT scope, version, hash, author, created_at FROM policies WHERE scope = $1 ORDER BY version DESC', [scope]);
  return rows.map(policyVersionFromRow);
}

// ---- sessions ----

export async function createSession(q: Q, s: Session): Promise<void> {
  await q(
    `INSERT INTO sessions (id, agent_id, token_hash, scope, label, created_at, expires_at, revoked_at, parent_id)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
    [s.id, s.agentId, s.tokenHash, canonicalJson(s.scope), s.label ?? null, s.createdAt, s.expiresAt, s.revokedAt ?? null, s.parentId ?? null],
  );
}

export async function getSession(q: Q, id: string): Promise<Session | undefined> {
  const [row] = await q('SELECT * FROM sessions WHERE id = $1', [id]);
  return row && sessionFromRow(row);
}

/** By default only active sessions: not revoked and not expired at `now`. */
export async function listSessions(q: Q, filter: { agentId?: string; includeInactive?: boolean; now: number }): Promise<Session[]> {
  const rows = await q(
    `SELECT * FROM sessions
     WHERE ($1::text IS NULL OR agent_id = $1) AND ($2::boolean OR (revoked_at IS NULL AND expires_at > $3))
     ORDER BY created_at, id`,
    [filter.agentId ?? null, filter.includeInactive === true, filter.now],
  );
  return rows.map(sessionFromRow);
}

/** Revocation happens once, and takes every descendant with it (see sqlite/records.ts). */
export async function revokeSession(q: Q, id: string, now: number): Promise<Session> {
  await q(`WITH RECURSIVE tree(id) AS (SELECT $1::text UNION SELECT s.id FROM sessions s JOIN tree t ON s.parent_id = t.id)
           UPDATE sessions SET revoked_at = $2 WHERE id IN (SELECT id FROM tree) AND revoked_at IS NULL`, [id, now]);
  const session = await getSession(q, id);
  if (!session) throw new AirlockError('not_found', 'no such session');
  return session;
}

/** Every session derived from `id`, at any depth, oldest first. */
export async function sessionDescendants(q: Q, id: string): Promise<Session[]> {
  const rows = await q(`WITH RECURSIVE tree(id) AS (SELECT s.id FROM sessions s WHERE s.parent_id = $1 UNION SELECT s.id FROM sessions s JOIN tree t ON s.parent_id = t.id)
                        SELECT * FROM sessions WHERE id IN (SELECT id FROM tree) ORDER BY created_at, id`, [id]);
  return rows.map(sessionFromRow);
}

/** One page of the sessions derived from `id` (see sqlite/records.ts). */
export async function sessionDescendantsPage(q: Q, id: string, filter: SessionDescendantsFilter): Promise<Session[]> {
  const rows = await q(`WITH RECURSIVE tree(id) AS (
                          SELECT s.id FROM sessions s WHERE s.parent_id = $1 AND ($2::boolean OR (s.revoked_at IS NULL AND s.expires_at > $3))
                          UNION SELECT s.id FROM sessions s JOIN tree t ON s.parent_id = t.id WHERE ($2::boolean OR (s.revoked_at IS NULL AND s.expires_at > $3)))
                        SELECT * FROM sessions WHERE id IN (SELECT id FROM tree)
                          AND ($4::bigint IS NULL OR created_at > $4 OR (created_at = $4 AND id > $5::text))
                        ORDER BY created_at, id LIMIT $6`,
  [id, filter.includeInactive === true, filter.now, filter.after?.createdAt ?? null, filter.after?.id ?? null, filter.limit]);
  return rows.map(sessionFromRow);
}

/** Store.childSessionCounts: one query on the `sessions_by_parent` index. */
export async function childSessionCounts(q: Q, parentId: string, now: number): Promise<ChildSessionCounts> {
  const [row] = await q(`SELECT count(*) AS total, count(*) FILTER (WHERE revoked_at IS NULL AND expires_at > $2) AS live FROM sessions WHERE parent_id = $1`, [parentId, now]);
  return { total: Number(row?.total ?? 0), live: Number(row?.live ?? 0) };
}

/** Store.sessionTreeDerivations (see sqlite/records.ts): the outer LIMIT stops the recursive walk at `atMost`. */
export async function sessionTreeDerivations(q: Q, rootId: string, atMost: number): Promise<number> {
  const [row] = await q(`WITH RECURSIVE tree(id) AS (SELECT s.id FROM sessions s WHERE s.parent_id = $1 UNION SELECT s.id FROM sessions s JOIN tree t ON s.parent_id = t.id)
                         SELECT count(*) AS n FROM (SELECT id FROM tree LIMIT $2) bounded`, [rootId, Math.max(0, Math.trunc(atMost))]);
  return Number(row?.n ?? 0);
}

// ---- idempotency ----

export async function getIdempotency(q: Q, scope: string, key: string): Promise<IdempotencyRecord | undefined> {
  const [row] = await q('SELECT * FROM idempotency WHERE scope = $1 AND key = $2', [scope, key]);
  return row && idempotencyFromRow(row);
}

export async function putIdempotency(q: Q, r: IdempotencyRecord): Promise<void> {
  await q(
    'INSERT INTO idempotency (scope, key, request_hash, audit_seq, response, digest, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)',
    [r.scope, r.key, r.requestHash, r.auditSeq, canonicalJson(r.response), r.digest ?? null, r.createdAt],
  );
}
