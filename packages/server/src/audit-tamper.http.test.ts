// The audit log detects tampering by someone with full database access (who can drop the
// append-only triggers): edits, deletions, reordering, truncation, and a rewritten chain.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { auditLeaf, canonicalJson, leafHash } from '@airlock/core';
import { ALICE, provisionAgent, startHarness, usdcPolicy, usdcTransfer, type Harness, type StoreKind } from './testing/harness.ts';

interface RawStore {
  rawExec(sql: string): Promise<void>;
}

const DROP_TRIGGERS: Record<StoreKind, string> = {
  sqlite: 'DROP TRIGGER audit_entries_no_update; DROP TRIGGER audit_entries_no_delete;',
  postgres: 'DROP TRIGGER audit_entries_append_only ON audit_entries; DROP TRIGGER audit_entries_no_truncate ON audit_entries;',
};

async function loggedHarness(store: StoreKind): Promise<Harness> {
  const h = await startHarness({ store });
  const { token } = await provisionAgent(h, { policy: usdcPolicy() });
  for (let i = 0; i < 8; i++) await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 1_000_000n, i) });
  await h.airlock.audit.checkpoint();
  const ok = await h.admin('POST', '/v1/audit/verify');
  assert.equal(ok.body.ok, true, 'clean log verifies');
  return h;
}

async function tamper(h: Harness, store: StoreKind, sql: string): Promise<{ ok: boolean; firstBad?: { seq: number; reason: string } }> {
  const raw = h.airlock.store as unknown as RawStore;
  await raw.rawExec(DROP_TRIGGERS[store]);
  await raw.rawExec(sql);
  return (await h.admin('POST', '/v1/audit/verify')).body;
}

