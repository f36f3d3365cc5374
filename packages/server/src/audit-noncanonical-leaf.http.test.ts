// A version-3 leaf is its prefix, the RFC 8785 canonical JSON of one object, and its suffix (docs/audit-format.md).
// An attacker who can write the database (INSERT is allowed with the append-only triggers on) appends a row whose
// columns frame its leaf but whose "data" is not that: several members spliced in after a closing brace, or an
// object that is JSON but not canonical (duplicate keys, unsorted keys). Such a leaf must never be signed into
// a tree head: the checkpointer halts and alerts as for any other integrity failure, signing halts, and verify
// names the entry (on one thread and in worker threads). Found by review.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { auditLeafPrefix, auditLeafSuffix, isAirlockError, leafHash, verifyStoredAudit, type AuditLeafFields, type ParallelVerifyOptions } from '@airlock/core';
import { auditVerifyOptions, verifySchnorr } from './runtime.ts';
import { ALICE, provisionAgent, startHarness, usdcPolicy, usdcTransfer, type Harness, type StoreKind } from './testing/harness.ts';

interface RawStore {
  rawExec(sql: string): Promise<void>;
}

const isCode = (code: string) => (e: unknown) => isAirlockError(e) && e.code === code;

/** 8 signed requests and a signed tree head over them. */
async function loggedHarness(store: StoreKind): Promise<{ h: Harness; token: string }> {
  const h = await startHarness({ store });
  const { token } = await provisionAgent(h, { policy: usdcPolicy() });
  for (let i = 0; i < 8; i++) assert.equal((await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 1_000_000n, i) })).status, 200);
  assert.ok(await h.airlock.audit.checkpoint());
  assert.equal((await h.admin('POST', '/v1/audit/verify')).body.ok, true, 'clean log verifies');
  return { h, token };
}

/**
 * INSERTs (the append-only triggers on) the next leaf of the log: its columns framing `data` exactly, its hash the leaf's. Returns its
 * seq (well past the last one: on PostgreSQL the next appends draw seqs from a sequence the INSERT does not move).
 */
async function insertLeaf(h: Harness, store: StoreKind, data: string): Promise<number> {
  const { seq: last, treeSize } = await h.airlock.store.auditHead();
  const f: AuditLeafFields = { seq: (last ?? treeSize) + 1000, at: Date.now(), type: 'sign.request', actor: 'agent', decision: 'deny' };
  const leaf = auditLeafPrefix(f) + data + auditLeafSuffix(f);
  const hash = Buffer.from(leafHash(leaf)).toString('hex');
  await (h.airlock.store as unknown as RawStore).rawExec(
    `INSERT INTO audit_entries (seq, at, type, actor, decision, hash, hash_version, leaf_index, leaf) VALUES (${f.seq}, ${f.at}, '${f.type}', '${f.actor}', '${f.decision}', '${hash}', 3, ${treeSize}, '${leaf.replace(/'/g, "''")}')` +
      // PostgreSQL places leaves from a counter row: moved past the forged leaf, as the attacker would.
      (store === 'postgres' ? '; UPDATE audit_leaf_counter SET next_leaf = next_leaf + 1' : ''),
  );
  return f.seq;
}

async function signStatus(h: Harness, token: string, nonce: number): Promise<{ status: number; code?: string }> {
  const res = await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 1n, nonce) });
  return { status: res.status, code: res.body?.error?.code };
}

const NOT_CANONICAL = /not the canonical JSON of an object/;

const forgedData: [string, string][] = [
  // The reviewer's repro: members spliced after the object, the leaf still starting with { and ending with }.
  ['members spliced after the data object', '{"requestHash":"aa"},"decision":"allow","z":{"to":"0xEVIL","to":"0xGOOD"}'],
  ['an object with a duplicate key', '{"to":"0xEVIL","to":"0xGOOD"}'],
  ['an object with unsorted keys', '{"b":1,"a":2}'],
  ['an object with whitespace', '{ "a": 1 }'],
  ['an object with a non-canonical number', '{"a":1.0}'],
];

for (const store of ['sqlite', 'postgres'] as StoreKind[]) {
  describe(`a version-3 leaf whose data is not canonical JSON (${store})`, () => {
    for (const [name, data] of forgedData) {
      test(`${name}: no head is signed over it, signing halts with an alert, verify names the entry`, async () => {
        const { h, token } = await loggedHarness(store);
        try {
          const signed = (await h.airlock.store.lastTreeHead())!.treeSize;
          const seq = await insertLeaf(h, store, data);
          for (let i = 0; i < 2; i++) assert.equal((await signStatus(h, token, 20 + i)).status, 200);
          await assert.rejects(h.airlock.audit.checkpoint(), isCode('audit_integrity_failed'));
          assert.equal((await h.airlock.store.lastTreeHead())!.treeSize, signed, 'no tree head signed over the forged leaf');
          const [alert] = (await h.admin('GET', '/v1/audit?type=alert.audit_integrity')).body.entries;
          assert.ok(alert, 'alert.audit_integrity appended');
          assert.equal(alert.data.seq, seq);
          assert.match(alert.data.reason, NOT_CANONICAL);
          assert.deepEqual(await signStatus(h, token, 30), { status: 503, code: 'audit_integrity_failed' });
          // Still refused at the next tick (no head slips through later).
          await assert.rejects(h.airlock.audit.checkpoint(), isCode('audit_integrity_failed'));
          assert.equal((await h.airlock.store.lastTreeHead())!.treeSize, signed);

          const result = (await h.admin('POST', '/v1/audit/verify')).body;
          assert.equal(result.ok, false, JSON.stringify(result));
          assert.equal(result.firstBad.seq, seq);
          assert.match(result.firstBad.reason, NOT_CANONICAL);
          // The same in worker threads (the path `airlock audit verify` takes on a long log).
          const key = await h.airlock.audit.auditPublicKey();
          const workers = auditVerifyOptions(h.config.storeUrl).workers!;
          const options: ParallelVerifyOptions = { workers: { ...workers, threads: 2 }, minEntriesForWorkers: 0, rangeLeaves: 4 };
          const many = await verifyStoredAudit(h.airlock.store, verifySchnorr, key, [], options);
          assert.deepEqual(many, await verifyStoredAudit(h.airlock.store, verifySchnorr, key));
          assert.equal(many.firstBad?.seq, seq);
        } finally {
          await h.close();
        }
      });
    }

    test('a canonical object inserted the same way is not refused for its form (only the columns and hash are checked)', async () => {
      const { h, token } = await loggedHarness(store);
      try {
        await insertLeaf(h, store, '{"a":2,"b":[1,"x"],"c":{"d":null}}');
        assert.equal((await signStatus(h, token, 20)).status, 200);
        assert.ok(await h.airlock.audit.checkpoint(), 'a head is signed');
        assert.equal((await h.admin('POST', '/v1/audit/verify')).body.ok, true);
      } finally {
        await h.close();
      }
    });
  });
}
