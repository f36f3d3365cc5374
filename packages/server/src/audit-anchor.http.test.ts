// An attacker with write access to the database (who drops the append-only triggers) rewrites the audit
// log and deletes or forges its signed tree heads. The anchor beside the vault and the vault-derived audit key
// make that visible: the checkpointer refuses and halts signing, and verify fails.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { schnorr } from '@noble/curves/secp256k1.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { auditLeaf, canonicalJson, isAirlockError, leafHash, treeHeadDigest } from '@airlock/core';
import { auditAnchorPath } from './audit-anchor-file.ts';
import { rebuildStoredTree, rewriteEntry } from './testing/forge-audit.ts';
import { ALICE, provisionAgent, startHarness, usdcPolicy, usdcTransfer, type Harness, type StoreKind } from './testing/harness.ts';

interface RawStore {
  rawExec(sql: string): Promise<void>;
}

const DROP_TRIGGERS: Record<StoreKind, string> = {
  sqlite: 'DROP TRIGGER audit_entries_no_update; DROP TRIGGER audit_entries_no_delete; DROP TRIGGER audit_tree_heads_no_update; DROP TRIGGER audit_tree_heads_no_delete;',
  postgres: 'DROP TRIGGER audit_entries_append_only ON audit_entries; DROP TRIGGER audit_entries_no_truncate ON audit_entries; DROP TRIGGER audit_tree_heads_append_only ON audit_tree_heads;',
};

const isCode = (code: string) => (e: unknown) => isAirlockError(e) && e.code === code;

/** 8 signed requests and a signed tree head over them; returns the harness and a session token. */
async function loggedHarness(store: StoreKind): Promise<{ h: Harness; token: string }> {
  const h = await startHarness({ store });
  const { token } = await provisionAgent(h, { policy: usdcPolicy() });
  for (let i = 0; i < 8; i++) assert.equal((await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 1_000_000n, i) })).status, 200);
  assert.ok(await h.airlock.audit.checkpoint());
  return { h, token };
}

async function raw(h: Harness, store: StoreKind, sql: string): Promise<void> {
  const s = h.airlock.store as unknown as RawStore;
  await s.rawExec(DROP_TRIGGERS[store]).catch(() => undefined); // already dropped
  await s.rawExec(sql);
}

/**
 * The attacker hides the newest request under the anchor: turns it into a denial, with a leaf and leaf
 * hash that match (a self-consistent entry). The anchored root pins that entry: the next check catches it.
 * (An older entry rewritten this way is caught by `audit verify` and at the next start, not by every tick:
 * the tick verifies what follows the anchor and the anchored entry, see docs/threat-model.md.)
 */
async function rewriteAnchoredEntry(h: Harness, store: StoreKind): Promise<void> {
  const { treeSize } = (await h.airlock.store.lastTreeHead())!;
  const [e] = await h.airlock.store.readAudit(treeSize, 1);
  const edited = { ...e!, decision: 'deny' as const };
  const leaf = auditLeaf(edited, canonicalJson(edited.data));
  const hash = Buffer.from(leafHash(leaf)).toString('hex');
  await raw(h, store, `UPDATE audit_entries SET decision = 'deny', leaf = '${leaf.replace(/'/g, "''")}', hash = '${hash}' WHERE seq = ${e!.seq}`);
}

async function signStatus(h: Harness, token: string, nonce = 99): Promise<{ status: number; code?: string }> {
  const res = await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 1n, nonce) });
  return { status: res.status, code: res.body?.error?.code };
}

async function alerts(h: Harness): Promise<{ data: { reason: string } }[]> {
  return (await h.admin('GET', '/v1/audit?type=alert.audit_integrity')).body.entries;
}

