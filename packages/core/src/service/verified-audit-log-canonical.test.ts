// The key process's reading of the log (VerifiedAuditLog) takes a version-3 leaf only if its data is the RFC 8785
// canonical JSON of one object: a row appended behind the daemon's back (INSERT is allowed with the append-only
// triggers on) whose leaf frames its columns and hashes to its hash column, but whose data is several members
// spliced together, or an object with duplicate or unsorted keys, is an edited leaf: nothing is signed from it.
// Found by review.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bytesToHex } from '@noble/hashes/utils.js';
import { canonicalJson } from '../canonical-json.ts';
import { auditLeaf, auditLeafPrefix, auditLeafSuffix, type AuditLeafFields } from '../audit/hash.ts';
import type { VerifiableEntry } from '../audit/log-verifier.ts';
import { leafHashHex, MerkleFrontier, type NodeId } from '../audit/merkle.ts';
import { VerifiedAuditLog, type AuditLogSource } from './verified-audit-log.ts';

function fieldsOf(seq: number): AuditLeafFields {
  return { seq, at: 1_000 + seq, type: 'sign.request', actor: 'agent', agentId: 'ag_1', action: 'evm.transaction', decision: 'allow' };
}

/** A log of `n` entries, entry `forged` (a seq) with `data` as its leaf's data text, exactly as given. */
function memoryLog(n: number, forged: number, data: string) {
  const rows: VerifiableEntry[] = [];
  for (let seq = 1; seq <= n; seq++) {
    const f = fieldsOf(seq);
    const leaf = seq === forged ? auditLeafPrefix(f) + data + auditLeafSuffix(f) : auditLeaf(f, canonicalJson({ digest: `d${seq}` }));
    rows.push({ ...f, leafIndex: seq - 1, hash: leafHashHex(leaf), hashVersion: 3, leaf });
  }
  const source: AuditLogSource = {
    async readAudit(fromSeq, limit) {
      return rows.filter((r) => r.seq >= fromSeq).slice(0, limit).map((r) => ({ ...r, data: {} }));
    },
    async readAuditLeaves(from, limit) {
      return rows.slice(from, from + limit).map((r) => ({ ...r }));
    },
    async readTreeNodes(ids: readonly NodeId[]) {
      return ids.map(() => undefined);
    },
  };
  const root = new MerkleFrontier();
  for (const r of rows) root.pushHex(r.hash);
  return { source, rootHash: bytesToHex(root.root()) };
}

const refusedNotCanonical = (e: unknown) =>
  (e as { code?: string }).code === 'key_process_refused' && (e as { details?: { reason?: string } }).details?.reason === 'audit_leaf_mismatch' && /not the canonical JSON of an object/.test((e as Error).message);

for (const [name, data] of [
  ['members spliced after the data object', '{"requestHash":"aa"},"decision":"allow","z":{"to":"0xEVIL","to":"0xGOOD"}'],
  ['an object with a duplicate key', '{"digest":"d3","to":"0xEVIL","to":"0xGOOD"}'],
  ['an object with unsorted keys', '{"to":"0xGOOD","digest":"d3"}'],
  ['an object with whitespace', '{"digest": "d3"}'],
] as const) {
  test(`a leaf whose data is ${name} is refused as edited, first read or read after it was folded; the leaves around it are not`, async () => {
    const mem = memoryLog(6, 3, data);
    const log = new VerifiedAuditLog(mem.source);
    await assert.rejects(log.entry(3), refusedNotCanonical);
    assert.equal((await log.entry(4)).data.digest, 'd4');
    // Read again by index (folded first: proven against the peak, then checked as a row).
    await log.foldTo(6, mem.rootHash);
    await assert.rejects(log.entry(3), refusedNotCanonical);
    assert.equal((await log.entry(2)).data.digest, 'd2');
  });
}

test('a canonical object framed the same way is taken (the check is of form, not of what the object holds)', async () => {
  const mem = memoryLog(4, 3, '{"a":[1,"x"],"digest":"d3","z":{"k":null}}');
  const log = new VerifiedAuditLog(mem.source);
  assert.deepEqual((await log.entry(3)).data, { a: [1, 'x'], digest: 'd3', z: { k: null } });
});
