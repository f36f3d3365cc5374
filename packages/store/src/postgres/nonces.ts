import { AirlockError, type NonceClaim } from '@airlock/core';
import { nonceClaimFromRow } from '../shared/rows.ts';
import type { Q } from './pg-query.ts';

export async function getNonceClaims(q: Q, keys: readonly string[]): Promise<NonceClaim[]> {
  if (keys.length === 0) return [];
  const rows = await q('SELECT * FROM nonce_claims WHERE key = ANY($1::text[])', [keys]);
  return rows.map(nonceClaimFromRow);
}

export async function claimNonces(q: Q, claims: readonly NonceClaim[]): Promise<void> {
  if (claims.length === 0) return;
  // ON CONFLICT DO NOTHING + a count: a key already claimed becomes `conflict` without aborting the transaction.
  const rows = await q(
    `INSERT INTO nonce_claims (key, agent_id, digest, audit_seq, state, approval_id, valid_before, created_at)
     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::bigint[], $8::bigint[])
     ON CONFLICT (key) DO NOTHING RETURNING key`,
    [claims.map((c) => c.key), claims.map((c) => c.agentId), claims.map((c) => c.digest), claims.map((c) => c.auditSeq),
      claims.map((c) => c.state), claims.map((c) => c.approvalId ?? null), claims.map((c) => c.validBefore ?? null), claims.map((c) => c.createdAt)],
  );
  if (rows.length !== claims.length) throw new AirlockError('conflict', 'this nonce is already claimed');
}

/** An approval's decision settles the nonces it holds: approved -> signed, otherwise freed. */
export async function settleApprovalNonces(q: Q, approvalId: string, approved: boolean): Promise<void> {
  if (approved) await q("UPDATE nonce_claims SET state = 'signed' WHERE approval_id = $1 AND state = 'pending'", [approvalId]);
  else await q("DELETE FROM nonce_claims WHERE approval_id = $1 AND state = 'pending'", [approvalId]);
}

export async function releaseNonceClaims(q: Q, keys: readonly string[]): Promise<void> {
  if (keys.length > 0) await q('DELETE FROM nonce_claims WHERE key = ANY($1::text[])', [keys]);
}