for (const store of ['sqlite', 'postgres'] as StoreKind[]) {
  describe(`audit anchor (${store})`, () => {
    test('a rewritten entry with every signed head deleted: the checkpointer refuses, alerts, signing halts, verify fails', async () => {
      const { h, token } = await loggedHarness(store);
      try {
        await rewriteAnchoredEntry(h, store);
        await raw(h, store, 'DELETE FROM audit_tree_heads');
        await assert.rejects(h.airlock.audit.checkpoint(), isCode('audit_integrity_failed'));
        assert.equal((await h.airlock.store.listTreeHeads()).length, 0, 'the forgery was not signed');
        const raised = await alerts(h);
        assert.equal(raised.length, 1);
        assert.match(raised[0]!.data.reason, /does not match the anchored tree head/);

        assert.deepEqual(await signStatus(h, token), { status: 503, code: 'audit_integrity_failed' });
        const dry = await h.call('POST', '/v1/dry-run', { token, body: { action: 'evm.transaction', payload: usdcTransfer(ALICE, 1n) } });
        assert.equal(dry.status, 503);
        assert.equal(dry.body.error.code, 'audit_integrity_failed');

        const verified = (await h.admin('POST', '/v1/audit/verify')).body;
        assert.equal(verified.ok, false);
        assert.match(verified.firstBad.reason, /does not match the signed tree head/);

        // Each later tick refuses again, without a new alert for the same finding.
        await assert.rejects(h.airlock.audit.checkpoint(), isCode('audit_integrity_failed'));
        assert.equal((await alerts(h)).length, 1);
      } finally {
        await h.close();
      }
    });

    test('an older entry rewritten with the stored tree rebuilt to match (a self-consistent forgery): the next tick refuses, verify fails', async () => {
      const { h, token } = await loggedHarness(store);
      try {
        await rewriteEntry(h, store, 4, (e) => ({ ...e, decision: 'deny' }));
        await rebuildStoredTree(h, store);
        await raw(h, store, 'DELETE FROM audit_tree_heads');
        await assert.rejects(h.airlock.audit.checkpoint(), isCode('audit_integrity_failed'));
        assert.match((await alerts(h))[0]!.data.reason, /does not match the anchored tree head/);
        assert.deepEqual(await signStatus(h, token), { status: 503, code: 'audit_integrity_failed' });
        assert.equal((await h.admin('POST', '/v1/audit/verify')).body.ok, false);
      } finally {
        await h.close();
      }
    });

    test('an older entry rewritten alone (the stored tree untouched) does not halt the tick, but verify names it', async () => {
      const { h } = await loggedHarness(store);
      try {
        await rewriteEntry(h, store, 4, (e) => ({ ...e, decision: 'deny' }));
        await h.airlock.audit.checkpoint(); // documented: the tick checks the anchored entry and what follows
        const verified = (await h.admin('POST', '/v1/audit/verify')).body;
        assert.equal(verified.ok, false);
        assert.match(verified.firstBad.reason, /does not match the signed tree head/);
      } finally {
        await h.close();
      }
    });

    test('the anchor file survives a restart: a rewrite while the daemon is down is caught at start', async () => {
      const { h, token } = await loggedHarness(store);
      try {
        await h.restart(); // close() writes a last checkpoint and anchor
        const anchorFile = auditAnchorPath(h.config.vaultPath);
        assert.equal(statSync(anchorFile).mode & 0o777, 0o600);
        const anchored = JSON.parse(readFileSync(anchorFile, 'utf8'));
        assert.equal(anchored.treeSize, (await h.airlock.store.auditHead()).treeSize);
        assert.equal(anchored.format, 'airlock-audit-anchor/v2');
        await rewriteAnchoredEntry(h, store);
        await raw(h, store, 'DELETE FROM audit_tree_heads');
        await h.restart();
        assert.deepEqual(await signStatus(h, token), { status: 503, code: 'audit_integrity_failed' });
        // One alert from the shutdown checkpoint of the old instance, one from the start-up check of the new one.
        assert.equal((await alerts(h)).length, 2);
        assert.equal((await h.admin('POST', '/v1/audit/verify')).body.ok, false);
      } finally {
        await h.close();
      }
    });

    test('an untampered log keeps signing across restarts and checkpoints extend the anchor', async () => {
      const { h, token } = await loggedHarness(store);
      try {
        await h.restart();
        assert.equal((await signStatus(h, token, 50)).status, 200);
        assert.ok(await h.airlock.audit.checkpoint());
        await h.restart();
        assert.equal((await signStatus(h, token, 51)).status, 200);
        const verified = (await h.admin('POST', '/v1/audit/verify')).body;
        assert.equal(verified.ok, true);
        assert.equal((await alerts(h)).length, 0);
      } finally {
        await h.close();
      }
    });

    test('truncation below the anchor is detected even with every checkpoint deleted', async () => {
      const { h, token } = await loggedHarness(store);
      try {
        const anchored = (await h.airlock.store.auditHead()).seq;
        await raw(h, store, `DELETE FROM audit_entries WHERE seq > ${anchored - 3}; DELETE FROM audit_tree_heads`);
        await assert.rejects(h.airlock.audit.checkpoint(), isCode('audit_integrity_failed'));
        assert.match((await alerts(h))[0]!.data.reason, new RegExp(`log truncated: the anchor covers ${anchored} entries, the log has ${anchored - 3}`));
        assert.equal((await signStatus(h, token)).code, 'audit_integrity_failed');
        const verified = (await h.admin('POST', '/v1/audit/verify')).body;
        assert.equal(verified.ok, false);
        // The alert the check appended lands after the truncated log on SQLite; on PostgreSQL the leaf counter
        // still remembers the deleted leaves, so it lands after a hole.
        assert.match(verified.firstBad.reason, store === 'sqlite' ? /truncated/ : /truncated|\(leaf \d+\) is missing/);
      } finally {
        await h.close();
      }
    });

    test('documented limit: entries appended after the anchor can be removed without detection', async () => {
      const { h, token } = await loggedHarness(store);
      try {
        const anchored = (await h.airlock.store.auditHead()).seq;
        for (let i = 0; i < 3; i++) assert.equal((await signStatus(h, token, 60 + i)).status, 200);
        await raw(h, store, `DELETE FROM audit_entries WHERE seq > ${anchored}`);
        // Nothing signed covers those entries, and nothing outside the database counts them.
        const verified = (await h.admin('POST', '/v1/audit/verify')).body;
        assert.equal(verified.ok, true);
        assert.equal(verified.entries, anchored);
        assert.equal(await h.airlock.audit.checkpoint(), undefined);
        assert.equal((await signStatus(h, token, 70)).status, 200);
      } finally {
        await h.close();
      }
    });

    test('a forged tree head signature (one byte flipped) fails verify', async () => {
      const { h } = await loggedHarness(store);
      try {
        const [cp] = await h.airlock.store.listTreeHeads();
        const sig = cp!.signature;
        const flipped = `${sig.slice(0, 10)}${((parseInt(sig[10]!, 16) ^ 1).toString(16))}${sig.slice(11)}`;
        await raw(h, store, `UPDATE audit_tree_heads SET signature = '${flipped}' WHERE tree_size = ${cp!.treeSize}`);
        const verified = (await h.admin('POST', '/v1/audit/verify')).body;
        assert.equal(verified.ok, false);
        assert.equal(verified.firstBad.seq, cp!.treeSize);
        assert.match(verified.firstBad.reason, /invalid signature/);
      } finally {
        await h.close();
      }
    });

    test('a tree head signed by a foreign key fails verify, even with that key written into the store', async () => {
      const { h, token } = await loggedHarness(store);
      try {
        assert.equal((await signStatus(h, token, 40)).status, 200);
        const head = await h.airlock.store.auditHead();
        const foreign = schnorr.utils.randomSecretKey();
        const publicKey = bytesToHex(schnorr.getPublicKey(foreign));
        const at = Date.now();
        const rootHash = 'ab'.repeat(32);
        const signature = bytesToHex(schnorr.sign(treeHeadDigest({ treeSize: head.treeSize, rootHash, at }), foreign));
        await raw(h, store, `INSERT INTO audit_tree_heads (tree_size, root_hash, at, public_key, signature) VALUES (${head.treeSize}, '${rootHash}', ${at}, '${publicKey}', '${signature}'); UPDATE meta SET value = '${publicKey}' WHERE key = 'audit_public_key'`);
        const verified = (await h.admin('POST', '/v1/audit/verify')).body;
        assert.equal(verified.ok, false);
        assert.equal(verified.firstBad.seq, head.seq);
        assert.match(verified.firstBad.reason, /unknown key/);
      } finally {
        await h.close();
      }
    });

    test('a tree head naming the audit key but signed by another key fails verify', async () => {
      const { h, token } = await loggedHarness(store);
      try {
        assert.equal((await signStatus(h, token, 41)).status, 200);
        const head = await h.airlock.store.auditHead();
        const auditKey = (await h.admin('GET', '/v1/audit/checkpoints')).body.publicKey;
        const at = Date.now();
        const rootHash = 'ab'.repeat(32);
        const signature = bytesToHex(schnorr.sign(treeHeadDigest({ treeSize: head.treeSize, rootHash, at }), schnorr.utils.randomSecretKey()));
        await raw(h, store, `INSERT INTO audit_tree_heads (tree_size, root_hash, at, public_key, signature) VALUES (${head.treeSize}, '${rootHash}', ${at}, '${auditKey}', '${signature}')`);
        const verified = (await h.admin('POST', '/v1/audit/verify')).body;
        assert.equal(verified.ok, false);
        assert.match(verified.firstBad.reason, /invalid signature/);
      } finally {
        await h.close();
      }
    });

    test('acknowledge: audited, re-anchors at the head under a new generation, signing resumes', async () => {
      const { h, token } = await loggedHarness(store);
      try {
        assert.equal((await h.admin('POST', '/v1/audit/acknowledge')).status, 409, 'nothing to acknowledge on an intact log');
        await rewriteAnchoredEntry(h, store);
        await raw(h, store, 'DELETE FROM audit_tree_heads');
        await assert.rejects(h.airlock.audit.checkpoint(), isCode('audit_integrity_failed'));
        assert.equal(await h.airlock.audit.checkpoint().catch((e: unknown) => isAirlockError(e) && e.code), 'audit_integrity_failed');

        const ack = await h.admin('POST', '/v1/audit/acknowledge');
        assert.equal(ack.status, 200);
        assert.equal(ack.body.anchor.generation, 1);
        assert.equal(ack.body.previous.generation, 0);
        assert.match(ack.body.failure.reason, /anchored tree head/);
        const head = await h.airlock.store.auditHead();
        assert.equal(ack.body.anchor.treeSize, head.treeSize);
        const [entry] = (await h.admin('GET', '/v1/audit?type=audit.integrity_acknowledged')).body.entries;
        assert.equal(entry.actor, 'operator');
        assert.equal(entry.data.previousAnchor.treeSize, ack.body.previous.treeSize);

        assert.equal((await signStatus(h, token, 80)).status, 200);
        assert.ok(await h.airlock.audit.checkpoint());
        await h.restart(); // the new generation is on disk
        assert.equal((await signStatus(h, token, 81)).status, 200);
        // The rewrite is self-consistent: what records it from now on is the acknowledgement entry (and exports).
        const verified = (await h.admin('POST', '/v1/audit/verify')).body;
        assert.equal(verified.ok, true);
        assert.ok(verified.entries > entry.seq);
      } finally {
        await h.close();
      }
    });

    test('without an anchor file, the newest tree head the audit key signed in the store is the anchor', async () => {
      const { h, token } = await loggedHarness(store);
      try {
        const cp = { seq: (await h.airlock.store.lastTreeHead())!.treeSize };
        rmSync(auditAnchorPath(h.config.vaultPath));
        await h.restart();
        rmSync(auditAnchorPath(h.config.vaultPath), { force: true }); // in case the shutdown checkpoint wrote one
        await raw(h, store, `DELETE FROM audit_entries WHERE seq > ${cp!.seq - 2}`);
        await h.restart();
        assert.deepEqual(await signStatus(h, token), { status: 503, code: 'audit_integrity_failed' });
        assert.match((await alerts(h)).at(-1)!.data.reason, /log truncated/);
      } finally {
        await h.close();
      }
    });

    test('an anchor file that the audit key did not sign halts signing', async () => {
      const { h, token } = await loggedHarness(store);
      try {
        const file = auditAnchorPath(h.config.vaultPath);
        assert.ok(existsSync(file));
        const anchor = JSON.parse(readFileSync(file, 'utf8'));
        const foreign = schnorr.utils.randomSecretKey();
        const forged = { ...anchor, treeSize: 1, signature: bytesToHex(schnorr.sign(treeHeadDigest({ treeSize: 1, rootHash: anchor.rootHash, at: anchor.at }), foreign)) };
        rmSync(file);
        writeFileSync(file, JSON.stringify({ ...forged, generation: anchor.generation + 5 }), { mode: 0o600 });
        await assert.rejects(h.airlock.audit.checkpoint(), isCode('audit_integrity_failed'));
        assert.equal((await signStatus(h, token)).code, 'audit_integrity_failed');
      } finally {
        await h.close();
      }
    });
  });
}
