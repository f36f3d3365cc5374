// An audit log written before canonical JSON became RFC 8785 (hash version 1) keeps verifying after
// the upgrade to the Merkle tree: its chained entries are leaves too (their chain still checked), new
// entries are version-3 leaves after them; the old form's blind spot (__proto__ members) and a version
// going back are still caught.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { ALICE, provisionAgent, startHarness, usdcPolicy, usdcTransfer, type StoreKind } from './testing/harness.ts';
import { writeFileSync } from 'node:fs';
import { bytesToHex } from '@noble/hashes/utils.js';
import { checkpointDigest, legacyCanonicalJson } from '@airlock/core';
import { auditAnchorPath, readAuditAnchorFile } from './audit-anchor-file.ts';
import { legacyEntries, legacyEntryHash, writeLegacyAuditChain } from './testing/legacy-audit.ts';
import type { Harness } from './testing/harness.ts';

/** What a store and vault directory upgraded from before the tree hold: a checkpoint over the chain head, signed by the audit key, and a v1 anchor file. */
async function legacyCheckpointAndAnchor(h: Harness, head: { seq: number; hash: string }): Promise<void> {
  const { keys, auditKeyPath } = h.airlock.deps;
  const at = Date.now();
  const publicKey = await h.airlock.audit.auditPublicKey();
  const signature = bytesToHex(await keys.signSchnorr(auditKeyPath, checkpointDigest({ seq: head.seq, headHash: head.hash, at })));
  await h.airlock.store.appendCheckpoint({ seq: head.seq, headHash: head.hash, at, publicKey, signature });
  writeFileSync(auditAnchorPath(h.config.vaultPath), JSON.stringify({ format: 'airlock-audit-anchor/v1', generation: 0, seq: head.seq, headHash: head.hash, at, publicKey, signature }), { mode: 0o600 });
}

interface RawStore {
  rawExec(sql: string): Promise<void>;
}

