// A store as the code before RFC 8785 left it: audit entries hashed with tag v1 and the old canonical
// form, in rows without a hash version (the column's default, 1, is what migration 005 gives them).
import { createHash } from 'node:crypto';
import { GENESIS_HASH, legacyCanonicalJson, type AuditEntryInput } from '@airlock/core';
import type { Harness, StoreKind } from './harness.ts';

interface RawStore {
  rawExec(sql: string): Promise<void>;
}

const DROP_AUDIT_TRIGGERS: Record<StoreKind, string> = {
  sqlite: 'DROP TRIGGER audit_entries_no_update; DROP TRIGGER audit_entries_no_delete; DROP TRIGGER audit_checkpoints_no_delete; DROP TRIGGER audit_tree_nodes_no_delete; DROP TRIGGER audit_tree_heads_no_delete;',
  postgres: 'DROP TRIGGER audit_entries_append_only ON audit_entries; DROP TRIGGER audit_checkpoints_append_only ON audit_checkpoints; DROP TRIGGER audit_tree_nodes_no_delete ON audit_tree_nodes; DROP TRIGGER audit_tree_heads_append_only ON audit_tree_heads;',
};

/** The entry hash exactly as the old `hashAuditEntry` computed it. */
export function legacyEntryHash(prevHash: string, seq: number, e: AuditEntryInput): string {
  const body = legacyCanonicalJson({ seq, at: e.at, type: e.type, actor: e.actor, agentId: e.agentId, sessionId: e.sessionId, action: e.action, decision: e.decision, data: e.data });
  return createHash('sha256').update('airlock/audit-entry/v1\u0000').update(Buffer.from(prevHash, 'hex')).update(body).digest('hex');
}

/**
 * Integer-like keys are where the old form and RFC 8785 disagree ("9" before "10" vs "10" before "9"),
 * so these entries verify only if they are hashed as version 1.
 */
export function legacyEntries(at: number): AuditEntryInput[] {
  return [
    { at, type: 'policy.set', actor: 'operator', data: { scope: 'global', version: 1, labels: { 9: 'nine', 10: 'ten' } } },
    { at: at + 1, type: 'sign.request', actor: 'agent', agentId: 'ag_legacy', sessionId: 'ses_legacy', action: 'evm.transaction', decision: 'deny', data: { errorCode: 'policy_denied', byIndex: { 0: 'a', 1: 'b', 12: 'c', x: 'd' } } },
    { at: at + 2, type: 'agent.frozen', actor: 'operator', agentId: 'ag_legacy', data: { reason: 'rotation', 2: true } },
  ];
}

/**
 * Replaces the harness's audit log with a version-1 chain (as if written before the upgrade): the
 * append-only triggers are dropped for the rewrite and the log is emptied first, since a fresh harness
 * has already written a few current entries. Returns the legacy head.
 */
export async function writeLegacyAuditChain(h: Harness, store: StoreKind): Promise<{ seq: number; hash: string }> {
  const raw = h.airlock.store as unknown as RawStore;
  const statements = [DROP_AUDIT_TRIGGERS[store], 'DELETE FROM audit_checkpoints', 'DELETE FROM audit_tree_heads', 'DELETE FROM audit_tree_nodes', 'DELETE FROM audit_entries'];
  let prev = GENESIS_HASH;
  let seq = 0;
  const text = (v: string | undefined) => (v === undefined ? 'NULL' : `'${v.replace(/'/g, "''")}'`);
  for (const e of legacyEntries(Date.now() - 60_000)) {
    seq++;
    const hash = legacyEntryHash(prev, seq, e);
    statements.push(
      // leaf_index = seq - 1: what migration 007 gives every row written before it.
      `INSERT INTO audit_entries (seq, at, type, actor, agent_id, session_id, action, decision, prev_hash, hash, data, leaf_index)
       VALUES (${seq}, ${e.at}, ${text(e.type)}, ${text(e.actor)}, ${text(e.agentId)}, ${text(e.sessionId)}, ${text(e.action)}, ${text(e.decision)}, '${prev}', '${hash}', ${text(legacyCanonicalJson(e.data))}, ${seq - 1})`,
    );
    prev = hash;
  }
  // PostgreSQL draws seqs from a sequence and leaf indexes from a counter (migration 008): the rewritten
  // log is where they continue from, as the migration would have set them on an upgraded store.
  if (store === 'postgres') statements.push(`UPDATE audit_leaf_counter SET next_leaf = ${seq}`, `SELECT setval('audit_entry_seq', ${seq + 1}, false)`);
  await raw.rawExec(statements.join('; '));
  return { seq, hash: prev };
}
