// `airlock audit verify --offline` and `--file` check signed tree heads against the audit key the operator
// holds (the anchor beside the vault, or --public-key), never a key an attacker could write into the
// database or the export: forged and foreign checkpoints fail.
import { after, test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { schnorr } from '@noble/curves/secp256k1.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { auditLeaf, canonicalJson, leafHash, treeHeadDigest, verifyStoredAudit, type AuditEntry, type SignedTreeHead } from '@airlock/core';
import { auditVerifyOptions, verifySchnorr } from '../../server/src/runtime.ts';
import { ALICE, provisionAgent, startHarness, usdcPolicy, usdcTransfer, type Harness, type StoreKind } from '../../server/src/testing/harness.ts';
import { EXPORT_FORMAT, verifyExport } from './commands/audit.ts';
import { cliEnv, runCli } from './testing/cli-process.ts';

interface RawStore {
  rawExec(sql: string): Promise<void>;
}

const DROP_TRIGGERS: Record<StoreKind, string> = {
  sqlite: 'DROP TRIGGER audit_entries_no_update; DROP TRIGGER audit_entries_no_delete; DROP TRIGGER audit_tree_heads_no_delete;',
  postgres: 'DROP TRIGGER audit_entries_append_only ON audit_entries; DROP TRIGGER audit_tree_heads_append_only ON audit_tree_heads;',
};

async function loggedHarness(store: StoreKind): Promise<Harness> {
  const h = await startHarness({ store });
  const { token } = await provisionAgent(h, { policy: usdcPolicy() });
  for (let i = 0; i < 6; i++) assert.equal((await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 1_000_000n, i) })).status, 200);
  assert.ok(await h.airlock.audit.checkpoint());
  return h;
}

/** What `airlock audit export` writes: a header with the signed heads and the public key, then every entry. */
async function exportFile(h: Harness, dir: string, name: string, edit: (header: { publicKey: string; treeHeads: SignedTreeHead[] }) => void = () => {}): Promise<string> {
  const header = { format: EXPORT_FORMAT, publicKey: await h.airlock.audit.auditPublicKey(), treeHeads: await h.airlock.store.listTreeHeads(), checkpoints: await h.airlock.store.listCheckpoints() };
  edit(header);
  const entries = await h.airlock.store.readAudit(1, 10_000);
  const path = join(dir, name);
  writeFileSync(path, [header, ...entries].map((l) => JSON.stringify(l)).join('\n') + '\n');
  return path;
}

const flipByte = (hex: string) => `${hex.slice(0, 6)}${(parseInt(hex[6]!, 16) ^ 1).toString(16)}${hex.slice(7)}`;

