// What an attacker with write access to the database (triggers dropped) does to launder a rewritten audit
// log: rewrite an entry as a self-consistent version-3 leaf, and rebuild every stored tree node from the
// rewritten leaves so the stored tree agrees with them. Used by the anchor tests and the torture run.
import { auditLeaf, canonicalJson, leafHash, MerkleFrontier, storedLeafHash, type AuditEntry } from '@airlock/core';
import type { Harness, StoreKind } from './harness.ts';

interface RawStore {
  rawExec(sql: string): Promise<void>;
}

export const DROP_AUDIT_TRIGGERS: Record<StoreKind, string> = {
  sqlite: 'DROP TRIGGER IF EXISTS audit_entries_no_update; DROP TRIGGER IF EXISTS audit_entries_no_delete; DROP TRIGGER IF EXISTS audit_tree_heads_no_update; DROP TRIGGER IF EXISTS audit_tree_heads_no_delete; DROP TRIGGER IF EXISTS audit_tree_nodes_no_delete;',
  postgres: 'DROP TRIGGER IF EXISTS audit_entries_append_only ON audit_entries; DROP TRIGGER IF EXISTS audit_entries_no_truncate ON audit_entries; DROP TRIGGER IF EXISTS audit_tree_heads_append_only ON audit_tree_heads; DROP TRIGGER IF EXISTS audit_tree_nodes_no_delete ON audit_tree_nodes;',
};

export async function rawAudit(h: Harness, store: StoreKind, sql: string): Promise<void> {
  const raw = h.airlock.store as unknown as RawStore;
  await raw.rawExec(DROP_AUDIT_TRIGGERS[store]);
  await raw.rawExec(sql);
}

/** Rewrites one version-3 entry with `edit`, its leaf and leaf hash recomputed so the entry is self-consistent. */
export async function rewriteEntry(h: Harness, store: StoreKind, seq: number, edit: (e: AuditEntry) => AuditEntry): Promise<void> {
  const [e] = await h.airlock.store.readAudit(seq, 1);
  const edited = edit(e!);
  const leaf = auditLeaf(edited, canonicalJson(edited.data));
  const hash = Buffer.from(leafHash(leaf)).toString('hex');
  const text = (v: string | undefined) => (v === undefined ? 'NULL' : `'${v.replace(/'/g, "''")}'`);
  await rawAudit(h, store, `UPDATE audit_entries SET decision = ${text(edited.decision)}, leaf = ${text(leaf)}, hash = '${hash}' WHERE seq = ${seq}`);
}

/** Replaces every stored tree node with the tree of the stored leaves as they are now (a laundered tree). */
export async function rebuildStoredTree(h: Harness, store: StoreKind): Promise<void> {
  const { treeSize } = await h.airlock.store.auditHead();
  const leaves = await h.airlock.store.readAuditLeaves(0, treeSize);
  const f = new MerkleFrontier();
  const rows: string[] = [];
  const blob = (b: Uint8Array) => (store === 'sqlite' ? `X'${Buffer.from(b).toString('hex')}'` : `'\\x${Buffer.from(b).toString('hex')}'::bytea`);
  for (const e of leaves) f.push(storedLeafHash(e), (id, hash) => rows.push(`(${id.level}, ${id.index}, ${blob(hash)})`));
  await rawAudit(h, store, `DELETE FROM audit_tree_nodes; ${rows.length ? `INSERT INTO audit_tree_nodes (level, idx, hash) VALUES ${rows.join(', ')}` : ''}`);
}
