// The absolute fee caps (`max_fee_sat`, `max_fee_percent`) against the highest fee the agent's signatures allow
// from the coins the PSBT shows, not only the PSBT's own fee. An output no signature commits to (SIGHASH_NONE,
// or SINGLE at another index) can be dropped after signing and its amount left to the fee; under ANYONECANPAY
// the co-signer's inputs stay or go as suits whoever broadcasts. Each refusal names the rule and its existing
// code, says the highest possible fee, and charges nothing; the same PSBT signed SIGHASH_ALL (its fee fixed by
// the signature) is judged on its own fee, as before. Under ALL|ANYONECANPAY every output is committed to:
// removing a co-signer's input (padding or not) can only lower the fee, so the PSBT's fee is the highest.
// Decoding and policy do not depend on the store: SQLite only.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as bitcoin from 'bitcoinjs-lib';
import { BITCOIN_CHAINS, bitcoinAsset } from '@airlock/core';
import { BitcoinTestChain, buildPsbt, fundedInput, payTo, TestWallet, paddingInput, walletOutput } from '../../testing/src/bitcoin/index.ts';
import { provisionAgent, startHarness, type Harness } from './testing/harness.ts';

const CHAIN = BITCOIN_CHAINS.regtest;
const BTC = bitcoinAsset(CHAIN);
const MSAT = 1000n;
const { SIGHASH_ALL, SIGHASH_NONE, SIGHASH_SINGLE, SIGHASH_ANYONECANPAY } = bitcoin.Transaction;
const payee = TestWallet.stranger('fee cap sighash payee', 'regtest');
const mallory = TestWallet.stranger('fee cap sighash mallory', 'regtest');
const PAYEE = payee.receive('p2wpkh', 0).address;
const PAYBACK = mallory.receive('p2wpkh', 99).address;

function policy(cap: { max_fee_sat?: string; max_fee_percent?: number }) {
  return {
    version: 1,
    rules: [
      { type: 'allow', name: 'bitcoin', match: { actions: ['bitcoin.psbt'], chains: [CHAIN], bitcoin_sighash: ['all', 'default', 'none', 'single', 'all_anyonecanpay', 'single_anyonecanpay'] } },
      { type: 'bitcoin', name: 'fee-cap', ...cap },
      { type: 'budget', name: 'daily', asset: BTC, max: String(10_000_000n * MSAT), window: '24h', scope: 'agent' },
    ],
  };
}

/** Mallory's co-signer padding (a 0-sat P2SH 15-of-15 input). */
const padding = () => paddingInput(mallory);

