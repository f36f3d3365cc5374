// Shamir backup and k-of-n unseal, driven as operators would (docs/custody.md): `airlock vault split` writes
// SLIP-39 shares of the vault, a daemon started sealed takes them one at a time over HTTP and from `airlock
// unseal` (progress, a corrupt share named, a share of another set, a repeat, a reset, a whole set of another
// vault), then signs as the agent (checked by viem); `airlock restore --shares-dir` rebuilds the vault and every
// agent address. SQLite and PostgreSQL. No share word ever reaches an output, a log or the audit log.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { recoverTransactionAddress } from 'viem';
import { createEvmAdapter } from '@airlock/chains';
import { openVault, splitSecret } from '@airlock/keys';
import { openStore } from '@airlock/store';
import { loadConfig } from '../../server/src/config.ts';
import { initAirlock, openAirlock } from '../../server/src/runtime.ts';
import { ALICE, pgSchemaUrl, usdcPolicy, usdcTransfer } from '../../server/src/testing/harness.ts';
import { httpJson } from '../../server/src/testing/processes.ts';
import { cliEnv, runCli, startDaemon, transcript, type CliResult } from './testing/cli-process.ts';

// The real KDF (the CLI opens the vault as an operator's would): about a second per open.
const PASSPHRASE = 'shamir ceremony passphrase 0123';
const NEW_PASSPHRASE = 'restored from shares 0123456789';
const cleanups: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

function refused(r: CliResult, code: string): void {
  assert.equal(r.code, 1, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stderr, new RegExp(`^error \\[${code}\\]`, 'm'));
}

/** No run of three consecutive words of any share appears in `text`. */
function assertSharesAbsent(text: string, shares: string[], where: string): void {
  for (const share of shares) {
    const words = share.split(' ');
    // The first two words are the set's public identifier (the same in every share); the value starts at word 5.
    for (let i = 4; i + 3 <= words.length; i++) assert.ok(!text.includes(words.slice(i, i + 3).join(' ')), `${where} holds words of a share`);
  }
}

