import { GRANT_KINDS, type GrantKind, type GrantRecord } from '@airlock/core';
import { AirlockError } from '@airlock/core';
import { fromJson, toAmount, toInt, toOptionalInt, toOptionalString } from './values.ts';

// Grant rows (schema: SQLite 018, PostgreSQL 019), shared by both dialects.

export const GRANT_COLUMNS = 'audit_seq, idx, agent_id, kind, chain, token, contract, owner, spender, amount, unlimited, expires_at, deadline, nonce, domain, created_at';

/** Values in GRANT_COLUMNS order; `json` writes the domain (canonical JSON text), `bool` the dialect's boolean. */
export function grantValues(g: GrantRecord, json: (v: unknown) => string, bool: (v: boolean) => unknown): unknown[] {
  return [
    g.auditSeq, g.index, g.agentId, g.kind, g.chain, g.token, g.contract, g.owner, g.spender, g.amount.toString(), bool(g.unlimited),
    g.expiresAt ?? null, g.deadline ?? null, g.nonce ?? null, g.domain !== undefined ? json(g.domain) : null, g.createdAt,
  ];
}

export function grantFromRow(row: Record<string, unknown>): GrantRecord {
  const kind = String(row.kind);
  if (!(GRANT_KINDS as readonly string[]).includes(kind)) throw new AirlockError('internal', 'store returned an unknown grant kind');
  const expiresAt = toOptionalInt(row.expires_at);
  const deadline = toOptionalInt(row.deadline);
  const nonce = toOptionalString(row.nonce);
  const domain = typeof row.domain === 'object' && row.domain !== null ? row.domain : fromJson(row.domain);
  return {
    agentId: String(row.agent_id), auditSeq: toInt(row.audit_seq), index: toInt(row.idx), kind: kind as GrantKind, chain: String(row.chain), token: String(row.token),
    contract: String(row.contract), owner: String(row.owner), spender: String(row.spender), amount: toAmount(row.amount), unlimited: row.unlimited === true || row.unlimited === 1 || row.unlimited === 1n,
    ...(expiresAt !== undefined ? { expiresAt } : {}), ...(deadline !== undefined ? { deadline } : {}), ...(nonce !== undefined ? { nonce } : {}),
    ...(domain !== undefined ? { domain: domain as { name?: string; version?: string } } : {}),
    createdAt: toInt(row.created_at),
  };
}
