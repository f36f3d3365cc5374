import { AirlockError, type NonceClaim } from '@airlock/core';
import { nonceClaimFromRow } from '../shared/rows.ts';
import type { SqliteDb } from './sqlite-db.ts';

export function getNonceClaims(db: SqliteDb, keys: readonly string[]): NonceClaim[] {
  if (keys.length === 0) return [];
  return db.all(`SELECT * FROM nonce_claims WHERE key IN (${keys.map(() => '?').join(', ')})`, ...keys).map(nonceClaimFromRow);
}

export function claimNonces(db: SqliteDb, claims: readonly NonceClaim[]): void {
  for (const c of claims) {
    // The primary key makes a second claim of one key a constraint error; say what it means.
    if (db.get('SELECT 1 AS x FROM nonce_claims WHERE key = ?', c.key)) throw new AirlockError('conflict', 'this nonce is already claimed');
    db.run(
      'INSERT INTO nonce_claims (key, agent_id, digest, audit_seq, state, approval_id, valid_before, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      c.key, c.agentId, c.digest, c.auditSeq, c.state, c.approvalId ?? null, c.validBefore ?? null, c.createdAt,
    );
  }
}

export function releaseNonceClaims(db: SqliteDb, keys: readonly string[]): void {
  for (const key of keys) db.run('DELETE FROM nonce_claims WHERE key = ?', key);
}

/** An approval's decision settles the nonces it holds: approved -> signed, otherwise freed. */
export function settleApprovalNonces(db: SqliteDb, approvalId: string, approved: boolean): void {
  if (approved) db.run("UPDATE nonce_claims SET state = 'signed' WHERE approval_id = ? AND state = 'pending'", approvalId);
  else db.run("DELETE FROM nonce_claims WHERE approval_id = ? AND state = 'pending'", approvalId);
}
