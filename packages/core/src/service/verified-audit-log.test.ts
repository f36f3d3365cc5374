// The key process's reading of the audit log (VerifiedAuditLog), on a log held in memory as a store holds it
// (rows with their leaf bytes and hash column, stored tree nodes) that the test rewrites as the daemon could:
// an entry is used only as first read, a folded one is proven against the key process's own peaks (a forged
// sibling does not help, missing nodes fall back to the leaves), and callers at once read each leaf once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bytesToHex } from '@noble/hashes/utils.js';
import { canonicalJson } from '../canonical-json.ts';
import { auditLeaf } from '../audit/hash.ts';
import type { VerifiableEntry } from '../audit/log-verifier.ts';
import { leafHashHex, MerkleFrontier, type NodeId } from '../audit/merkle.ts';
import { VerifiedAuditLog, type AuditLogSource } from './verified-audit-log.ts';

/** A log of `n` sign.request entries (seq = leaf + 1, as on SQLite), its tree nodes built over the first `built`. */
function memoryLog(n: number, built = 0) {
  const rows: VerifiableEntry[] = [];
  const nodes = new Map<string, Uint8Array>();
  const leafReads: { from: number; limit: number }[] = [];
  const entryFor = (seq: number, digest: string): VerifiableEntry => {
    const fields = { seq, at: 1_000 + seq, type: 'sign.request', actor: 'agent' as const, agentId: 'ag_1', action: 'evm.transaction', decision: 'allow' as const };
    const leaf = auditLeaf(fields, canonicalJson({ digest }));
    return { ...fields, leafIndex: seq - 1, hash: leafHashHex(leaf), hashVersion: 3, leaf };
  };
  for (let i = 0; i < n; i++) rows.push(entryFor(i + 1, `d${i + 1}`));
  const f = new MerkleFrontier();
  for (const r of rows.slice(0, built)) f.pushHex(r.hash, (id, hash) => nodes.set(`${id.level}:${id.index}`, hash));
  const source: AuditLogSource = {
    async readAudit(fromSeq, limit) {
      return rows.filter((r) => r.seq >= fromSeq).slice(0, limit).map((r) => ({ ...r, data: {} }));
    },
    async readAuditLeaves(from, limit) {
      leafReads.push({ from, limit });
      await new Promise((r) => setTimeout(r, 2)); // a store answers later: callers interleave
      return rows.slice(from, from + limit).map((r) => ({ ...r }));
    },
    async readTreeNodes(ids: readonly NodeId[]) {
      return ids.map((id) => nodes.get(`${id.level}:${id.index}`));
    },
  };
  const rootOf = (size: number) => {
    const g = new MerkleFrontier();
    for (const r of rows.slice(0, size)) g.pushHex(r.hash);
    return bytesToHex(g.root());
  };
  /** Rewrites entry `seq` to record `digest`, self-consistent (leaf and hash column), as the daemon could. */
  const rewrite = (seq: number, digest: string) => (rows[seq - 1] = entryFor(seq, digest));
  return { rows, nodes, leafReads, source, rootOf, rewrite };
}

const refusedWith = (reason: string) => (e: unknown) => (e as { code?: string }).code === 'key_process_refused' && (e as { details?: { reason?: string } }).details?.reason === reason;

test('an entry is used as first read: rewritten afterwards (hash column too) it is refused, and so is a tree head over the rewrite', async () => {
  const mem = memoryLog(10);
  const log = new VerifiedAuditLog(mem.source);
  assert.equal((await log.entry(7)).data.digest, 'd7');
  const original = mem.rootOf(10);
  mem.rewrite(7, 'evil');
  // Read before and kept unfolded: the row read again must hash to what was read.
  assert.equal((await log.entry(7)).data.digest, 'd7'); // the row kept from the first read
  await assert.rejects(log.foldTo(10, mem.rootOf(10)), refusedWith('tree_root_mismatch'));
  await log.foldTo(10, original);
  await assert.rejects(log.entry(7), refusedWith('audit_leaf_mismatch')); // folded: proven against its peak, from the leaves
});

test('a folded leaf is proven against the peak the key process computed: through the stored nodes (a laundered tree does not help), or from the leaves', async () => {
  const mem = memoryLog(12, 12);
  const log = new VerifiedAuditLog(mem.source);
  await log.foldTo(12, mem.rootOf(12)); // peaks: leaves 0-7 and 8-11
  assert.equal((await log.entry(3)).leafHash, mem.rows[2]!.hash);
  assert.equal((await log.entry(10)).data.digest, 'd10');
  // A leaf rewritten with its hash column, the stored tree laundered to match it: its path ends elsewhere.
  mem.rewrite(3, 'evil');
  const laundered = new MerkleFrontier();
  for (const r of mem.rows) laundered.pushHex(r.hash, (id, hash) => mem.nodes.set(`${id.level}:${id.index}`, hash));
  await assert.rejects(log.entry(3), refusedWith('audit_leaf_mismatch'));
  // The nodes gone: the peak folded from its 8 leaves, the same answer; a leaf of the other peak still proves.
  mem.nodes.clear();
  const reads = mem.leafReads.length;
  await assert.rejects(log.entry(3), refusedWith('audit_leaf_mismatch'));
  assert.equal((await log.entry(11)).data.digest, 'd11');
  assert.ok(mem.leafReads.length > reads, 'read the peak from its leaves');
  // A row moved to another place (its leaf index changed) is not the leaf read there.
  mem.rows[4] = { ...mem.rows[4]!, leafIndex: 5 };
  await assert.rejects(log.entry(5), refusedWith('audit_leaf_mismatch'));
});

test('a row whose leaf does not hash to its hash column, or whose columns are not its leaf\'s, is refused when first read', async () => {
  const mem = memoryLog(4);
  mem.rows[1] = { ...mem.rows[1]!, leaf: mem.rows[1]!.leaf!.replace('"d2"', '"evil"') };
  await assert.rejects(new VerifiedAuditLog(mem.source).entry(2), refusedWith('audit_leaf_mismatch'));
  const other = memoryLog(4);
  other.rows[2] = { ...other.rows[2]!, decision: 'deny' };
  await assert.rejects(new VerifiedAuditLog(other.source).entry(3), refusedWith('audit_leaf_mismatch'));
});

test('tree heads and entries asked for at once read each leaf once: every correct head signs, and the next one too', async () => {
  const mem = memoryLog(9000, 9000); // more than two pages of leaves
  const log = new VerifiedAuditLog(mem.source);
  const root = mem.rootOf(8000);
  const results = await Promise.allSettled([log.foldTo(8000, root), log.foldTo(8000, root), log.entry(8500), log.foldTo(8000, root), log.entry(3)]);
  assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'fulfilled', 'fulfilled', 'fulfilled', 'fulfilled'], JSON.stringify(results));
  // The pages of the log (each read from where the reading stood): no two callers read the same one.
  const pages = mem.leafReads.filter((r) => r.limit > 1).map((r) => r.from);
  assert.deepEqual(pages.filter((from) => from < 9000), [0, 4096, 8192]);
  assert.equal(new Set(pages).size, pages.length, JSON.stringify(pages));
  assert.equal(log.size, 9000);
  await log.foldTo(9000, mem.rootOf(9000));
  await assert.rejects(log.foldTo(8999, mem.rootOf(8999)), refusedWith('tree_root_mismatch')); // heads only grow
});