for (const store of ['sqlite', 'postgres'] as StoreKind[]) {
  describe(`audit verify outside the daemon (${store})`, () => {
    test('--offline: a rewritten entry with its signed heads deleted and the stored key swapped fails against the anchor beside the vault', async () => {
      const h = await loggedHarness(store);
      try {
        const args = ['audit', 'verify', '--offline', '--data-dir', h.config.dataDir, '--store', h.config.storeUrl];
        const clean = await runCli(args, cliEnv());
        assert.equal(clean.code, 0, clean.stderr);
        assert.match(clean.stdout, /^OK: /);

        // Entry 4 becomes a denial, with a leaf and leaf hash that match it (self-consistent).
        const [e] = await h.airlock.store.readAudit(4, 1);
        const edited = { ...e!, decision: 'deny' as const };
        const leaf = auditLeaf(edited, canonicalJson(edited.data));
        const statements = [DROP_TRIGGERS[store], `UPDATE audit_entries SET decision = 'deny', leaf = '${leaf.replace(/'/g, "''")}', hash = '${Buffer.from(leafHash(leaf)).toString('hex')}' WHERE seq = 4`];
        const foreign = bytesToHex(schnorr.getPublicKey(schnorr.utils.randomSecretKey()));
        statements.push('DELETE FROM audit_tree_heads', `UPDATE meta SET value = '${foreign}' WHERE key = 'audit_public_key'`);
        await (h.airlock.store as unknown as RawStore).rawExec(statements.join('; '));

        const r = await runCli(args, cliEnv());
        assert.equal(r.code, 2, r.stdout + r.stderr);
        assert.match(r.stdout, /^FAILED at entry \d+: the tree up to the entry at leaf \d+ does not match the signed tree head/);
      } finally {
        await h.close();
      }
    });

    test('worker threads: a log whose first ranges of leaves were deleted, its heads with them, fails as on one thread', async () => {
      const h = await startHarness({ store });
      try {
        const { token } = await provisionAgent(h, { policy: usdcPolicy() });
        for (let i = 0; i < 10; i++) assert.equal((await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 1_000n, i) })).status, 200);
        const key = await h.airlock.audit.auditPublicKey();
        const workers = auditVerifyOptions(h.config.storeUrl).workers;
        assert.ok(workers, 'a file or PostgreSQL store is reachable from workers');
        const options = { workers: { ...workers, threads: 2 }, minEntriesForWorkers: 0, rangeLeaves: 4 };
        const raw = h.airlock.store as unknown as RawStore;
        await raw.rawExec(DROP_TRIGGERS[store]);
        // Without heads nothing signed covers leaf 0: only the join checking that the ranges start there sees the cut.
        for (const cut of [4, 8]) {
          await raw.rawExec(`DELETE FROM audit_entries WHERE leaf_index < ${cut}; DELETE FROM audit_tree_heads`);
          const one = await verifyStoredAudit(h.airlock.store, verifySchnorr, key);
          const many = await verifyStoredAudit(h.airlock.store, verifySchnorr, key, [], options);
          assert.equal(many.ok, false, JSON.stringify(many));
          assert.match(many.firstBad!.reason, new RegExp(`\\(leaf 0\\) is missing \\(next is entry \\d+, leaf ${cut}\\)`));
          assert.equal(many.entries, 0);
          assert.deepEqual(many, one);
        }
      } finally {
        await h.close();
      }
    });

    test('--file: a forged tree head signature and a tree head by a foreign key (header key swapped too) fail against --public-key', async () => {
      const h = await loggedHarness(store);
      const dir = mkdtempSync(join(tmpdir(), 'airlock-export-'));
      try {
        const publicKey = await h.airlock.audit.auditPublicKey();
        const good = await exportFile(h, dir, 'good.jsonl');
        assert.equal((await verifyExport(good, publicKey)).ok, true);

        const forged = await exportFile(h, dir, 'forged.jsonl', (header) => {
          header.treeHeads = header.treeHeads.map((cp) => ({ ...cp, signature: flipByte(cp.signature) }));
        });
        for (const key of [publicKey, undefined]) {
          const result = await verifyExport(forged, key);
          assert.equal(result.ok, false);
          assert.match(result.firstBad!.reason, /invalid signature/);
        }

        const foreignKey = schnorr.utils.randomSecretKey();
        const foreignPublic = bytesToHex(schnorr.getPublicKey(foreignKey));
        const swapped = await exportFile(h, dir, 'foreign.jsonl', (header) => {
          header.publicKey = foreignPublic;
          header.treeHeads = header.treeHeads.map((cp) => ({ ...cp, publicKey: foreignPublic, signature: bytesToHex(schnorr.sign(treeHeadDigest(cp), foreignKey)) }));
        });
        const result = await verifyExport(swapped, publicKey);
        assert.equal(result.ok, false);
        assert.match(result.firstBad!.reason, /unknown key/);
      } finally {
        rmSync(dir, { recursive: true, force: true });
        await h.close();
      }
    });
  });
}

