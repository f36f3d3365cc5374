// docs/bitcoin.md's example, run as written: the fenced TypeScript under "Example: an agent pays from its wallet"
// is copied to a file and run with Node against a daemon, with a PSBT built as a watch-only wallet builds one
// (bitcoinjs-lib, derivation fields from the descriptor's account key). Once paid within policy, once refused.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { BITCOIN_CHAINS } from '@airlock/core';
import { initAirlock } from './runtime.ts';
import { loadConfig } from './config.ts';
import { serveAirlock, type RunningServer } from './serve.ts';
import { TEST_PASSPHRASE, TEST_VAULT } from './testing/harness.ts';
import { BitcoinTestChain, buildPsbt, fundedInput, payTo, TestWallet, walletOutput, type AccountResponse } from '../../testing/src/bitcoin/index.ts';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const SHOP = TestWallet.stranger('docs shop', 'regtest').receive('p2wpkh').address;

/** The first ```ts block after the example's heading. */
function exampleBlock(): string {
  const doc = readFileSync(join(ROOT, 'docs/bitcoin.md'), 'utf8');
  const section = doc.slice(doc.indexOf('## Example: an agent pays from its wallet'));
  const match = /```ts\n([\s\S]*?)```/.exec(section);
  assert.ok(match, 'docs/bitcoin.md has its example');
  return match[1]!;
}

let server: RunningServer;
let dataDir: string;
let workDir: string;
let adminToken: string;
const admin = async (method: string, path: string, body?: unknown) => {
  const res = await fetch(`${server.url}${path}`, { method, headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' }, ...(body ? { body: JSON.stringify(body) } : {}) });
  return res.json() as Promise<any>;
};

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'airlock-docs-bitcoin-'));
  // As docs/bitcoin.md starts its daemon: a test network is signed for only when named.
  const config = loadConfig({ dataDir, host: '127.0.0.1', port: 0 }, { AIRLOCK_BITCOIN_NETWORKS: 'regtest' });
  adminToken = (await initAirlock(config, TEST_PASSPHRASE, TEST_VAULT)).adminToken;
  server = await serveAirlock(config, TEST_PASSPHRASE, { vault: TEST_VAULT });
  // Inside the repository, so that `@airlock/sdk` resolves as it does for a user of the workspace.
  mkdirSync(join(ROOT, '.tmp'), { recursive: true });
  workDir = mkdtempSync(join(ROOT, '.tmp', 'docs-bitcoin-'));
});

after(async () => {
  await server?.close().catch(() => {});
  rmSync(dataDir, { recursive: true, force: true });
  rmSync(workDir, { recursive: true, force: true });
});

test('docs/bitcoin.md example: pays the shop within policy (signed, finalized), and prints the refusal of a stranger', async () => {
  const [agent] = (await admin('POST', '/v1/agents', { names: ['docs-bitcoin'] })).agents;
  await admin('PUT', `/v1/policies/${agent.name}`, {
    document: { version: 1, sets: { shops: [SHOP] }, rules: [{ name: 'pay-shop', type: 'allow', match: { actions: ['bitcoin.psbt'], chains: [BITCOIN_CHAINS.regtest], to: '$shops' } }, { name: 'fees', type: 'bitcoin', max_fee_rate: 20 }] },
  });
  const { token } = await admin('POST', `/v1/agents/${agent.name}/sessions`, { ttl: '1h', actions: ['bitcoin.psbt'] });
  const account: AccountResponse = await admin('GET', `/v1/agents/${agent.name}/bitcoin?network=regtest`);
  // The watch-only wallet: the account key from the descriptor, and a coin it received.
  const wallet = TestWallet.fromAccountResponse(account, 'regtest');
  const chain = new BitcoinTestChain('regtest');
  const unsigned = (to: string) =>
    buildPsbt(chain, [fundedInput(chain, wallet.receive('p2wpkh', 0), 100_000n)], [payTo(chain, to, 20_000n), walletOutput(wallet.change('p2wpkh', 0), 78_590n)]).toBase64();

  const script = join(workDir, 'pay.ts');
  writeFileSync(script, exampleBlock());
  const run = async (psbt: string) => {
    const file = join(workDir, 'unsigned.psbt');
    writeFileSync(file, `${psbt}\n`);
    const { stdout } = await promisify(execFile)(process.execPath, [script, file], { env: { ...process.env, AIRLOCK_URL: server.url, AIRLOCK_TOKEN: token }, timeout: 60_000 });
    return stdout;
  };

  const paid = await run(unsigned(SHOP));
  assert.match(paid, /^watch-only descriptor: wpkh\(\[[0-9a-f]{8}\/84h\/1h\/\d+h\]tpub\w+\/<0;1>\/\*\)#[a-z0-9]{8}$/m);
  assert.match(paid, /^signed inputs 0; fee 1410 sat \(10 sat\/vB\)$/m);
  const [, txid, prefix] = /^txid ([0-9a-f]{64}): broadcast with bitcoin-cli sendrawtransaction ([0-9a-f]{16})…$/m.exec(paid) ?? [];
  assert.ok(txid, paid);
  assert.ok(prefix!.startsWith('02000000000101'), `a segwit version 2 transaction with one input: ${prefix}`);

  const stranger = TestWallet.stranger('docs stranger', 'regtest').receive('p2wpkh').address;
  assert.equal((await run(unsigned(stranger))).trim().split('\n').at(-1), 'refused: agent/default no_matching_allow_rule');
});
