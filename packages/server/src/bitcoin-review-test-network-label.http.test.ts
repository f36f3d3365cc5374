// The test networks share coin type 1 and a script is the same bytes on every chain, so a coin paid on mainnet to
// the `bc1` form of an agent's regtest address sits on a vault key Airlock judged as regtest's: a mainnet PSBT
// spending it, sent with `network: "regtest"`, named coin type 1 as the label expects and was judged and charged
// by the regtest rules, past every mainnet destination, cap and budget (found by review: 899,000 sat to a stranger
// over a 10,000 sat mainnet cap, charged 0 on mainnet). A daemon now signs only for the networks its operator names
// (AIRLOCK_BITCOIN_NETWORKS, `bitcoin` by default); every other label is refused before anything is decoded.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as bitcoin from 'bitcoinjs-lib';
import { AirlockError, BITCOIN_CHAINS, bitcoinAsset } from '@airlock/core';
import { BitcoinTestChain, buildPsbt, fundedInput, payTo, TestWallet, verifyAirlockPsbt } from '../../testing/src/bitcoin/index.ts';
import { loadConfig } from './config.ts';
import { provisionAgent, startHarness, type Harness } from './testing/harness.ts';

const MAINNET = BITCOIN_CHAINS.bitcoin;
const REGTEST = BITCOIN_CHAINS.regtest;
const BTC_MAIN = bitcoinAsset(MAINNET);
const PAYEE = TestWallet.stranger('label payee', 'bitcoin').receive('p2wpkh', 0).address;
const MALLORY = TestWallet.stranger('label mallory', 'bitcoin').receive('p2wpkh', 0).address;

/** Mainnet: the payee only, at most 10,000 sat a request. Regtest (development): allowed, no limits. */
const policy = {
  version: 1,
  sets: { payees: [PAYEE] },
  rules: [
    { type: 'allow', name: 'mainnet', match: { actions: ['bitcoin.psbt'], chains: [MAINNET] } },
    { type: 'allow', name: 'regtest-dev', match: { actions: ['bitcoin.psbt'], chains: [REGTEST] } },
    { type: 'destinations', name: 'mainnet-payees', allow: '$payees', match: { actions: ['bitcoin.psbt'], chains: [MAINNET] } },
    { type: 'max_amount', name: 'mainnet-cap', asset: BTC_MAIN, max: '10000000' },
  ],
};

/** A mainnet PSBT spending 900,000 sat that reached the agent's regtest key at its bc1 address, to `to`. */
function mainnetSpendOfTestKey(h: Harness, accountIndex: number, to: string, amount: bigint): { psbt: string; chain: BitcoinTestChain } {
  const chain = new BitcoinTestChain('bitcoin');
  const key = TestWallet.fromMnemonic(h.mnemonic, 'regtest', accountIndex).receive('p2wpkh', 0);
  return { psbt: buildPsbt(chain, [fundedInput(chain, key, 900_000n)], [payTo(chain, to, amount)]).toBase64(), chain };
}

