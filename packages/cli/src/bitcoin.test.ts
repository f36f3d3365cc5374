// `airlock bitcoin` end to end: the real command, as child processes, against a real daemon (`airlock start`).
// Asserts exit codes and what the operator reads: descriptors a wallet can import (key origin under the vault
// fingerprint, a valid BIP-380 checksum), addresses the agent is really given, and a decoded PSBT with its
// fee, its outputs and the decision policy would take, nothing signed.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BitcoinAccount } from '@airlock/sdk/bitcoin';
import { adminClient, httpJson, prepareDaemonData, type DaemonData } from '../../server/src/testing/processes.ts';
import { BitcoinTestChain, buildPsbt, fundedInput, payTo, TestWallet, walletOutput } from '../../testing/src/bitcoin/index.ts';
import { cliEnv, runCli, startDaemon, type CliResult, type Daemon } from './testing/cli-process.ts';

// BIP-380 descriptor checksum, as the BIP's reference code computes it (a BCH code over 5-bit symbols).
const INPUT_CHARSET = '0123456789()[],\'/*abcdefgh@:$%{}IJKLMNOPQRSTUVWXYZ&+-.;<=>?!^_|~ijklmnopqrstuvwxyzABCDEFGH`#"\\ ';
const CHECKSUM_CHARSET = 'qpzry9x8gf2tvdw0s3jn54khce6mua7l';
const GENERATOR = [0xf5dee51989n, 0xa9fdca3312n, 0x1bab10e32dn, 0x3706b1677an, 0x644d626ffdn];

function polymod(symbols: number[]): bigint {
  let chk = 1n;
  for (const value of symbols) {
    const top = chk >> 35n;
    chk = ((chk & 0x7ffffffffn) << 5n) ^ BigInt(value);
    for (let i = 0; i < 5; i++) if ((top >> BigInt(i)) & 1n) chk ^= GENERATOR[i]!;
  }
  return chk;
}

/** True when `descriptor` ends in `#` and eight checksum characters that are its BIP-380 checksum. */
function hasValidChecksum(descriptor: string): boolean {
  const at = descriptor.length - 9;
  if (at < 0 || descriptor[at] !== '#') return false;
  const symbols: number[] = [];
  let groups: number[] = [];
  for (const c of descriptor.slice(0, at)) {
    const v = INPUT_CHARSET.indexOf(c);
    if (v < 0) return false;
    symbols.push(v & 31);
    groups.push(v >> 5);
    if (groups.length === 3) {
      symbols.push(groups[0]! * 9 + groups[1]! * 3 + groups[2]!);
      groups = [];
    }
  }
  if (groups.length === 1) symbols.push(groups[0]!);
  if (groups.length === 2) symbols.push(groups[0]! * 3 + groups[1]!);
  for (const c of descriptor.slice(at + 1)) {
    const v = CHECKSUM_CHARSET.indexOf(c);
    if (v < 0) return false;
    symbols.push(v);
  }
  return polymod(symbols) === 1n;
}

