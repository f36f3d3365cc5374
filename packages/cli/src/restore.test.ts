// `airlock restore` driven as an operator would after losing the vault file (docs/operations.md, "Restore from
// the recovery phrase"): the real command, SQLite and PostgreSQL. A phrase that is not the store's, a store whose
// records the phrase does not derive, an exposed phrase file and an existing vault are refused with their code
// and write nothing; the right phrase rebuilds a vault the daemon starts on and signs with (checked by viem).
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { DatabaseSync } from 'node:sqlite';
import { generateMnemonic } from '@scure/bip39';
import { wordlist } from '@scure/bip39/wordlists/english.js';
import { recoverTransactionAddress } from 'viem';
import { openVault } from '@airlock/keys';
import { openStore } from '@airlock/store';
import { loadConfig } from '../../server/src/config.ts';
import { initAirlock, openAirlock } from '../../server/src/runtime.ts';
import { ALICE, PG_URL, pgSchemaUrl, TEST_PASSPHRASE, TEST_VAULT, usdcPolicy, usdcTransfer } from '../../server/src/testing/harness.ts';
import { httpJson } from '../../server/src/testing/processes.ts';
import { cliEnv, runCli, startDaemon, transcript, type CliResult } from './testing/cli-process.ts';

const NEW_PASSPHRASE = 'restored passphrase 0123456789';
const cleanups: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

interface Deployment {
  dir: string;
  dataDir: string;
  storeUrl: string;
  vaultPath: string;
  mnemonic: string;
  fingerprint: string;
  adminToken: string;
  agents: { id: string; name: string; address: string; status: string }[];
}

/** A deployment with agents (one retired, one rotated), whose vault file is then lost: only the phrase and the store remain. */
async function deploymentWithLostVault(kind: 'sqlite' | 'postgres'): Promise<Deployment> {
  const dir = mkdtempSync(join(tmpdir(), 'airlock-restore-'));
  const schema = kind === 'postgres' ? await pgSchemaUrl('airlock_restore') : undefined;
  cleanups.push(async () => {
    rmSync(dir, { recursive: true, force: true });
    await schema?.drop();
  });
  const config = loadConfig({ dataDir: join(dir, 'data'), ...(schema ? { storeUrl: schema.url } : {}) }, {});
  const init = await initAirlock(config, TEST_PASSPHRASE, TEST_VAULT);
  const airlock = await openAirlock(config, TEST_PASSPHRASE, { vault: TEST_VAULT, timers: false });
  const created = await airlock.operator.createAgents({ names: ['payer-1', 'payer-2', 'payer-3', 'old-bot'] }, 'operator');
  await airlock.operator.setAgentStatus('old-bot', 'retired', 'operator');
  // payer-3 rotated its key: restore checks its earlier key (from the key registry) too, so 4 agents, 5 keys.
  const rotated = await airlock.operator.rotateAgentKey('payer-3', 'operator');
  await airlock.close();
  rmSync(config.vaultPath);
  return {
    dir, dataDir: config.dataDir, storeUrl: config.storeUrl, vaultPath: config.vaultPath, mnemonic: init.mnemonic, fingerprint: init.fingerprint, adminToken: init.adminToken,
    agents: created.map((a) => ({ id: a.id, name: a.name, address: a.name === 'payer-3' ? rotated.current.address : a.address, status: a.name === 'old-bot' ? 'retired' : a.status })),
  };
}

function secretFile(d: Deployment, name: string, text: string, mode = 0o600): string {
  const path = join(d.dir, name);
  writeFileSync(path, `${text}\n`, { mode });
  chmodSync(path, mode);
  return path;
}

const envOf = (d: Deployment, extra: Record<string, string> = {}) => cliEnv({ AIRLOCK_DATA_DIR: d.dataDir, AIRLOCK_STORE: d.storeUrl, ...extra });

async function auditOf(d: Deployment) {
  const store = await openStore(d.storeUrl);
  try {
    return { head: await store.auditHead(), restored: await store.queryAudit({ type: 'vault.restored', limit: 100 }), all: await store.readAudit(1, 100_000) };
  } finally {
    await store.close();
  }
}

/** Every run of three consecutive words of the phrase: none may appear in any output or in the audit log. */
function assertPhraseAbsent(text: string, mnemonic: string, where: string): void {
  const words = mnemonic.split(' ');
  for (let i = 0; i + 3 <= words.length; i++) assert.ok(!text.includes(words.slice(i, i + 3).join(' ')), `${where} holds words of the phrase`);
}

function refused(r: CliResult, code: string): void {
  assert.equal(r.code, 1, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stderr, new RegExp(`^error \\[${code}\\]`, 'm'));
}

