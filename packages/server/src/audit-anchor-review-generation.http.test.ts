// The anchor file's generation is not signed (only the tree head in it is). Whoever can write the file beside the
// vault and the database rewrote the log back to an older genuine head, put that head in the file under a higher
// generation, and the running daemon adopted it: the integrity halt was lifted and signing resumed with no
// operator, no admin token and no `audit.integrity_acknowledged` entry (found by review). A running instance now
// moves to a new generation only with its acknowledgement in the log; the genuine acknowledge, made on another
// instance sharing the vault directory and the database, still lifts the halt on this one.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { isAirlockError, type SignedTreeHead } from '@airlock/core';
import { auditAnchorPath } from './audit-anchor-file.ts';
import { createApp } from './http/app.ts';
import { AirlockHolder } from './http/holder.ts';
import { openAirlock } from './runtime.ts';
import { rawAudit, rebuildStoredTree } from './testing/forge-audit.ts';
import { ALICE, provisionAgent, startHarness, TEST_PASSPHRASE, TEST_VAULT, usdcPolicy, usdcTransfer, type Harness, type StoreKind } from './testing/harness.ts';

const isCode = (code: string) => (e: unknown) => isAirlockError(e) && e.code === code;

async function signStatus(h: Harness, token: string, nonce: number): Promise<{ status: number; code?: string }> {
  const res = await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 1n, nonce) });
  return { status: res.status, code: res.body?.error?.code };
}

const readAnchor = (h: Harness) => JSON.parse(readFileSync(auditAnchorPath(h.config.vaultPath), 'utf8'));

/**
 * Signed requests and a head over them (the older head, size M), then more and a newer head (size N, anchored in
 * the file). `plant`: before the older head, the database's owner appends a well-formed acknowledgement entry of
 * its own for the generation it will claim, so the older head covers it.
 */
async function twoHeads(store: StoreKind, plant?: number): Promise<{ h: Harness; token: string; older: SignedTreeHead }> {
  const h = await startHarness({ store, manualClock: true });
  const { token } = await provisionAgent(h, { policy: usdcPolicy() });
  for (let i = 0; i < 4; i++) assert.equal((await signStatus(h, token, i)).status, 200);
  if (plant !== undefined) {
    await h.airlock.store.transaction((tx) => tx.appendAudit({ at: h.clock!.now(), type: 'audit.integrity_acknowledged', actor: 'operator', data: { by: 'operator', generation: plant } }));
  }
  const older = (await h.airlock.audit.checkpoint())!;
  assert.ok(older);
  h.clock!.advance(60_000);
  for (let i = 4; i < 8; i++) assert.equal((await signStatus(h, token, i)).status, 200);
  assert.ok(await h.airlock.audit.checkpoint());
  assert.ok(readAnchor(h).treeSize > older.treeSize);
  return { h, token, older };
}

/** The database's owner cuts the log back to the older head (entries, heads and stored tree as they were then). */
async function rollBackTo(h: Harness, store: StoreKind, older: SignedTreeHead): Promise<void> {
  const counter = store === 'postgres' ? `; UPDATE audit_leaf_counter SET next_leaf = ${older.treeSize}` : '';
  await rawAudit(h, store, `DELETE FROM audit_entries WHERE leaf_index >= ${older.treeSize}; DELETE FROM audit_tree_heads WHERE tree_size > ${older.treeSize}${counter}`);
  await rebuildStoredTree(h, store);
}

/** ...and puts the older genuine head in the anchor file under a higher generation. */
function writeRolledBackAnchor(h: Harness, older: SignedTreeHead, generation: number): void {
  const { treeSize, rootHash, at, publicKey, signature } = older;
  writeFileSync(auditAnchorPath(h.config.vaultPath), JSON.stringify({ format: 'airlock-audit-anchor/v2', generation, treeSize, rootHash, at, publicKey, signature }), { mode: 0o600 });
}

async function assertStillHalted(h: Harness, token: string, older: SignedTreeHead, planted: number): Promise<void> {
  await assert.rejects(h.airlock.audit.checkpoint(), isCode('audit_integrity_failed'));
  assert.deepEqual(await signStatus(h, token, 90), { status: 503, code: 'audit_integrity_failed' });
  // Nothing was signed over the rolled-back log, and no acknowledgement stands behind the move.
  const heads = await h.airlock.store.listTreeHeads();
  assert.equal(Math.max(...heads.map((x) => x.treeSize)), older.treeSize);
  const acknowledged = (await h.admin('GET', '/v1/audit?type=audit.integrity_acknowledged')).body.entries;
  assert.equal(acknowledged.length, planted);
  const alerts = (await h.admin('GET', '/v1/audit?type=alert.audit_integrity')).body.entries as { data: { reason: string } }[];
  assert.match(alerts.at(-1)!.data.reason, /moves to generation \d+ without its acknowledgement/);
}