describe('airlock bitcoin, end to end', () => {
  let data: DaemonData;
  let daemon: Daemon;
  let dir: string;
  const SHOP = TestWallet.stranger('cli shop', 'regtest').receive('p2wpkh').address;
  const chain = new BitcoinTestChain('regtest');

  /** Runs the CLI as an operator's shell would: daemon URL and admin token in the environment. */
  const airlock = (...args: string[]) => runCli(['bitcoin', ...args], cliEnv({ AIRLOCK_URL: daemon.url, AIRLOCK_ADMIN_TOKEN: data.adminToken }));
  const ok = (r: CliResult) => {
    assert.equal(r.code, 0, `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
    return r.stdout;
  };
  const admin = (method: string, path: string, body?: unknown) => adminClient(daemon.url, data.adminToken)(method, path, body);

  /** An agent allowed to pay the shop with a fee of at most 2000 sat, and a session token for it. */
  const bitcoinAgent = async (name: string) => {
    const agent = (await admin('POST', '/v1/agents', { names: [name] })).body.agents[0] as { id: string; name: string };
    const policy = { version: 1, rules: [{ type: 'allow', name: 'pay-shop', match: { actions: ['bitcoin.psbt'], to: [SHOP] } }, { type: 'bitcoin', name: 'fees', max_fee_sat: '2000' }] };
    assert.equal((await admin('PUT', `/v1/policies/${agent.name}`, { document: policy })).status, 200);
    const token = (await admin('POST', `/v1/agents/${agent.name}/sessions`, { ttl: '1h', actions: ['bitcoin.psbt'] })).body.token as string;
    const account = (await admin('GET', `/v1/agents/${agent.name}/bitcoin?network=regtest`)).body as BitcoinAccount;
    return { agent, token, account, watchOnly: TestWallet.fromAccountResponse(account, 'regtest') };
  };

  let alice: Awaited<ReturnType<typeof bitcoinAgent>>;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'airlock-cli-btc-'));
    data = await prepareDaemonData('sqlite');
    daemon = await startDaemon(cliEnv({ AIRLOCK_DATA_DIR: data.dataDir, AIRLOCK_STORE: data.storeUrl, AIRLOCK_PASSPHRASE: data.passphrase, AIRLOCK_BITCOIN_NETWORKS: 'bitcoin,regtest' }));
    alice = await bitcoinAgent('alice');
  });
  after(async () => {
    await daemon?.stop();
    await data?.cleanup();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('the checksum check itself: the BIP-380 example passes, one changed character fails', () => {
    assert.equal(hasValidChecksum('raw(deadbeef)#89f8spxm'), true);
    assert.equal(hasValidChecksum('raw(deadbeff)#89f8spxm'), false);
    assert.equal(hasValidChecksum('raw(deadbeef)'), false);
  });

  test('account: descriptors under the vault fingerprint with valid checksums, xpubs, and the addresses the agent is given', async () => {
    const out = ok(await airlock('account', 'alice', '--network', 'regtest'));
    const { fingerprint, accountIndex } = alice.account;
    assert.match(out, new RegExp(`^fingerprint  ${fingerprint}$`, 'm'));
    assert.match(out, /^network {6}regtest$/m);
    const descriptors = [...out.matchAll(/^ {2}(?:descriptor|receive|change) +(\S+)$/gm)].map((m) => m[1]!);
    assert.equal(descriptors.length, 6, out);
    for (const d of descriptors) {
      assert.ok(hasValidChecksum(d), `checksum of ${d}`);
      assert.match(d, new RegExp(`^(wpkh|tr)\\(\\[${fingerprint}/(84|86)['h]/1['h]/${accountIndex}['h]\\]tpub`));
    }
    assert.ok(descriptors.some((d) => d.startsWith('wpkh(')) && descriptors.some((d) => d.startsWith('tr(')));
    for (const type of ['p2wpkh', 'p2tr'] as const) assert.ok(out.includes(`  xpub        ${alice.account.accounts[type].xpub}`), `${type} xpub printed`);

    // The addresses printed are the ones Airlock gives the agent (derived by the CLI from the xpub).
    const printed = [...out.matchAll(/^ {2}(?:addresses| {9}) +(\d+) +(bcrt1\S+)$/gm)].map((m) => [Number(m[1]), m[2]!] as const);
    assert.equal(printed.length, 6, out);
    for (const [i, [index, address]] of printed.entries()) {
      const type = i < 3 ? 'p2wpkh' : 'p2tr';
      const given = await httpJson(daemon.url, 'GET', `/v1/bitcoin/address?network=regtest&type=${type}&index=${index}`, { token: alice.token });
      assert.equal(given.body.address, address, `${type} receive address ${index}`);
    }

    const json = JSON.parse(ok(await airlock('account', 'alice', '--network', 'regtest', '--count', '2', '--json')));
    assert.deepEqual({ ...json, receiveAddresses: undefined }, { ...alice.account, receiveAddresses: undefined });
    assert.deepEqual(json.receiveAddresses.p2tr.map((a: { address: string }) => a.address), printed.slice(3, 5).map(([, a]) => a));
  });

  test('decode: inputs (ours and not), outputs (external with address, change with path), fee and decision; nothing signed', async () => {
    const stranger = TestWallet.stranger('cli co-signer', 'regtest');
    const { watchOnly } = alice;
    const built = buildPsbt(
      chain,
      [fundedInput(chain, watchOnly.receive('p2wpkh', 2), 100_000n), fundedInput(chain, stranger.receive('p2wpkh'), 5_000n)],
      [payTo(chain, SHOP, 60_000n), walletOutput(watchOnly.change('p2wpkh', 0), 43_800n)],
    );
    const psbt = built.toBase64();
    const file = join(dir, 'pay.psbt');
    writeFileSync(file, built.toBuffer()); // binary, as wallets save them
    const audited = (await admin('GET', '/v1/audit/head')).body;
    const out = ok(await airlock('decode', 'alice', file, '--network', 'regtest'));
    assert.match(out, /^fee {10}1200 sat {2}\(\d+(\.\d+)? sat\/vB over \d+ vB\)$/m);
    const { p2wpkh } = alice.account.accounts;
    assert.match(out, new RegExp(`^0 +[0-9a-f]{64}:0 +100000 +p2wpkh +yes +${escape(p2wpkh.path)}/0/2 +all$`, 'm'));
    assert.match(out, /^1 +[0-9a-f]{64}:0 +5000 +p2wpkh +no +- +-$/m);
    assert.match(out, new RegExp(`^0 +60000 +external +${SHOP} +-$`, 'm'));
    assert.match(out, new RegExp(`^1 +43800 +change +bcrt1q\\S+ +${escape(p2wpkh.path)}/1/0$`, 'm'));
    assert.match(out, /^decision {5}ALLOW {2}\(policy .*allowed by agent\/pay-shop\)$/m);
    assert.deepEqual((await admin('GET', '/v1/audit/head')).body, audited, 'a decode is not recorded: nothing was signed');

    // The same from base64 on the command line, --json: the dry-run answer.
    const json = JSON.parse(ok(await airlock('decode', 'alice', psbt, '--network', 'regtest', '--json')));
    assert.equal(json.decision.decision, 'allow');
    assert.equal(json.intent.bitcoin.feeSat, '1200');
  });

  test('decode of a PSBT policy refuses: still exit 0 (it decoded), the decision and its violations printed', async () => {
    const psbt = buildPsbt(chain, [fundedInput(chain, alice.watchOnly.receive('p2wpkh'), 100_000n)], [payTo(chain, SHOP, 90_000n)]).toBase64();
    const out = ok(await airlock('decode', 'alice', psbt, '--network', 'regtest'));
    assert.match(out, /^fee {10}10000 sat/m);
    assert.match(out, /^decision {5}DENY {2}\(policy [^;]*\)$/m);
    assert.match(out, /^ {2}agent\/fees {2}fee_exceeds_cap: /m);
  });

  test('decode errors: a malformed PSBT exits 1 with its code; a bad network is a usage error', async () => {
    const bad = await airlock('decode', 'alice', Buffer.from('definitely not a psbt').toString('base64'), '--network', 'regtest');
    assert.equal(bad.code, 1, bad.stderr);
    assert.match(bad.stderr, /^error \[psbt_malformed\]/m);
    const usage = await airlock('decode', 'alice', 'cHNidP8=', '--network', 'mainnet');
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /--network: expected one of bitcoin, testnet, testnet4, signet, regtest/);
  });
});

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