for (const store of ['sqlite', 'postgres'] as StoreKind[]) {
  describe(`audit hash versions (${store})`, () => {
    test('a version-1 chain from before the upgrade verifies, and new version-3 leaves follow it in one tree', async () => {
      const h = await startHarness({ store });
      try {
        const legacyHead = await writeLegacyAuditChain(h, store);
        assert.equal((await h.admin('POST', '/v1/audit/verify')).body.ok, true, 'the legacy chain alone verifies');

        const { token } = await provisionAgent(h, { policy: usdcPolicy() });
        for (let i = 0; i < 2; i++) assert.equal((await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 1_000n, i) })).status, 200);
        await h.airlock.audit.checkpoint();

        const verified = (await h.admin('POST', '/v1/audit/verify')).body;
        assert.equal(verified.ok, true, JSON.stringify(verified.firstBad));
        assert.equal(verified.unanchored, 0);
        const { entries } = (await h.admin('GET', '/v1/audit?limit=1000')).body;
        assert.equal(verified.entries, entries.length);
        assert.ok(entries.length > legacyHead.seq + 2);
        assert.deepEqual(entries.slice(0, legacyHead.seq).map((e: { hashVersion: number }) => e.hashVersion), legacyEntries(0).map(() => 1));
        assert.ok(entries.slice(legacyHead.seq).every((e: { hashVersion: number }) => e.hashVersion === 3));
        assert.equal(entries[legacyHead.seq].prevHash, undefined, 'a version-3 leaf does not chain');
        assert.deepEqual(entries.map((e: { leafIndex: number }) => e.leafIndex), entries.map((_: unknown, i: number) => i), 'one tree, leaves in order');
        assert.ok(verified.treeHeads >= 1);
      } finally {
        await h.close();
      }
    });

    test('an upgraded store: its legacy checkpoint and v1 anchor file are honoured, and the first tree head extends them', async () => {
      const h = await startHarness({ store });
      try {
        const legacyHead = await writeLegacyAuditChain(h, store);
        await legacyCheckpointAndAnchor(h, legacyHead);
        const { token } = await provisionAgent(h, { policy: usdcPolicy() });
        assert.equal((await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 1_000n) })).status, 200);
        const head = await h.airlock.audit.checkpoint();
        assert.ok(head, 'the legacy chain up to the checkpoint verified; a tree head is signed');
        const anchor = await readAuditAnchorFile(auditAnchorPath(h.config.vaultPath));
        assert.deepEqual(anchor && 'treeSize' in anchor ? anchor.treeSize : undefined, head.treeSize, 'the anchor file is now a tree head (v2)');
        const verified = (await h.admin('POST', '/v1/audit/verify')).body;
        assert.deepEqual([verified.ok, verified.checkpoints, verified.treeHeads, verified.unanchored], [true, 1, 1, 0], JSON.stringify(verified));
      } finally {
        await h.close();
      }
    });

    test('an upgraded store whose legacy chain was rewritten below its v1 anchor halts signing at the first check', async () => {
      const h = await startHarness({ store });
      try {
        const legacyHead = await writeLegacyAuditChain(h, store);
        await legacyCheckpointAndAnchor(h, legacyHead);
        await (h.airlock.store as unknown as RawStore).rawExec('DELETE FROM audit_checkpoints');
        // Entry 2 rewritten and entry 3 re-chained onto it: a self-consistent chain that ends elsewhere.
        const [first] = await h.airlock.store.readAudit(1, 1);
        const [e2, e3] = legacyEntries(0).slice(1).map((e, i) => ({ ...e, at: first!.at + i + 1 }));
        const forged2 = { ...e2!, decision: 'allow' as const };
        const h2 = legacyEntryHash(first!.hash, 2, forged2);
        const h3 = legacyEntryHash(h2, 3, e3!);
        const text = (v: unknown) => `'${legacyCanonicalJson(v).replace(/'/g, "''")}'`;
        await (h.airlock.store as unknown as RawStore).rawExec(`UPDATE audit_entries SET decision = 'allow', hash = '${h2}', data = ${text(forged2.data)} WHERE seq = 2; UPDATE audit_entries SET prev_hash = '${h2}', hash = '${h3}' WHERE seq = 3`);
        await assert.rejects(h.airlock.audit.checkpoint(), (e: unknown) => (e as { code?: string }).code === 'audit_integrity_failed');
        const [alert] = (await h.admin('GET', '/v1/audit?type=alert.audit_integrity')).body.entries;
        assert.match(alert.data.reason, /entry 3 does not match the anchored checkpoint/);
      } finally {
        await h.close();
      }
    });

    test('a __proto__ member added to a version-1 entry is caught, though the old form hashes it away', async () => {
      const h = await startHarness({ store });
      try {
        await writeLegacyAuditChain(h, store);
        const raw = h.airlock.store as unknown as RawStore;
        // The old form drops the member, so this edit leaves the version-1 hash unchanged.
        await raw.rawExec(`UPDATE audit_entries SET data = '{"__proto__":{"decision":"allow"},"errorCode":"policy_denied","byIndex":{"0":"a","1":"b","12":"c","x":"d"}}' WHERE seq = 2`);
        const result = (await h.admin('POST', '/v1/audit/verify')).body;
        assert.equal(result.ok, false);
        assert.equal(result.firstBad.seq, 2);
        assert.match(result.firstBad.reason, /edited/);
      } finally {
        await h.close();
      }
    });

    test('a version relabelled is caught at that entry; a version-3 row cannot even be relabelled a chain entry', async () => {
      const h = await startHarness({ store });
      try {
        await writeLegacyAuditChain(h, store);
        const { token } = await provisionAgent(h, { policy: usdcPolicy() });
        await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 1_000n) });
        const head = await h.airlock.store.auditHead();
        const raw = h.airlock.store as unknown as RawStore;
        // A chained row and a leaf row differ in shape (leaf vs data and prev_hash): the table refuses the mix.
        await assert.rejects(raw.rawExec(`UPDATE audit_entries SET hash_version = 2 WHERE seq = ${head.seq}`));
        await raw.rawExec(`UPDATE audit_entries SET hash_version = 2 WHERE seq = 2`);
        const result = (await h.admin('POST', '/v1/audit/verify')).body;
        assert.equal(result.ok, false);
        assert.equal(result.firstBad.seq, 2);
        assert.match(result.firstBad.reason, /edited|follows version 2/);
      } finally {
        await h.close();
      }
    });
  });
}