describe('a Bitcoin network label the daemon does not sign for', () => {
  let h: Harness;
  before(async () => {
    // What an operator runs without naming test networks: the default, mainnet only.
    h = await startHarness({ store: 'sqlite', config: { bitcoinNetworks: loadConfig({ dataDir: '/nonexistent' }, {}).bitcoinNetworks } });
  });
  after(async () => h.close());

  test('the attack: mainnet coins on the regtest key, spent to a stranger as "regtest", are refused before decoding; nothing signed, nothing charged', async () => {
    const { agent, token } = await provisionAgent(h, { policy, actions: ['bitcoin.psbt', 'bitcoin.message'] });
    // The agent cannot even learn its regtest address, nor the account's keys there.
    const address = await h.call('GET', '/v1/bitcoin/address?network=regtest&type=p2wpkh&change=0&index=0', { token });
    assert.deepEqual([address.status, address.body.error?.code], [403, 'bitcoin_network_disabled'], JSON.stringify(address.body));
    assert.deepEqual(address.body.error.details, { network: 'regtest', enabled: ['bitcoin'] });
    const account = await h.call('GET', '/v1/bitcoin/account?network=signet', { token });
    assert.deepEqual([account.status, account.body.error?.code], [403, 'bitcoin_network_disabled']);
    // A payer could still have been handed the bc1 form of that script earlier: the spend is refused all the same.
    const { psbt } = mainnetSpendOfTestKey(h, agent.accountIndex, MALLORY, 899_000n);
    const res = await h.call('POST', '/v1/sign/psbt', { token, body: { psbt, network: 'regtest' } });
    assert.deepEqual([res.status, res.body.error?.code], [403, 'bitcoin_network_disabled'], JSON.stringify(res.body));
    assert.equal(res.body.psbt, undefined);
    const message = await h.call('POST', '/v1/sign/bitcoin-message', { token, body: { message: 'hello', network: 'testnet4', addressType: 'p2wpkh' } });
    assert.deepEqual([message.status, message.body.error?.code], [403, 'bitcoin_network_disabled']);
    const charged = await h.airlock.store.transaction((tx) => tx.windowTotals([{ series: `agent:${agent.id}`, asset: bitcoinAsset(REGTEST), sinceMs: 0 }, { series: `agent:${agent.id}`, asset: BTC_MAIN, sinceMs: 0 }]));
    assert.deepEqual(charged.map((c) => c.amount), [0n, 0n]);
    // The same spend named as mainnet is the mainnet key's business: coin type 1 there is a network mismatch.
    const asMainnet = await h.call('POST', '/v1/sign/psbt', { token, body: { psbt, network: 'bitcoin' } });
    assert.equal(asMainnet.body.error?.code, 'psbt_network_mismatch');
  });

  test('mainnet still signs what its rules allow, and refuses what they do not', async () => {
    const { agent, token } = await provisionAgent(h, { policy, actions: ['bitcoin.psbt'] });
    const chain = new BitcoinTestChain('bitcoin');
    const key = TestWallet.fromMnemonic(h.mnemonic, 'bitcoin', agent.accountIndex).receive('p2wpkh', 0);
    const pay = buildPsbt(chain, [fundedInput(chain, key, 10_000n)], [payTo(chain, PAYEE, 9_500n)]).toBase64();
    const paid = await h.call('POST', '/v1/sign/psbt', { token, body: { psbt: pay, network: 'bitcoin' } });
    assert.equal(paid.status, 200, JSON.stringify(paid.body));
    assert.ok(verifyAirlockPsbt(paid.body.psbt, { chain, sent: pay }));
    const drain = buildPsbt(chain, [fundedInput(chain, key, 900_000n)], [payTo(chain, MALLORY, 899_000n)]).toBase64();
    assert.equal((await h.call('POST', '/v1/sign/psbt', { token, body: { psbt: drain, network: 'bitcoin' } })).status, 403);
  });
});

describe('AIRLOCK_BITCOIN_NETWORKS', () => {
  test('unset or empty: mainnet only; a list names the networks signed for; an unknown name is config_invalid', () => {
    const read = (value?: string) => loadConfig({ dataDir: '/nonexistent' }, value === undefined ? {} : { AIRLOCK_BITCOIN_NETWORKS: value }).bitcoinNetworks;
    assert.deepEqual(read(), ['bitcoin']);
    assert.deepEqual(read(' '), ['bitcoin']);
    assert.deepEqual(read('regtest, signet,regtest'), ['regtest', 'signet']);
    assert.throws(() => read('bitcoin,liquid'), (e: unknown) => e instanceof AirlockError && e.code === 'config_invalid' && e.message.includes('"liquid"'));
  });

  test('a development daemon that names regtest signs it, and refuses mainnet', async () => {
    const h = await startHarness({ store: 'sqlite', config: { bitcoinNetworks: ['regtest'] } });
    try {
      const { agent, token } = await provisionAgent(h, { policy, actions: ['bitcoin.psbt'] });
      const chain = new BitcoinTestChain('regtest');
      const key = TestWallet.fromMnemonic(h.mnemonic, 'regtest', agent.accountIndex).receive('p2wpkh', 0);
      const psbt = buildPsbt(chain, [fundedInput(chain, key, 50_000n)], [payTo(chain, TestWallet.stranger('label dev', 'regtest').receive('p2wpkh', 0).address, 40_000n)]).toBase64();
      const signed = await h.call('POST', '/v1/sign/psbt', { token, body: { psbt, network: 'regtest' } });
      assert.equal(signed.status, 200, JSON.stringify(signed.body));
      const mainnet = await h.call('GET', '/v1/bitcoin/account?network=bitcoin', { token });
      assert.deepEqual([mainnet.status, mainnet.body.error?.code], [403, 'bitcoin_network_disabled']);
      // The review's address: the regtest script re-encoded for mainnet is the same key (why the label alone cannot tell).
      const address = await h.call('GET', '/v1/bitcoin/address?network=regtest&type=p2wpkh&change=0&index=0', { token });
      const script = bitcoin.address.toOutputScript(address.body.address, bitcoin.networks.regtest);
      assert.match(bitcoin.address.fromOutputScript(script, bitcoin.networks.bitcoin), /^bc1q/);
    } finally {
      await h.close();
    }
  });
});
