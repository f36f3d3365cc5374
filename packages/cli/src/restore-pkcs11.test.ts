// `airlock restore` for a PKCS#11 deployment (docs/custody.md, "HSM backup and restore"), driven through the real
// command on SQLite and PostgreSQL with a SoftHSM2 token. The phrase restores the vault; the EVM agent keys, made in
// the token, are checked against the TOKEN: each recorded key (current and rotated) must be there with its recorded
// address. Without the token settings, with another token, or with a token missing one registry key, the restore is
// refused naming the key and writes nothing; with the right token the daemon starts on the restored vault and signs
// as the agent (checked by viem).
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { recoverTransactionAddress } from 'viem';
import { openStore } from '@airlock/store';
import { createSoftHsmToken, destroySoftHsmKey, softHsmSkip, type SoftHsmToken } from '../../keys/src/softhsm-token.ts';
import { loadConfig } from '../../server/src/config.ts';
import { initAirlock, openAirlock } from '../../server/src/runtime.ts';
import { ALICE, pgSchemaUrl, TEST_PASSPHRASE, TEST_VAULT, usdcPolicy, usdcTransfer } from '../../server/src/testing/harness.ts';
import { httpJson } from '../../server/src/testing/processes.ts';
import { cliEnv, runCli, startDaemon, type CliResult } from './testing/cli-process.ts';

const NEW_PASSPHRASE = 'restored passphrase 0123456789';
const skip = softHsmSkip();
const cleanups: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

interface HsmDeployment {
  dir: string;
  dataDir: string;
  storeUrl: string;
  vaultPath: string;
  mnemonic: string;
  fingerprint: string;
  adminToken: string;
  token: SoftHsmToken;
  agents: { name: string; accountIndex: number; address: string }[];
  /** payer-2's key before its rotation: in the key registry, and in the token. */
  rotatedAway: { accountIndex: number; keyIndex: number };
}

/** EVM agent keys in a SoftHSM2 token: three agents (one retired, one rotated), then the vault file is lost. */
async function hsmDeploymentWithLostVault(kind: 'sqlite' | 'postgres'): Promise<HsmDeployment> {
  const token = createSoftHsmToken('airlock-restore');
  const dir = mkdtempSync(join(tmpdir(), 'airlock-restore-hsm-'));
  const schema = kind === 'postgres' ? await pgSchemaUrl('airlock_restore_hsm') : undefined;
  cleanups.push(async () => {
    rmSync(dir, { recursive: true, force: true });
    token.remove();
    await schema?.drop();
  });
  const config = loadConfig({ dataDir: join(dir, 'data'), ...(schema ? { storeUrl: schema.url } : {}) }, {});
  const init = await initAirlock(config, TEST_PASSPHRASE, TEST_VAULT);
  const airlock = await openAirlock(config, TEST_PASSPHRASE, { vault: TEST_VAULT, timers: false, pkcs11: { library: token.library, tokenLabel: token.tokenLabel, pinFile: token.pinFile } });
  const created = await airlock.operator.createAgents({ names: ['payer-1', 'payer-2', 'old-bot'] }, 'operator');
  await airlock.operator.setAgentStatus('old-bot', 'retired', 'operator');
  const payer2 = created.find((a) => a.name === 'payer-2')!;
  const rotated = await airlock.operator.rotateAgentKey('payer-2', 'operator');
  await airlock.close();
  rmSync(config.vaultPath);
  return {
    dir, dataDir: config.dataDir, storeUrl: config.storeUrl, vaultPath: config.vaultPath, mnemonic: init.mnemonic, fingerprint: init.fingerprint, adminToken: init.adminToken, token,
    agents: created.map((a) => ({ name: a.name, accountIndex: a.accountIndex, address: a.name === 'payer-2' ? rotated.current.address : a.address })),
    rotatedAway: { accountIndex: payer2.accountIndex, keyIndex: payer2.keyIndex },
  };
}

function secretFile(d: HsmDeployment, name: string, text: string): string {
  const path = join(d.dir, name);
  writeFileSync(path, `${text}\n`, { mode: 0o600 });
  chmodSync(path, 0o600);
  return path;
}

/** The daemon's settings for this token (what `airlock start` reads), and SoftHSM2's config. */
function envOf(d: HsmDeployment, options: { hsm?: boolean; tokenLabel?: string; extra?: Record<string, string> } = {}) {
  const hsm = options.hsm ?? true;
  return cliEnv({
    AIRLOCK_DATA_DIR: d.dataDir, AIRLOCK_STORE: d.storeUrl, SOFTHSM2_CONF: join(d.token.dir, 'softhsm2.conf'),
    ...(hsm ? { AIRLOCK_KEY_BACKEND: 'pkcs11', AIRLOCK_PKCS11_LIBRARY: d.token.library, AIRLOCK_PKCS11_TOKEN_LABEL: options.tokenLabel ?? d.token.tokenLabel, AIRLOCK_PKCS11_PIN_FILE: d.token.pinFile } : {}),
    ...options.extra,
  });
}

function refused(r: CliResult, code: string): void {
  assert.equal(r.code, 1, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stderr, new RegExp(`^error \\[${code}\\]`, 'm'));
}

async function auditOf(d: HsmDeployment) {
  const store = await openStore(d.storeUrl);
  try {
    return { head: await store.auditHead(), restored: await store.queryAudit({ type: 'vault.restored', limit: 100 }) };
  } finally {
    await store.close();
  }
}