// An entry's own hash proves nothing against whoever can rewrite the file: only a signed tree head over it
// does. With --public-key, `verify --file` therefore requires every entry to be under a signed head (exit 5,
// a stable code), unless --allow-unanchored; --min-tree-size and --expect-root pin what an earlier export saw.
describe('audit verify --file --public-key: what the signed heads vouch for', () => {
  const dir = mkdtempSync(join(tmpdir(), 'airlock-anchoring-'));
  const write = (name: string, header: object, entries: object[]) => {
    const path = join(dir, name);
    writeFileSync(path, [header, ...entries].map((l) => JSON.stringify(l)).join('\n') + '\n');
    return path;
  };
  const verify = (path: string, ...args: string[]) => runCli(['audit', 'verify', '--file', path, ...args], cliEnv());
  /** The header and entries `airlock audit export` would write, straight from the store. */
  const snapshot = async (h: Harness) => ({
    header: { format: EXPORT_FORMAT, publicKey: await h.airlock.audit.auditPublicKey(), treeHeads: await h.airlock.store.listTreeHeads(), checkpoints: await h.airlock.store.listCheckpoints() },
    entries: await h.airlock.store.readAudit(1, 10_000),
  });
  /** Entry `seq` rewritten into a denial, its leaf and leaf hash recomputed to match (what a forger does to a file). */
  const forge = (e: AuditEntry) => {
    const edited = { ...e, decision: 'deny' as const, data: { ...e.data, forged: true } };
    const leaf = auditLeaf(edited, canonicalJson(edited.data));
    return { ...edited, leaf, hash: Buffer.from(leafHash(leaf)).toString('hex') };
  };
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('a rewritten export with its signed heads removed, and one cut to 2 entries, fail with audit_no_signed_head (exit 5); --allow-unanchored accepts them and says how many are unsigned', async () => {
    const h = await loggedHarness('sqlite');
    try {
      const publicKey = await h.airlock.audit.auditPublicKey();
      const { header, entries } = await snapshot(h);
      const last = entries.findLastIndex((e) => e.type === 'sign.request');
      const forged = entries.map((e, i) => (i === last ? forge(e) : e));
      // With its heads the rewrite is caught at the head (exit 2); without them, nothing but this rule catches it.
      const withHeads = await verify(write('forged-heads.jsonl', header, forged), '--public-key', publicKey);
      assert.equal(withHeads.code, 2, withHeads.stdout + withHeads.stderr);
      const stripped = write('forged.jsonl', { ...header, treeHeads: [] }, forged);
      const r = await verify(stripped, '--public-key', publicKey);
      assert.equal(r.code, 5, r.stdout + r.stderr);
      assert.match(r.stdout, new RegExp(`^FAILED \\[audit_no_signed_head\\]: no signed tree head covers the log: none of its ${entries.length} entries is vouched for by the audit key$`, 'm'));
      assert.match(r.stderr, /hint: .*--allow-unanchored/);
      const json = await verify(stripped, '--public-key', publicKey, '--json');
      assert.equal(json.code, 5);
      assert.deepEqual({ ok: JSON.parse(json.stdout).ok, ...JSON.parse(json.stdout).anchoring }, { ok: false, code: 'audit_no_signed_head', reason: `no signed tree head covers the log: none of its ${entries.length} entries is vouched for by the audit key` });

      const truncated = await verify(write('truncated.jsonl', { ...header, treeHeads: [] }, entries.slice(0, 2)), '--public-key', publicKey);
      assert.equal(truncated.code, 5, truncated.stdout + truncated.stderr);
      assert.match(truncated.stdout, /^FAILED \[audit_no_signed_head\]: .* none of its 2 entries/m);

      const allowed = await verify(stripped, '--public-key', publicKey, '--allow-unanchored');
      assert.equal(allowed.code, 0, allowed.stdout + allowed.stderr);
      assert.match(allowed.stdout, new RegExp(`^OK: ${entries.length} entries, 0 signed tree heads, root [0-9a-f]{16}… \\(${entries.length} newest entries not yet under a signed head\\)$`, 'm'));
      // Without --public-key the file's own key is trusted anyway (a forger re-signs with theirs): unchanged, with a note.
      const keyless = await verify(stripped);
      assert.equal(keyless.code, 0, keyless.stdout + keyless.stderr);
      assert.match(keyless.stderr, /pass --public-key/);
    } finally {
      await h.close();
    }
  });

  test('entries past the newest signed head fail an export with audit_unanchored (exit 5); the store verified --offline keeps accepting them unless --require-anchored', async () => {
    const h = await loggedHarness('sqlite');
    try {
      const publicKey = await h.airlock.audit.auditPublicKey();
      const { token } = await provisionAgent(h, { policy: usdcPolicy() });
      for (let i = 0; i < 2; i++) assert.equal((await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 1_000n, 50 + i) })).status, 200);
      const { header, entries } = await snapshot(h);
      const signedSize = Math.max(...header.treeHeads.map((t) => t.treeSize));
      const unsigned = entries.length - signedSize;
      assert.ok(unsigned >= 2);
      const path = write('unanchored.jsonl', header, entries);
      const r = await verify(path, '--public-key', publicKey);
      assert.equal(r.code, 5, r.stdout + r.stderr);
      assert.match(r.stdout, new RegExp(`^FAILED \\[audit_unanchored\\]: the newest ${unsigned} entries \\(from leaf ${signedSize}\\) are not under a signed tree head$`, 'm'));
      const allowed = await verify(path, '--public-key', publicKey, '--allow-unanchored');
      assert.equal(allowed.code, 0, allowed.stdout + allowed.stderr);
      assert.match(allowed.stdout, new RegExp(`\\(${unsigned} newest entries not yet under a signed head\\)$`, 'm'));

      // A live log always has its newest entries past the last head: the store's own verification accepts them.
      const offline = ['audit', 'verify', '--offline', '--data-dir', h.config.dataDir, '--store', h.config.storeUrl];
      const lenient = await runCli(offline, cliEnv());
      assert.equal(lenient.code, 0, lenient.stdout + lenient.stderr);
      assert.match(lenient.stdout, new RegExp(`\\(${unsigned} newest entries not yet under a signed head\\)$`, 'm'));
      const strict = await runCli([...offline, '--require-anchored'], cliEnv());
      assert.equal(strict.code, 5, strict.stdout + strict.stderr);
      assert.match(strict.stdout, /^FAILED \[audit_unanchored\]: /m);
    } finally {
      await h.close();
    }
  });

  test('--min-tree-size catches an export cut back to an older signed head; --expect-root catches a rewrite whose heads were re-signed after `audit acknowledge`', async () => {
    const h = await loggedHarness('sqlite');
    try {
      const publicKey = await h.airlock.audit.auditPublicKey();
      const { token } = await provisionAgent(h, { policy: usdcPolicy() });
      const older = (await h.airlock.store.lastTreeHead())!;
      for (let i = 0; i < 2; i++) assert.equal((await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 1_000n, 60 + i) })).status, 200);
      assert.ok(await h.airlock.audit.checkpoint());
      // What the operator noted from the last export (`airlock audit export` prints it): the newest head's size and root.
      const pinned = (await h.airlock.store.lastTreeHead())!;
      const { header, entries } = await snapshot(h);
      const pins = ['--min-tree-size', String(pinned.treeSize), '--expect-root', pinned.rootHash.toUpperCase()];
      const full = await verify(write('full.jsonl', header, entries), '--public-key', publicKey, ...pins);
      assert.equal(full.code, 0, full.stdout + full.stderr);

      // Cut back to the older head, the newer heads dropped: a prefix the key did sign, so only the pin sees it.
      const cut = write('cut.jsonl', { ...header, treeHeads: header.treeHeads.filter((t) => t.treeSize <= older.treeSize) }, entries.slice(0, older.treeSize));
      assert.equal((await verify(cut, '--public-key', publicKey)).code, 0);
      const below = await verify(cut, '--public-key', publicKey, '--min-tree-size', String(pinned.treeSize));
      assert.equal(below.code, 5, below.stdout + below.stderr);
      assert.match(below.stdout, new RegExp(`^FAILED \\[audit_below_min_tree_size\\]: the signed tree heads cover ${older.treeSize} entries, fewer than the ${pinned.treeSize} required`, 'm'));

      // The database's owner rewrites the newest anchored entry, drops the heads; signing halts; an admin acknowledges: the forged log is signed.
      const raw = h.airlock.store as unknown as RawStore;
      const [target] = await h.airlock.store.readAudit(pinned.treeSize, 1);
      const f = forge(target!);
      await raw.rawExec(`${DROP_TRIGGERS.sqlite} UPDATE audit_entries SET decision = 'deny', leaf = '${f.leaf.replace(/'/g, "''")}', hash = '${f.hash}' WHERE seq = ${target!.seq}; DELETE FROM audit_tree_heads`);
      await assert.rejects(h.airlock.audit.checkpoint());
      assert.equal((await h.admin('POST', '/v1/audit/acknowledge')).status, 200);
      const rewritten = await snapshot(h);
      assert.equal(rewritten.entries.find((e) => e.seq === target!.seq)!.decision, 'deny');
      const resigned = write('resigned.jsonl', rewritten.header, rewritten.entries);
      assert.equal((await verify(resigned, '--public-key', publicKey)).code, 0, 'every head checks out: the forgery is signed');
      const mismatch = await verify(resigned, '--public-key', publicKey, ...pins);
      assert.equal(mismatch.code, 5, mismatch.stdout + mismatch.stderr);
      assert.match(mismatch.stdout, new RegExp(`^FAILED \\[audit_root_mismatch\\]: the tree of the first ${pinned.treeSize} entries has root [0-9a-f]{64}, not the expected ${pinned.rootHash}`, 'm'));
    } finally {
      await h.close();
    }
  });

  test('contradicting or incomplete pins are usage errors (exit 2), read nothing and print no root back', async () => {
    const cases: [string[], RegExp][] = [
      [['--file', join(dir, 'none.jsonl'), '--expect-root', 'ab'.repeat(32)], /--expect-root needs --min-tree-size N/],
      [['--file', join(dir, 'none.jsonl'), '--min-tree-size', '3', '--expect-root', 'not-a-root'], /--expect-root: expected a 32-byte root hash in hex/],
      [['--file', join(dir, 'none.jsonl'), '--allow-unanchored', '--require-anchored'], /contradict each other/],
      [['--file', join(dir, 'none.jsonl'), '--min-tree-size', '0'], /--min-tree-size: expected a positive integer/],
      [['--offline', '--min-tree-size', '3', '--expect-root', 'ab'.repeat(32)], /--expect-root checks an export: run it with --file/],
    ];
    for (const [args, message] of cases) {
      const r = await runCli(['audit', 'verify', ...args], cliEnv());
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, message);
      assert.doesNotMatch(r.stdout + r.stderr, /not-a-root/);
    }
  });
});