describe('the absolute fee caps against the highest fee the signatures allow', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ store: 'sqlite' });
  });
  after(async () => h.close());

  async function agentWith(cap: { max_fee_sat?: string; max_fee_percent?: number }) {
    const { agent, token } = await provisionAgent(h, { policy: policy(cap), actions: ['bitcoin.psbt'] });
    return { agent, token, wallet: TestWallet.fromMnemonic(h.mnemonic, 'regtest', agent.accountIndex), chain: new BitcoinTestChain('regtest') };
  }
  const sign = (token: string, psbt: bitcoin.Psbt) => h.call('POST', '/v1/sign/psbt', { token, body: { psbt: psbt.toBase64(), network: 'regtest' } });
  const charged = async (agentId: string) => (await h.airlock.store.transaction((tx) => tx.windowTotals([{ series: `agent:${agentId}`, asset: BTC, sinceMs: 0 }])))[0]?.amount ?? 0n;

  /** Refused by the fee cap and nothing else, nothing signed or charged: the fee it was judged on. */
  async function overTheCap(res: { status: number; body: any }, agentId: string, shownFee: bigint): Promise<bigint> {
    assert.equal(res.status, 403, JSON.stringify(res.body));
    assert.deepEqual(
      res.body.error.violations.map((v: any) => [v.rule, v.code]),
      [['agent/fee-cap', 'fee_exceeds_cap']],
    );
    const message: string = res.body.error.violations[0].message;
    assert.match(message, new RegExp(`the signatures allow a fee of up to \\d+ sat \\(the PSBT shows ${shownFee} sat\\)`), message);
    assert.equal(res.body.psbt, undefined);
    assert.equal(await charged(agentId), 0n);
    return BigInt(res.body.error.violations[0].requested);
  }

  describe('max_fee_sat', () => {
    test("SINGLE|ANYONECANPAY beside a co-signer's coin and padding: the co-signer's output can be dropped, its coin's value left to fee -> refused; the same PSBT SIGHASH_ALL is signed", async () => {
      const { agent, token, wallet, chain } = await agentWith({ max_fee_sat: '5000' });
      const theirs = () => fundedInput(chain, mallory.receive('p2wpkh', 0), 50_000n, { withPreviousTransaction: true });
      const outputs = () => [payTo(chain, PAYEE, 90_000n), payTo(chain, PAYBACK, 59_000n)];
      // Shown: 150,000 in, 149,000 out, a 1,000 sat fee. Signed SINGLE|ACP, output 1 is committed to by no one.
      const ours = fundedInput(chain, wallet.receive('p2wpkh', 0), 100_000n, { sighashType: SIGHASH_SINGLE | SIGHASH_ANYONECANPAY, withPreviousTransaction: true });
      const fee = await overTheCap(await sign(token, buildPsbt(chain, [ours, theirs(), padding()], outputs())), agent.id, 1_000n);
      assert.equal(fee, 60_000n);

      const all = fundedInput(chain, wallet.receive('p2wpkh', 1), 100_000n, { sighashType: SIGHASH_ALL, withPreviousTransaction: true });
      const res = await sign(token, buildPsbt(chain, [all, theirs(), padding()], outputs()));
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(BigInt(res.body.intent.bitcoin.feeSat), 1_000n);
    });

    test('ALL|ANYONECANPAY beside co-signer padding: every output is committed to, leaving inputs out only lowers the fee: judged on the PSBT fee (signed under the cap, refused over it with the plain message)', async () => {
      const { agent, token, wallet, chain } = await agentWith({ max_fee_sat: '5000' });
      const ours = () => fundedInput(chain, wallet.receive('p2tr', 0), 100_000n, { sighashType: SIGHASH_ALL | SIGHASH_ANYONECANPAY, withPreviousTransaction: true });
      const under = await sign(token, buildPsbt(chain, [ours(), padding()], [payTo(chain, PAYEE, 96_000n)]));
      assert.equal(under.status, 200, JSON.stringify(under.body));
      const over = await sign(token, buildPsbt(chain, [ours(), padding()], [payTo(chain, PAYEE, 94_000n)]));
      assert.equal(over.status, 403, JSON.stringify(over.body));
      assert.deepEqual(over.body.error.violations.map((v: any) => [v.rule, v.code, v.message]), [['agent/fee-cap', 'fee_exceeds_cap', 'the fee is 6000 sat; at most 5000 sat allowed']]);
      assert.equal(await charged(agent.id), 4_000n * MSAT + 96_000n * MSAT);
    });

    test("SIGHASH_NONE with the agent's change output uncommitted: all of the change can go to fee -> refused; SIGHASH_ALL is signed", async () => {
      const { agent, token, wallet, chain } = await agentWith({ max_fee_sat: '5000' });
      const outputs = () => [payTo(chain, PAYEE, 50_000n), walletOutput(wallet.change('p2wpkh', 0), 49_000n)];
      const none = fundedInput(chain, wallet.receive('p2wpkh', 0), 100_000n, { sighashType: SIGHASH_NONE, withPreviousTransaction: true });
      const fee = await overTheCap(await sign(token, buildPsbt(chain, [none], outputs())), agent.id, 1_000n);
      assert.equal(fee, 100_000n);

      const all = fundedInput(chain, wallet.receive('p2wpkh', 1), 100_000n, { sighashType: SIGHASH_ALL, withPreviousTransaction: true });
      const res = await sign(token, buildPsbt(chain, [all], outputs()));
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(BigInt(res.body.intent.bitcoin.feeSat), 1_000n);
    });
  });

  describe('max_fee_percent', () => {
    test('SIGHASH_SINGLE: output 1 can be dropped: the highest fee over the least sent -> refused; SIGHASH_ALL is signed', async () => {
      const { agent, token, wallet, chain } = await agentWith({ max_fee_percent: 5 });
      const outputs = () => [payTo(chain, PAYEE, 90_000n), payTo(chain, PAYBACK, 9_000n)];
      // Shown: 1,000 sat on 99,000 sent (1 %). Allowed: 10,000 sat on 90,000 sent (11 %).
      const single = fundedInput(chain, wallet.receive('p2wpkh', 0), 100_000n, { sighashType: SIGHASH_SINGLE, withPreviousTransaction: true });
      const res = await sign(token, buildPsbt(chain, [single], outputs()));
      assert.equal(await overTheCap(res, agent.id, 1_000n), 10_000n);
      assert.match(res.body.error.violations[0].message, /at most 5% of the 90000 sat the signatures make sure is sent \(4500 sat\)/);

      const all = fundedInput(chain, wallet.receive('p2wpkh', 1), 100_000n, { sighashType: SIGHASH_ALL, withPreviousTransaction: true });
      const ok = await sign(token, buildPsbt(chain, [all], outputs()));
      assert.equal(ok.status, 200, JSON.stringify(ok.body));
    });

    test("SIGHASH_NONE with the agent's change uncommitted: nothing is sure to be sent -> refused; SIGHASH_ALL is signed", async () => {
      const { agent, token, wallet, chain } = await agentWith({ max_fee_percent: 5 });
      const outputs = () => [payTo(chain, PAYEE, 50_000n), walletOutput(wallet.change('p2wpkh', 0), 49_000n)];
      const none = fundedInput(chain, wallet.receive('p2wpkh', 0), 100_000n, { sighashType: SIGHASH_NONE, withPreviousTransaction: true });
      assert.equal(await overTheCap(await sign(token, buildPsbt(chain, [none], outputs())), agent.id, 1_000n), 100_000n);

      const all = fundedInput(chain, wallet.receive('p2wpkh', 1), 100_000n, { sighashType: SIGHASH_ALL, withPreviousTransaction: true });
      const ok = await sign(token, buildPsbt(chain, [all], outputs()));
      assert.equal(ok.status, 200, JSON.stringify(ok.body));
      assert.equal(BigInt(ok.body.intent.bitcoin.feeSat), 1_000n);
    });
  });
});
