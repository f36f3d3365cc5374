// `airlock audit verify --offline` and `--file` check checkpoints against the audit key the operator
// holds (the anchor beside the vault, or --public-key), never a key an attacker could write into the
// database or the export: forged and foreign checkpoints fail.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { schnorr } from '@noble/curves/secp256k1.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { canonicalJson, checkpointDigest, hashAuditEntry, type AuditCheckpoint } from '@airlock/core';
import { ALICE, provisionAgent, startHarness, usdcPolicy, usdcTransfer, type Harness, type StoreKind } from '../../server/src/testing/harness.ts';
import { EXPORT_FORMAT, verifyExport } from './commands/audit.ts';
import { cliEnv, runCli } from './testing/cli-process.ts';

interface RawStore {
  rawExec(sql: string): Promise<void>;
}

const DROP_TRIGGERS: Record<StoreKind, string> = {
  sqlite: 'DROP TRIGGER audit_entries_no_update; DROP TRIGGER audit_entries_no_delete; DROP TRIGGER audit_checkpoints_no_delete;',
  postgres: 'DROP TRIGGER audit_entries_append_only ON audit_entries; DROP TRIGGER audit_checkpoints_append_only ON audit_checkpoints;',
};

async function loggedHarness(store: StoreKind): Promise<Harness> {
  const h = await startHarness({ store });
  const { token } = await provisionAgent(h, { policy: usdcPolicy() });
  for (let i = 0; i < 6; i++) assert.equal((await h.call('POST', '/v1/sign/transaction', { token, body: usdcTransfer(ALICE, 1_000_000n, i) })).status, 200);
  assert.ok(await h.airlock.audit.checkpoint());
  return h;
}

/** What `airlock audit export` writes: a header with the checkpoints and the public key, then every entry. */
async function exportFile(h: Harness, dir: string, name: string, edit: (header: { publicKey: string; checkpoints: AuditCheckpoint[] }) => void = () => {}): Promise<string> {
  const header = { format: EXPORT_FORMAT, publicKey: await h.airlock.audit.auditPublicKey(), checkpoints: await h.airlock.store.listCheckpoints() };
  edit(header);
  const entries = await h.airlock.store.readAudit(1, 10_000);
  const path = join(dir, name);
  writeFileSync(path, [header, ...entries].map((l) => JSON.stringify(l)).join('\n') + '\n');
  return path;
}

const flipByte = (hex: string) => `${hex.slice(0, 6)}${(parseInt(hex[6]!, 16) ^ 1).toString(16)}${hex.slice(7)}`;

for (const store of ['sqlite', 'postgres'] as StoreKind[]) {
  describe(`audit verify outside the daemon (${store})`, () => {
    test('--offline: a rewritten chain with its checkpoints deleted and the stored key swapped fails against the anchor beside the vault', async () => {
      const h = await loggedHarness(store);
      try {
        const args = ['audit', 'verify', '--offline', '--data-dir', h.config.dataDir, '--store', h.config.storeUrl];
        const clean = await runCli(args, cliEnv());
        assert.equal(clean.code, 0, clean.stderr);
        assert.match(clean.stdout, /^OK: /);

        const entries = await h.airlock.store.readAudit(1, 10_000);
        let prev = entries[2]!.hash;
        const statements = [DROP_TRIGGERS[store]];
        for (const e of entries.slice(3)) {
          const edited = e.seq === 4 ? { ...e, decision: 'deny' as const } : e;
          const hash = hashAuditEntry(prev, e.seq, edited);
          statements.push(`UPDATE audit_entries SET decision = '${edited.decision}', data = '${canonicalJson(edited.data).replace(/'/g, "''")}', prev_hash = '${prev}', hash = '${hash}' WHERE seq = ${e.seq}`);
          prev = hash;
        }
        const foreign = bytesToHex(schnorr.getPublicKey(schnorr.utils.randomSecretKey()));
        statements.push('DELETE FROM audit_checkpoints', `UPDATE meta SET value = '${foreign}' WHERE key = 'audit_public_key'`);
        await (h.airlock.store as unknown as RawStore).rawExec(statements.join('; '));

        const r = await runCli(args, cliEnv());
        assert.equal(r.code, 2, r.stdout + r.stderr);
        assert.match(r.stdout, /^FAILED at entry \d+: entry \d+ does not match the signed checkpoint head/);
      } finally {
        await h.close();
      }
    });

    test('--file: a forged checkpoint signature and a checkpoint by a foreign key (header key swapped too) fail against --public-key', async () => {
      const h = await loggedHarness(store);
      const dir = mkdtempSync(join(tmpdir(), 'airlock-export-'));
      try {
        const publicKey = await h.airlock.audit.auditPublicKey();
        const good = await exportFile(h, dir, 'good.jsonl');
        assert.equal((await verifyExport(good, publicKey)).ok, true);

        const forged = await exportFile(h, dir, 'forged.jsonl', (header) => {
          header.checkpoints = header.checkpoints.map((cp) => ({ ...cp, signature: flipByte(cp.signature) }));
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
          header.checkpoints = header.checkpoints.map((cp) => ({ ...cp, publicKey: foreignPublic, signature: bytesToHex(schnorr.sign(checkpointDigest(cp), foreignKey)) }));
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