for (const kind of ['sqlite', 'postgres'] as const) {
  describe(`${kind}: Shamir backup and k-of-n unseal`, () => {
    test('split 2of3,1of1 (group threshold 2); unseal a sealed daemon share by share; sign; restore from shares', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'airlock-shares-'));
      const schema = kind === 'postgres' ? await pgSchemaUrl('airlock_shares') : undefined;
      cleanups.push(async () => {
        rmSync(dir, { recursive: true, force: true });
        await schema?.drop();
      });
      const config = loadConfig({ dataDir: join(dir, 'data'), ...(schema ? { storeUrl: schema.url } : {}) }, {});
      const init = await initAirlock(config, PASSPHRASE);
      const airlock = await openAirlock(config, PASSPHRASE, { timers: false });
      const agents = await airlock.operator.createAgents({ names: ['payer-1', 'payer-2', 'payer-3'] }, 'operator');
      await airlock.close();
      const passFile = join(dir, 'pass.txt');
      writeFileSync(passFile, `${PASSPHRASE}\n`, { mode: 0o600 });
      const env = cliEnv({ AIRLOCK_DATA_DIR: config.dataDir, AIRLOCK_STORE: config.storeUrl });
      const auditOf = async (type: string) => {
        const store = await openStore(config.storeUrl);
        try {
          return { entries: await store.queryAudit({ type, limit: 100 }), all: await store.readAudit(1, 100_000), head: await store.auditHead() };
        } finally {
          await store.close();
        }
      };

      // ---- the ceremony ----
      const before = await auditOf('vault.shares_created');
      const sharesDir = join(dir, 'shares');
      // Weaker than the documented limit (one share would open the vault): refused before the passphrase is asked.
      refused(await runCli(['vault', 'split', '--groups', '1of1', '--out-dir', sharesDir, '--passphrase-file', passFile], env), 'slip39_layout_too_weak');
      refused(await runCli(['vault', 'split', '--groups', '2of3,1of1', '--out-dir', sharesDir, '--passphrase-file', passFile], env), 'slip39_layout_too_weak');
      refused(await runCli(['vault', 'split', '--groups', '1of3', '--group-threshold', '1', '--out-dir', sharesDir, '--passphrase-file', passFile], env), 'invalid_request');
      // Not at a terminal and no --out-dir: the shares would land in a pipe or a log.
      refused(await runCli(['vault', 'split', '--groups', '2of3', '--passphrase-file', passFile], env), 'invalid_request');
      assert.deepEqual((await auditOf('vault.shares_created')).head, before.head, 'no audit entry for a refused ceremony');

      const split = await runCli(['vault', 'split', '--groups', '2of3,1of1', '--group-threshold', '2', '--out-dir', sharesDir, '--passphrase-file', passFile, '--json'], env);
      assert.equal(split.code, 0, split.stderr);
      const summary = JSON.parse(split.stdout);
      assert.deepEqual(readdirSync(sharesDir).sort(), ['share-g1-m1.txt', 'share-g1-m2.txt', 'share-g1-m3.txt', 'share-g2-m1.txt']);
      for (const f of readdirSync(sharesDir)) assert.equal(statSync(join(sharesDir, f)).mode & 0o777, 0o600, f);
      const share = (g: number, m: number) => readFileSync(join(sharesDir, `share-g${g}-m${m}.txt`), 'utf8').trim();
      const allShares = [share(1, 1), share(1, 2), share(1, 3), share(2, 1)];
      for (const s of allShares) assert.equal(s.split(' ').length, 33, 'a 256-bit secret: 33 words');
      const created = (await auditOf('vault.shares_created')).entries;
      assert.equal(created.length, 1);
      assert.deepEqual(created[0]!.data, {
        fingerprint: init.fingerprint, identifier: summary.identifier, groupThreshold: 2,
        groups: [{ memberThreshold: 2, memberCount: 3 }, { memberThreshold: 1, memberCount: 1 }], output: 'files',
      });
      // Writing over a share file is refused.
      refused(await runCli(['vault', 'split', '--groups', '2of3,1of1', '--group-threshold', '2', '--out-dir', sharesDir, '--passphrase-file', passFile], env), 'invalid_request');

      // ---- unseal by shares ----
      const daemon = await startDaemon(cliEnv({ AIRLOCK_DATA_DIR: config.dataDir, AIRLOCK_STORE: config.storeUrl, AIRLOCK_HOST: '127.0.0.1' }));
      cleanups.push(() => daemon.stop());
      const post = (body?: unknown, path = '/v1/unseal/shares') => httpJson(daemon.url, 'POST', path, body === undefined ? {} : { body });
      const progress = async () => (await httpJson(daemon.url, 'GET', '/v1/unseal/shares')).body;
      assert.equal((await httpJson(daemon.url, 'GET', '/v1/agents', { token: init.adminToken })).body.error.code, 'sealed');
      assert.deepEqual(await progress(), { status: 'collecting', groupThreshold: null, groupCount: null, groupsComplete: 0, groups: [] });

      const first = await post({ share: share(1, 1) });
      assert.deepEqual(first, { status: 200, body: { status: 'collecting', groupThreshold: 2, groupCount: 2, groupsComplete: 0, groups: [{ index: 0, have: 1, need: 2 }] } });
      // A corrupt share (two words swapped), a share of another set, a repeat: each named, none counted.
      const words = share(1, 2).split(' ');
      // Two neighbouring words that differ (a random share repeats a word in place about once in 1024 draws, and
      // swapping equal words would corrupt nothing): the checksum is guaranteed to catch a swap of two.
      const at = words.findIndex((w, i) => i >= 10 && words[i + 1] !== undefined && words[i + 1] !== w);
      const corrupt = [...words.slice(0, at), words[at + 1], words[at], ...words.slice(at + 2)].join(' ');
      assert.notEqual(corrupt, words.join(' '));
      const bad = await post({ share: corrupt });
      assert.equal(bad.status, 400);
      assert.equal(bad.body.error.code, 'slip39_invalid_checksum');
      const otherSet = splitSecret(new Uint8Array(randomBytes(32)), { groupThreshold: 1, groups: [{ memberThreshold: 2, memberCount: 2 }] });
      assert.equal((await post({ share: otherSet.groups[0]![0] })).body.error.code, 'slip39_share_mismatch');
      assert.equal((await post({ share: share(1, 1) })).body.error.code, 'slip39_duplicate_share');
      assert.deepEqual((await progress()).groups, [{ index: 0, have: 1, need: 2 }]);
      // A reset forgets it.
      assert.deepEqual((await post(undefined, '/v1/unseal/shares/reset')).body, { status: 'collecting', groupThreshold: null, groupCount: null, groupsComplete: 0, groups: [] });
      // A whole set of another vault: it combines, but to another vault; refused and cleared.
      assert.equal((await post({ share: otherSet.groups[0]![0] })).status, 200);
      const wrongVault = await post({ share: otherSet.groups[0]![1] });
      assert.equal(wrongVault.status, 400);
      assert.equal(wrongVault.body.error.code, 'vault_mismatch');
      assert.deepEqual((await progress()).groups, []);
      assert.equal((await httpJson(daemon.url, 'GET', '/v1/health')).body.status, 'sealed');

      // The holders, one by one: one over HTTP, one with `airlock unseal --share-file`, the last group's holder.
      const unsealEnv = cliEnv({ AIRLOCK_URL: daemon.url });
      const viaCli = await runCli(['unseal', '--share-file', join(sharesDir, 'share-g1-m3.txt')], unsealEnv);
      assert.equal(viaCli.code, 0, viaCli.stderr);
      assert.match(viaCli.stdout, /Sealed: 0 of 2 group\(s\) complete\. group 1: 1\/2/);
      assert.deepEqual((await post({ share: share(1, 2) })).body.groupsComplete, 1);
      const last = await runCli(['unseal', '--share-file', join(sharesDir, 'share-g2-m1.txt'), '--json'], unsealEnv);
      assert.equal(last.code, 0, last.stderr);
      assert.deepEqual(JSON.parse(last.stdout), { status: 'unsealed', groupThreshold: 2, groupCount: 2, groupsComplete: 2, groups: [{ index: 0, have: 2, need: 2 }, { index: 1, have: 1, need: 1 }] });
      assert.equal((await httpJson(daemon.url, 'GET', '/v1/health')).body.status, 'ok');

      // It signs as the agent created before (viem recovers the signer).
      const payer = agents[0]!;
      assert.equal((await httpJson(daemon.url, 'PUT', `/v1/policies/${payer.name}`, { token: init.adminToken, body: { document: usdcPolicy() } })).status, 200);
      const session = await httpJson(daemon.url, 'POST', `/v1/agents/${payer.name}/sessions`, { token: init.adminToken, body: { ttl: '1h', actions: ['evm.transaction'] } });
      assert.equal(session.status, 201, JSON.stringify(session.body));
      const signed = await httpJson(daemon.url, 'POST', '/v1/sign/transaction', { token: session.body.token, body: usdcTransfer(ALICE, 1_000_000n, 0) });
      assert.equal(signed.status, 200, JSON.stringify(signed.body));
      const signer = await recoverTransactionAddress({ serializedTransaction: signed.body.signedTransaction as `0x02${string}` });
      assert.equal(signer.toLowerCase(), payer.address);
      assert.equal(await daemon.stop(), 0);
      const unsealed = (await auditOf('vault.unsealed_by_shares')).entries;
      assert.deepEqual(unsealed.map((e) => e.data), [{ fingerprint: init.fingerprint, identifier: summary.identifier, groupThreshold: 2, groupsUsed: [0, 1] }]);

      // ---- restore from shares (the vault file lost) ----
      rmSync(config.vaultPath);
      const newPass = join(dir, 'new-pass.txt');
      writeFileSync(newPass, `${NEW_PASSPHRASE}\n`, { mode: 0o600 });
      // Below the threshold: refused, nothing written.
      const fewDir = join(dir, 'few');
      mkdirSync(fewDir, { mode: 0o700 });
      for (const f of ['share-g1-m1.txt', 'share-g1-m2.txt']) copyFileSync(join(sharesDir, f), join(fewDir, f));
      refused(await runCli(['restore', '--shares-dir', fewDir, '--passphrase-file', newPass], env), 'slip39_threshold_not_met');
      assert.ok(!existsSync(config.vaultPath));
      // Another vault's complete set: refused by the store check.
      const otherDir = join(dir, 'other');
      mkdirSync(otherDir, { mode: 0o700 });
      otherSet.groups[0]!.forEach((s, i) => writeFileSync(join(otherDir, `s${i}.txt`), s, { mode: 0o600 }));
      refused(await runCli(['restore', '--shares-dir', otherDir, '--passphrase-file', newPass], env), 'vault_mismatch');
      assert.ok(!existsSync(config.vaultPath));
      // Group 1 members 2 and 3, and group 2: another subset than the unseal used.
      const restored = await runCli(['restore', '--share-file', join(sharesDir, 'share-g1-m3.txt'), '--share-file', join(sharesDir, 'share-g1-m2.txt'), '--share-file', join(sharesDir, 'share-g2-m1.txt'), '--passphrase-file', newPass, '--json'], env);
      assert.equal(restored.code, 0, restored.stderr);
      assert.deepEqual({ ...JSON.parse(restored.stdout), auditSeq: 0 }, { fingerprint: init.fingerprint, agentsChecked: 3, keysChecked: 3, vaultPath: config.vaultPath, replaced: false, auditSeq: 0 });
      // Every agent address, derived independently of the restore's own check.
      const vault = await openVault(config.vaultPath, NEW_PASSPHRASE);
      const evm = createEvmAdapter();
      const keys = vault.keyBackend('hd');
      for (const a of agents) {
        assert.equal(evm.addressFromPublicKey(await keys.getPublicKey(evm.derivationPath(a.accountIndex, a.keyIndex))).toLowerCase(), a.address);
      }
      vault.wipe();

      // No share in any output, log or audit entry.
      const { all } = await auditOf('vault.shares_created');
      assertSharesAbsent(JSON.stringify(all), allShares, 'the audit log');
      assertSharesAbsent(daemon.output(), allShares, 'the daemon output');
      assertSharesAbsent(transcript.join('\n'), allShares, 'the CLI output');
    });
  });
}