for (const kind of ['sqlite', 'postgres'] as const) {
  describe(`${kind}: airlock restore of a PKCS#11 deployment`, { skip }, () => {
    test('the phrase restores the vault and the EVM keys are checked on the token; a token without them is refused, naming the key, and nothing is written', async () => {
      const d = await hsmDeploymentWithLostVault(kind);
      const phrase = secretFile(d, 'phrase.txt', d.mnemonic);
      const pass = secretFile(d, 'pass.txt', NEW_PASSPHRASE);
      const before = await auditOf(d);
      const [payer1] = d.agents;

      // Without the token settings the phrase is checked for keys it cannot derive: refused, with the way out named.
      const noToken = await runCli(['restore', '--phrase-file', phrase, '--passphrase-file', pass], envOf(d, { hsm: false }));
      refused(noToken, 'restore_key_mismatch');
      assert.match(noToken.stderr, /AIRLOCK_KEY_BACKEND=pkcs11/);
      // Another token (initialised, logged in to, but not this deployment's): it holds none of the keys.
      execFileSync('softhsm2-util', ['--init-token', '--free', '--label', 'airlock-other', '--pin', '246810', '--so-pin', '2468100'], { env: { ...process.env, SOFTHSM2_CONF: join(d.token.dir, 'softhsm2.conf') }, stdio: 'pipe' });
      const other = await runCli(['restore', '--json', '--phrase-file', phrase, '--passphrase-file', pass], envOf(d, { tokenLabel: 'airlock-other' }));
      assert.equal(other.code, 1, other.stderr);
      const error = JSON.parse(other.stderr).error;
      assert.equal(error.code, 'restore_key_mismatch');
      assert.match(error.message, new RegExp(`token "airlock-other" holds no key for agent payer-1 \\(account ${payer1!.accountIndex}, key 0, m/44'/60'/${payer1!.accountIndex}'/0/0\\)`));
      assert.ok(!existsSync(d.vaultPath), 'no vault file was written');
      assert.deepEqual((await auditOf(d)).head, before.head, 'no audit entry was written');

      // The right token: restored, and the audit entry names the token and how many keys were found on it.
      const restored = await runCli(['restore', '--phrase-file', phrase, '--passphrase-file', pass], envOf(d));
      assert.equal(restored.code, 0, restored.stderr);
      assert.match(restored.stdout, new RegExp(`Vault restored: .*\\(fingerprint ${d.fingerprint}\\)`));
      assert.match(restored.stdout, /PKCS#11 token "airlock-restore" holds the recorded key of all 3 agent\(s\) \(4 EVM key\(s\)\)/);
      assert.deepEqual((await auditOf(d)).restored.map((e) => e.data), [{ fingerprint: d.fingerprint, agentsChecked: 3, keysChecked: 4, replaced: false, token: { label: 'airlock-restore', keysFound: 4 } }]);

      // The daemon starts on the restored vault with the token and signs as payer-1, whose key never left the token.
      const daemon = await startDaemon(envOf(d, { extra: { AIRLOCK_PASSPHRASE: NEW_PASSPHRASE, AIRLOCK_HOST: '127.0.0.1' } }));
      cleanups.push(() => daemon.stop());
      assert.equal((await httpJson(daemon.url, 'PUT', `/v1/policies/${payer1!.name}`, { token: d.adminToken, body: { document: usdcPolicy() } })).status, 200);
      const session = await httpJson(daemon.url, 'POST', `/v1/agents/${payer1!.name}/sessions`, { token: d.adminToken, body: { ttl: '1h', actions: ['evm.transaction'] } });
      assert.equal(session.status, 201, JSON.stringify(session.body));
      const signed = await httpJson(daemon.url, 'POST', '/v1/sign/transaction', { token: session.body.token, body: usdcTransfer(ALICE, 1_000_000n, 0) });
      assert.equal(signed.status, 200, JSON.stringify(signed.body));
      assert.equal((await recoverTransactionAddress({ serializedTransaction: signed.body.signedTransaction as `0x02${string}` })).toLowerCase(), payer1!.address);
      assert.equal(await daemon.stop(), 0);

      // A token restored from a backup that predates a key: payer-2's key before its rotation is gone. Every key of
      // the registry is checked, so --force with the right phrase is refused naming it, and the vault stays as it was.
      const { accountIndex, keyIndex } = d.rotatedAway;
      assert.equal(destroySoftHsmKey(d.token, `m/44'/60'/${accountIndex}'/0/${keyIndex}`), 2, 'the private and the public object');
      const vaultBytes = readFileSync(d.vaultPath);
      const head = (await auditOf(d)).head;
      const missing = await runCli(['restore', '--force', '--phrase-file', phrase, '--passphrase-file', secretFile(d, 'pass2.txt', `${NEW_PASSPHRASE} again`)], envOf(d));
      refused(missing, 'restore_key_mismatch');
      assert.match(missing.stderr, new RegExp(`holds no key for agent payer-2 \\(account ${accountIndex}, key ${keyIndex},`));
      assert.match(missing.stderr, /restore the token first/);
      assert.deepEqual(readFileSync(d.vaultPath), vaultBytes, 'the vault file is unchanged');
      assert.deepEqual((await auditOf(d)).head, head, 'no audit entry was written');
      for (const output of [noToken, other, restored, missing]) assert.ok(!`${output.stdout}${output.stderr}`.includes(d.mnemonic.split(' ').slice(0, 3).join(' ')), 'no words of the phrase in any output');
    });
  });
}