for (const store of ['sqlite', 'postgres'] as StoreKind[]) {
  describe(`audit tamper detection (${store})`, () => {
    test('the store itself refuses UPDATE and DELETE on audit entries', async () => {
      const h = await loggedHarness(store);
      try {
        const raw = h.airlock.store as unknown as RawStore;
        await assert.rejects(raw.rawExec("UPDATE audit_entries SET decision = 'deny' WHERE seq = 3"));
        await assert.rejects(raw.rawExec('DELETE FROM audit_entries WHERE seq = 3'));
      } finally {
        await h.close();
      }
    });

    const cases: [string, string, number, RegExp][] = [
      ['an edited entry', "UPDATE audit_entries SET decision = 'deny' WHERE seq = 5", 5, /edited/],
      ['a deleted entry', 'DELETE FROM audit_entries WHERE seq = 5', 5, /missing/],
      ['reordered entries (their seqs swapped)', 'UPDATE audit_entries SET seq = -1 WHERE seq = 5; UPDATE audit_entries SET seq = 5 WHERE seq = 6; UPDATE audit_entries SET seq = 6 WHERE seq = -1', 6, /do not match its stored leaf \(edited\)/],
      ['an edited leaf', "UPDATE audit_entries SET leaf = replace(leaf, '\"allow\"', '\"deny\"') WHERE seq = 5", 5, /edited/],
      ['a truncated log', 'DELETE FROM audit_entries WHERE seq > 7', 8, /truncated/],
    ];
    for (const [name, sql, seq, reason] of cases) {
      test(`${name} is detected at the first bad entry`, async () => {
        const h = await loggedHarness(store);
        try {
          const result = await tamper(h, store, sql);
          assert.equal(result.ok, false);
          assert.equal(result.firstBad!.seq, seq);
          assert.match(result.firstBad!.reason, reason);
        } finally {
          await h.close();
        }
      });
    }

    test('reordered leaves (their places in the tree swapped) fail against the signed tree head', async () => {
      const h = await loggedHarness(store);
      try {
        const head = await h.airlock.store.lastTreeHead();
        assert.ok(head && head.treeSize > 6, 'a signed head covers the swapped leaves');
        // Every entry still matches its own leaf: only the order changed, which only the tree records.
        const result = await tamper(h, store, 'UPDATE audit_entries SET leaf_index = -1 WHERE leaf_index = 4; UPDATE audit_entries SET leaf_index = 4 WHERE leaf_index = 5; UPDATE audit_entries SET leaf_index = 5 WHERE leaf_index = -1');
        assert.equal(result.ok, false);
        assert.match(result.firstBad!.reason, /does not match the signed tree head/);
      } finally {
        await h.close();
      }
    });

    test('the checkpointer refuses to sign over a tampered segment', async () => {
      const h = await loggedHarness(store);
      try {
        const { token } = await provisionAgent(h, { policy: usdcPolicy() });
        await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 1n) });
        const head = await h.airlock.store.auditHead();
        await tamper(h, store, `UPDATE audit_entries SET decision = 'deny' WHERE seq = ${head.seq}`);
        await assert.rejects(h.airlock.audit.checkpoint(), /refusing to sign a checkpoint/);
        assert.ok(((await h.airlock.store.lastTreeHead())?.treeSize ?? 0) < head.treeSize);
      } finally {
        await h.close();
      }
    });

    test('a self-consistent rewrite (edited entry, its leaf and leaf hash recomputed) fails against the signed tree head', async () => {
      const h = await loggedHarness(store);
      try {
        const [entry] = await h.airlock.store.readAudit(4, 1);
        const raw = h.airlock.store as unknown as RawStore;
        await raw.rawExec(DROP_TRIGGERS[store]);
        // The attacker hides a request: flips entry 4 to a denial, with a leaf and hash that match it.
        const edited = { ...entry!, decision: 'deny' as const };
        const leaf = auditLeaf(edited, canonicalJson(edited.data));
        const hash = Buffer.from(leafHash(leaf)).toString('hex');
        await raw.rawExec(`UPDATE audit_entries SET decision = 'deny', leaf = '${leaf.replace(/'/g, "''")}', hash = '${hash}' WHERE seq = 4`);
        const result = (await h.admin('POST', '/v1/audit/verify')).body;
        assert.equal(result.ok, false, 'the entry is self-consistent, but the signed tree head pins the old root');
        assert.match(result.firstBad.reason, /does not match the signed tree head/);
      } finally {
        await h.close();
      }
    });

    test('a self-consistent entry inserted outside the tree (no leaf index, or a negative one) is reported and never listed (found by review)', async () => {
      for (const [seq, leafIndex] of [[-7, 'NULL'], [900_001, '-3']] as const) {
        const h = await loggedHarness(store);
        try {
          // A fake approval granted by the CFO, its leaf and hash computed as appendAudit would: the append-only
          // triggers allow INSERT, and the tree never reads a row without a leaf index.
          const fake = { seq, at: Date.now(), type: 'approval.granted', actor: 'operator' as const, decision: 'allow' as const, data: { approvalId: 'apr_fake', by: 'cfo' } };
          const leaf = auditLeaf(fake, canonicalJson(fake.data));
          const hash = Buffer.from(leafHash(leaf)).toString('hex');
          await (h.airlock.store as unknown as RawStore).rawExec(
            `INSERT INTO audit_entries (seq, at, type, actor, decision, hash, hash_version, leaf_index, leaf) VALUES (${seq}, ${fake.at}, 'approval.granted', 'operator', 'allow', '${hash}', 3, ${leafIndex}, '${leaf.replace(/'/g, "''")}')`,
          );
          const result = (await h.admin('POST', '/v1/audit/verify')).body;
          assert.equal(result.ok, false, JSON.stringify(result));
          assert.equal(result.firstBad.seq, seq);
          assert.match(result.firstBad.reason, /not in the tree/);
          const listed = (await h.admin('GET', '/v1/audit?type=approval.granted')).body.entries;
          assert.deepEqual(listed, [], 'a row outside the log is not shown as an entry');
          assert.ok(!(await h.airlock.store.readAudit(-100, 100)).some((e) => e.seq === seq));
        } finally {
          await h.close();
        }
      }
    });
  });
}
