// `airlock restore` runs one at a time per vault file: while another restore holds `<vault>.lock` (two operators,
// a retried script, or a restore killed half-way) a second one is refused with `conflict` and writes nothing, so
// two overlapping `restore --force` cannot both report success, nor leave no vault at all.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openVault } from '@airlock/keys';
import { openStore } from '@airlock/store';
import { loadConfig } from '../../server/src/config.ts';
import { initAirlock } from '../../server/src/runtime.ts';
import { TEST_PASSPHRASE, TEST_VAULT } from '../../server/src/testing/harness.ts';
import { cliEnv, runCli } from './testing/cli-process.ts';

const NEW_PASSPHRASE = 'restored passphrase 0123456789';
const dir = mkdtempSync(join(tmpdir(), 'airlock-restore-lock-'));
after(() => rmSync(dir, { recursive: true, force: true }));

async function restoredEntries(storeUrl: string): Promise<number> {
  const store = await openStore(storeUrl);
  try {
    return (await store.queryAudit({ type: 'vault.restored', limit: 100 })).length;
  } finally {
    await store.close();
  }
}

test('`restore --force` while the vault lock is held is `conflict`: the vault and the audit log unchanged; once it is released the restore runs', async () => {
  const config = loadConfig({ dataDir: join(dir, 'data') }, {});
  const { mnemonic, fingerprint } = await initAirlock(config, TEST_PASSPHRASE, TEST_VAULT);
  const phrase = join(dir, 'phrase.txt');
  writeFileSync(phrase, `${mnemonic}\n`, { mode: 0o600 });
  const pass = join(dir, 'pass.txt');
  writeFileSync(pass, `${NEW_PASSPHRASE}\n`, { mode: 0o600 });
  const env = cliEnv({ AIRLOCK_DATA_DIR: config.dataDir, AIRLOCK_STORE: config.storeUrl });
  const args = ['restore', '--force', '--phrase-file', phrase, '--passphrase-file', pass];

  const lock = `${config.vaultPath}.lock`;
  writeFileSync(lock, '4242\n'); // another restore, running or killed
  const before = readFileSync(config.vaultPath);
  const refused = await runCli(args, env);
  assert.equal(refused.code, 1, `${refused.stdout}\n${refused.stderr}`);
  assert.match(refused.stderr, /^error \[conflict\]: Another restore of this vault is running \(.*vault\.json\.lock exists\); nothing was written\./m);
  assert.ok(refused.stderr.includes(`remove ${lock}`), refused.stderr);
  assert.doesNotMatch(refused.stdout, /Vault restored|Start with the new passphrase/);
  assert.deepEqual(readFileSync(config.vaultPath), before, 'the vault is unchanged');
  assert.equal(await restoredEntries(config.storeUrl), 0, 'no vault.restored entry');
  assert.ok(existsSync(lock), 'the lock of the other restore is left alone');

  rmSync(lock);
  const restored = await runCli(args, env);
  assert.equal(restored.code, 0, restored.stderr);
  assert.match(restored.stdout, /Start with the new passphrase/);
  assert.equal(existsSync(lock), false, 'the restore released its lock');
  assert.equal(await restoredEntries(config.storeUrl), 1);
  const vault = await openVault(config.vaultPath, NEW_PASSPHRASE);
  assert.equal(vault.fingerprint(), fingerprint);
  vault.wipe();
});