for (const store of ['sqlite', 'postgres'] as StoreKind[]) {
  describe(`audit anchor generation (${store})`, () => {
    test('an older genuine head put in the anchor file under a higher generation does not lift the halt', async () => {
      const { h, token, older } = await twoHeads(store);
      try {
        const { generation } = readAnchor(h);
        await rollBackTo(h, store, older);
        await assert.rejects(h.airlock.audit.checkpoint(), isCode('audit_integrity_failed'));
        writeRolledBackAnchor(h, older, generation + 1);
        await assertStillHalted(h, token, older, 0);
      } finally {
        await h.close();
      }
    });

    test('an acknowledgement entry planted under the older head does not make it an acknowledgement', async () => {
      const { h, token, older } = await twoHeads(store, 1);
      try {
        await rollBackTo(h, store, older);
        await assert.rejects(h.airlock.audit.checkpoint(), isCode('audit_integrity_failed'));
        writeRolledBackAnchor(h, older, 1);
        await assertStillHalted(h, token, older, 1);
      } finally {
        await h.close();
      }
    });

    test('a genuine head of the generation before an acknowledgement, put in the file under the new one, does not undo the acknowledgement', async () => {
      const { h, token, older } = await twoHeads(store);
      try {
        // Generation 0 ends at the newer head (size N). The database's owner hides the entries after the older head
        // (out of the tree, kept), the signing halts, and the operator acknowledges: generation 1.
        const newer = (await h.airlock.store.lastTreeHead())!;
        const counter = (next: number) => (store === 'postgres' ? `; UPDATE audit_leaf_counter SET next_leaf = ${next}` : '');
        await rawAudit(h, store, `UPDATE audit_entries SET leaf_index = -1 - leaf_index WHERE leaf_index >= ${older.treeSize}; DELETE FROM audit_tree_heads WHERE tree_size > ${older.treeSize}${counter(older.treeSize)}`);
        await rebuildStoredTree(h, store);
        await assert.rejects(h.airlock.audit.checkpoint(), isCode('audit_integrity_failed'));
        h.clock!.advance(60_000);
        const ack = await h.admin('POST', '/v1/audit/acknowledge');
        assert.equal(ack.status, 200);
        assert.ok(ack.body.anchor.treeSize < newer.treeSize);
        // Then puts generation 0 back: the acknowledgement and the alert go, the hidden entries return, and the
        // newer generation-0 head (larger than the acknowledged one) goes in the file as generation 1.
        await rawAudit(h, store, `DELETE FROM audit_entries WHERE leaf_index >= ${older.treeSize}; UPDATE audit_entries SET leaf_index = -1 - leaf_index WHERE leaf_index < 0${counter(newer.treeSize)}`);
        await rebuildStoredTree(h, store);
        writeRolledBackAnchor(h, newer, 1);
        const heads = (await h.airlock.store.listTreeHeads()).length;
        await assert.rejects(h.airlock.audit.checkpoint(), isCode('audit_integrity_failed'));
        assert.deepEqual(await signStatus(h, token, 94), { status: 503, code: 'audit_integrity_failed' });
        const alerts = (await h.admin('GET', '/v1/audit?type=alert.audit_integrity')).body.entries as { data: { reason: string } }[];
        assert.match(alerts.at(-1)!.data.reason, /does not extend the tree head of size \d+ this instance anchored/);
        assert.equal((await h.airlock.store.listTreeHeads()).length, heads, 'nothing signed');
      } finally {
        await h.close();
      }
    });

    test('an anchor file at generation 2^53 - 1 is unreadable (acknowledge would have written 2^53); acknowledge re-anchors at generation 1', async () => {
      const { h, token } = await twoHeads(store);
      try {
        writeFileSync(auditAnchorPath(h.config.vaultPath), JSON.stringify({ ...readAnchor(h), generation: Number.MAX_SAFE_INTEGER }), { mode: 0o600 });
        await assert.rejects(h.airlock.audit.checkpoint(), isCode('audit_integrity_failed'));
        assert.deepEqual(await signStatus(h, token, 92), { status: 503, code: 'audit_integrity_failed' });
        const alerts = (await h.admin('GET', '/v1/audit?type=alert.audit_integrity')).body.entries as { data: { reason: string } }[];
        assert.match(alerts.at(-1)!.data.reason, /unreadable/);
        const ack = await h.admin('POST', '/v1/audit/acknowledge');
        assert.equal(ack.status, 200);
        assert.equal(ack.body.anchor.generation, 1);
        assert.equal(readAnchor(h).generation, 1);
        await h.restart();
        assert.equal((await signStatus(h, token, 93)).status, 200);
      } finally {
        await h.close();
      }
    });

    test('the genuine acknowledge on another instance sharing the vault directory lifts the halt on this one', async () => {
      const { h, token, older } = await twoHeads(store);
      const other = await openAirlock(h.config, TEST_PASSPHRASE, { vault: TEST_VAULT, timers: false, clock: h.clock! });
      try {
        const otherApp = createApp(new AirlockHolder(other), { bodyLimitBytes: h.config.bodyLimitBytes, sessionRate: { perSecond: 0, burst: 0 } });
        await rollBackTo(h, store, older);
        await assert.rejects(h.airlock.audit.checkpoint(), isCode('audit_integrity_failed'));
        await assert.rejects(other.audit.checkpoint(), isCode('audit_integrity_failed'));
        h.clock!.advance(60_000);
        const ack = await otherApp.request('/v1/audit/acknowledge', { method: 'POST', headers: { authorization: `Bearer ${h.adminToken}` } });
        assert.equal(ack.status, 200);
        assert.equal(((await ack.json()) as { anchor: { generation: number } }).anchor.generation, 1);
        // This instance reads the new generation from the file, finds its acknowledgement in the tree, and resumes.
        assert.equal(await h.airlock.audit.checkpoint(), undefined);
        assert.equal((await signStatus(h, token, 91)).status, 200);
        assert.ok(await h.airlock.audit.checkpoint());
        assert.equal(readAnchor(h).generation, 1);
      } finally {
        await other.close();
        await h.close();
      }
    });
  });
}