async function alterAgentAddress(d: Deployment, agentId: string, address: string): Promise<void> {
  if (d.storeUrl.startsWith('sqlite:')) {
    const db = new DatabaseSync(d.storeUrl.slice('sqlite:'.length));
    db.prepare('UPDATE agents SET address = ? WHERE id = ?').run(address, agentId);
    db.close();
    return;
  }
  const schema = new URL(d.storeUrl).searchParams.get('schema')!;
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  await client.query(`UPDATE ${schema}.agents SET address = $1 WHERE id = $2`, [address, agentId]);
  await client.end();
}

for (const kind of ['sqlite', 'postgres'] as const) {
  describe(`${kind}: airlock restore`, () => {
    test('refusals write nothing: another phrase, a store the phrase does not derive, an exposed phrase file, a phrase on the command line', async () => {
      const d = await deploymentWithLostVault(kind);
      const before = await auditOf(d);
      const pass = secretFile(d, 'pass.txt', NEW_PASSPHRASE);
      const env = envOf(d);

      // A valid phrase of another vault.
      const other = generateMnemonic(wordlist, 256);
      refused(await runCli(['restore', '--phrase-file', secretFile(d, 'other.txt', other), '--passphrase-file', pass], env), 'vault_mismatch');
      // A phrase with a mistyped word: named by position, never echoed.
      const typo = d.mnemonic.split(' ').map((w, i) => (i === 4 ? 'notaword' : w)).join(' ');
      const typoRun = await runCli(['restore', '--phrase-file', secretFile(d, 'typo.txt', typo), '--passphrase-file', pass], env);
      refused(typoRun, 'invalid_request');
      assert.match(typoRun.stderr, /word number 5/);
      // The right phrase, but the store records another address for payer-2 (altered, or another deployment's).
      const target = d.agents[1]!;
      await alterAgentAddress(d, target.id, ALICE);
      const phrase = secretFile(d, 'phrase.txt', d.mnemonic);
      const mismatch = await runCli(['restore', '--phrase-file', phrase, '--passphrase-file', pass, '--json'], env);
      assert.equal(mismatch.code, 1);
      const error = JSON.parse(mismatch.stderr).error;
      assert.equal(error.code, 'restore_key_mismatch');
      assert.match(error.message, /agent payer-2 \(account 1, key 0\)/);
      await alterAgentAddress(d, target.id, target.address);
      // The right phrase in a file others can read.
      chmodSync(phrase, 0o644);
      const exposed = await runCli(['restore', '--phrase-file', phrase, '--passphrase-file', pass], env);
      refused(exposed, 'invalid_request');
      assert.match(exposed.stderr, /chmod 600/);
      chmodSync(phrase, 0o600);
      // On the command line (shell history, ps): refused without echoing it; there is no --phrase option at all.
      const onArgv = await runCli(['restore', ...d.mnemonic.split(' '), '--passphrase-file', pass], env);
      refused(onArgv, 'invalid_request');
      assert.equal((await runCli(['restore', '--phrase', d.mnemonic], env)).code, 2);
      // Nor from the environment: with no file and no terminal there is no phrase.
      refused(await runCli(['restore', '--passphrase-file', pass], envOf(d, { AIRLOCK_RECOVERY_PHRASE: d.mnemonic, AIRLOCK_MNEMONIC: d.mnemonic })), 'invalid_request');
      // A new passphrase that is too short, with the right phrase.
      refused(await runCli(['restore', '--phrase-file', phrase, '--passphrase-file', secretFile(d, 'short.txt', 'short')], env), 'invalid_request');

      assert.ok(!existsSync(d.vaultPath), 'no vault file was written');
      const afterwards = await auditOf(d);
      assert.deepEqual(afterwards.head, before.head, 'no audit entry was written');
      assertPhraseAbsent(transcript.join('\n'), d.mnemonic, 'the CLI output');
    });

    test('the right phrase rebuilds the vault; an existing one is kept without --force and replaced with it; the daemon starts on it and signs as the agent', async () => {
      const d = await deploymentWithLostVault(kind);
      const phrase = secretFile(d, 'phrase.txt', d.mnemonic);
      const pass = secretFile(d, 'pass.txt', NEW_PASSPHRASE);
      const env = envOf(d);

      const restored = await runCli(['restore', '--phrase-file', phrase, '--passphrase-file', pass], env);
      assert.equal(restored.code, 0, restored.stderr);
      assert.match(restored.stdout, new RegExp(`Vault restored: .*\\(fingerprint ${d.fingerprint}\\)`));
      assert.match(restored.stdout, /recorded address of all 4 agent\(s\) \(5 key\(s\)\)/);
      assert.equal(statSync(d.vaultPath).mode & 0o777, 0o600);
      const vault = await openVault(d.vaultPath, NEW_PASSPHRASE);
      assert.equal(vault.fingerprint(), d.fingerprint);
      vault.wipe();

      // Not overwritten without --force: same bytes, no entry.
      const bytes = readFileSync(d.vaultPath);
      refused(await runCli(['restore', '--phrase-file', phrase, '--passphrase-file', pass], env), 'vault_exists');
      assert.deepEqual(readFileSync(d.vaultPath), bytes);
      // With --force and a wrong phrase: still refused, still the same file.
      refused(await runCli(['restore', '--force', '--phrase-file', secretFile(d, 'other.txt', generateMnemonic(wordlist, 256)), '--passphrase-file', pass], env), 'vault_mismatch');
      assert.deepEqual(readFileSync(d.vaultPath), bytes);
      // With --force and the right phrase: replaced, under another passphrase.
      const forced = await runCli(['restore', '--force', '--json', '--phrase-file', phrase, '--passphrase-file', secretFile(d, 'pass2.txt', `${NEW_PASSPHRASE} again`)], env);
      assert.equal(forced.code, 0, forced.stderr);
      assert.deepEqual(JSON.parse(forced.stdout), { fingerprint: d.fingerprint, agentsChecked: 4, keysChecked: 5, vaultPath: d.vaultPath, replaced: true, auditSeq: JSON.parse(forced.stdout).auditSeq });
      assert.notDeepEqual(readFileSync(d.vaultPath), bytes);
      await assert.rejects(openVault(d.vaultPath, NEW_PASSPHRASE), { code: 'vault_wrong_passphrase' });

      // Audited: fingerprint and counts, nothing secret.
      const { restored: entries, all } = await auditOf(d);
      assert.deepEqual(entries.map((e) => e.data), [
        { fingerprint: d.fingerprint, agentsChecked: 4, keysChecked: 5, replaced: false },
        { fingerprint: d.fingerprint, agentsChecked: 4, keysChecked: 5, replaced: true },
      ]);
      assertPhraseAbsent(JSON.stringify(all), d.mnemonic, 'the audit log');

      // The daemon starts on the restored vault with the new passphrase and signs for an agent created before the loss.
      const daemon = await startDaemon(envOf(d, { AIRLOCK_PASSPHRASE: `${NEW_PASSPHRASE} again`, AIRLOCK_HOST: '127.0.0.1' }));
      cleanups.push(() => daemon.stop());
      const payer = d.agents[0]!;
      const listed = await httpJson(daemon.url, 'GET', '/v1/agents?limit=10', { token: d.adminToken });
      assert.deepEqual(listed.body.agents.map((a: any) => [a.name, a.address, a.status]), d.agents.map((a) => [a.name, a.address, a.status]));
      assert.equal((await httpJson(daemon.url, 'PUT', `/v1/policies/${payer.name}`, { token: d.adminToken, body: { document: usdcPolicy() } })).status, 200);
      const session = await httpJson(daemon.url, 'POST', `/v1/agents/${payer.name}/sessions`, { token: d.adminToken, body: { ttl: '1h', actions: ['evm.transaction'] } });
      assert.equal(session.status, 201, JSON.stringify(session.body));
      const signed = await httpJson(daemon.url, 'POST', '/v1/sign/transaction', { token: session.body.token, body: usdcTransfer(ALICE, 1_000_000n, 0) });
      assert.equal(signed.status, 200, JSON.stringify(signed.body));
      const signer = await recoverTransactionAddress({ serializedTransaction: signed.body.signedTransaction as `0x02${string}` });
      assert.equal(signer.toLowerCase(), payer.address);
      assert.equal((await httpJson(daemon.url, 'POST', '/v1/audit/verify', { token: d.adminToken })).body.ok, true);
      assert.equal(await daemon.stop(), 0);
      assertPhraseAbsent(daemon.output(), d.mnemonic, 'the daemon output');
      assertPhraseAbsent(transcript.join('\n'), d.mnemonic, 'the CLI output');
    });
  });
}

test('a store that is not there is refused, not created: a mistyped SQLite path, an empty PostgreSQL schema', async () => {
  const d = await deploymentWithLostVault('sqlite');
  const phrase = secretFile(d, 'phrase.txt', d.mnemonic);
  const pass = secretFile(d, 'pass.txt', NEW_PASSPHRASE);
  const missing = join(d.dir, 'typo', 'airlock.db');
  refused(await runCli(['restore', '--phrase-file', phrase, '--passphrase-file', pass, '--store', `sqlite:${missing}`], envOf(d)), 'not_found');
  assert.ok(!existsSync(missing));
  const empty = await pgSchemaUrl('airlock_restore_empty');
  cleanups.push(() => empty.drop());
  refused(await runCli(['restore', '--phrase-file', phrase, '--passphrase-file', pass, '--store', empty.url], envOf(d)), 'vault_missing');
  assert.ok(!existsSync(d.vaultPath));
});
