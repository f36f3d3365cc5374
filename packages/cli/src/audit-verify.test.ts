// `airlock audit verify --offline` and `--file` check signed tree heads against the audit key the operator
// holds (the anchor beside the vault, or --public-key), never a key an attacker could write into the
// database or the export: forged and foreign checkpoints fail.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { schnorr } from '@noble/curves/secp256k1.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { auditLeaf, canonicalJson, leafHash, treeHeadDigest, type SignedTreeHead } from '@airlock/core';
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
