// A third round of attacks on Bitcoin signing through the public HTTP API (bitcoin-attacks.http.test.ts and
// bitcoin-review.http.test.ts have the first two): what the agent's signatures do NOT commit to. A P2WPKH
// signature (BIP-143) commits to its own input's amount only, an ANYONECANPAY one (BIP-143 and BIP-341) to its
// own input only, and none commits to another input's scriptSig or witness. Each attack is the reviewer's, run
// as written: the agent's own coins presented as a stranger's in two requests that each understate the other,
// a BIP-322 message proof obtained as a PSBT, a co-signer's previous script claimed to lower the fee rate. Each
// asserts what a user sees (status, code), that nothing was signed or charged, and, where Airlock signs, that
// the charge is at least what the chain double takes from the agent. PSBTs are built with bitcoinjs-lib from
// keys the test derives from the vault's mnemonic; fields bitcoinjs refuses to write go into the raw maps.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as bitcoin from 'bitcoinjs-lib';
import { Verifier } from 'bip322-js';
import { BITCOIN_CHAINS, bitcoinAsset } from '@airlock/core';
import { utf8ToBytes } from '@noble/hashes/utils.js';
import { base64 } from '@scure/base';
import { RawTx, RawWitness, Transaction } from '@scure/btc-signer';
import { bip322MessageHash, bip322Transactions } from '../../chains/src/bitcoin/message.ts';
import {
  BitcoinTestChain,
  buildPsbt,
  compactSize,
  decodePsbtMaps,
  encodePsbtMaps,
  fundedInput,
  IN,
  payTo,
  signOwnInputs,
  TestWallet,
  verifyAirlockPsbt,
  walletInput,
  walletOutput,
  type Utxo,
  type WalletKey,
} from '../../testing/src/bitcoin/index.ts';
import { provisionAgent, startHarness, type Harness } from './testing/harness.ts';

const CHAIN = BITCOIN_CHAINS.regtest;
const BTC = bitcoinAsset(CHAIN);
const MSAT = 1000n;
const ALL_ANYONECANPAY = 0x81;
const payee = TestWallet.stranger('third review payee', 'regtest');
const mallory = TestWallet.stranger('third review mallory', 'regtest');
const PAYEE = payee.receive('p2wpkh', 0).address;

/** The reviewer's policy: fees capped at 1,000 sat and 10 sat/vB, a budget of 50,000 sat. */
const tight = (allowMatch: Record<string, unknown> = {}) => ({
  version: 1,
  rules: [
    { type: 'allow', name: 'bitcoin', match: { actions: ['bitcoin.psbt'], chains: [CHAIN], ...allowMatch } },
    { type: 'bitcoin', name: 'fees', max_fee_sat: '1000', max_fee_rate: 10 },
    { type: 'budget', name: 'daily', asset: BTC, max: String(50_000n * MSAT), window: '24h', scope: 'agent' },
  ],
});
/** Anything on regtest (with the sighash types named), under a budget far above every test. */
const open = (allowMatch: Record<string, unknown> = {}) => ({
  version: 1,
  rules: [
    { type: 'allow', name: 'bitcoin', match: { actions: ['bitcoin.psbt'], chains: [CHAIN], ...allowMatch } },
    { type: 'budget', name: 'daily', asset: BTC, max: String(10_000_000n * MSAT), window: '24h', scope: 'agent' },
  ],
});

describe('what the agent signature does not commit to, attacked over HTTP', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ store: 'sqlite' });
  });
  after(async () => h.close());

  async function agentWith(doc: unknown) {
    const { agent, token } = await provisionAgent(h, { policy: doc, actions: ['bitcoin.psbt'] });
    return { agent, token, wallet: TestWallet.fromMnemonic(h.mnemonic, 'regtest', agent.accountIndex) };
  }
  const sign = (token: string, psbt: string, extra: Record<string, unknown> = {}) => h.call('POST', '/v1/sign/psbt', { token, body: { psbt, network: 'regtest', ...extra } });
  const charged = async (agentId: string) => (await h.airlock.store.transaction((tx) => tx.windowTotals([{ series: `agent:${agentId}`, asset: BTC, sinceMs: 0 }])))[0]!.amount;

  /** Refused with `status`/`code` (a 403's violation codes in `violations`): no PSBT back, nothing charged, no allow on the audit log. */
  async function refused(res: { status: number; body: any }, agent: { id: string; name: string }, status: number, code: string, violations?: string[]): Promise<void> {
    assert.equal(res.status, status, JSON.stringify(res.body));
    assert.equal(res.body.error?.code, code, JSON.stringify(res.body));
    if (violations) assert.deepEqual(res.body.error.violations.map((v: any) => v.code), violations);
    assert.equal(res.body.psbt, undefined);
    assert.equal(res.body.signedInputs, undefined);
    assert.equal(await charged(agent.id), 0n);
    const entries = (await h.admin('GET', `/v1/audit?agent=${agent.name}&limit=1000`)).body.entries as any[];
    assert.ok(!entries.some((e) => e.decision === 'allow'), 'no allow on record');
  }

  /** The PSBT spending both coins, signing coin `mine` only: the other as a stranger's (no derivation), its witness UTXO set to `claimed` sat, with or without its previous transaction. */
  function splitPsbt(chain: BitcoinTestChain, coins: [Utxo, Utxo], keys: [WalletKey, WalletKey], outputs: Parameters<typeof buildPsbt>[2], mine: 0 | 1, o: { sighashType?: number; claimed?: bigint; withPrevious: boolean }): string {
    const inputs = ([0, 1] as const).map((i) =>
      walletInput(coins[i], keys[i], i === mine ? { sighashType: o.sighashType, withPreviousTransaction: o.withPrevious } : { withoutDerivation: true, withoutPreviousTransaction: !o.withPrevious, withPreviousTransaction: o.withPrevious }),
    );
    const maps = decodePsbtMaps(buildPsbt(chain, inputs, outputs).toBase64());
    if (o.claimed !== undefined) {
      const w = maps.inputs[1 - mine]!.find((e) => e.key[0] === IN.WITNESS_UTXO)!;
      const v = Uint8Array.from(w.value);
      new DataView(v.buffer).setBigUint64(0, o.claimed, true);
      w.value = v;
    }
    return encodePsbtMaps(maps);
  }

  /** Combines the signatures of two responses (input i from response i) into `honest`, finalizes and broadcasts it. */
  function combine(chain: BitcoinTestChain, honest: string, signed: string[]) {
    const psbt = bitcoin.Psbt.fromBase64(honest, { network: chain.bitcoinjsNetwork });
    signed.forEach((b64, i) => {
      const part = bitcoin.Psbt.fromBase64(b64, { network: chain.bitcoinjsNetwork }).data.inputs[i]!;
      psbt.updateInput(i, part.tapKeySig ? { tapKeySig: part.tapKeySig } : { partialSig: part.partialSig! });
    });
    psbt.finalizeAllInputs();
    return chain.broadcast(psbt.extractTransaction(true).toHex());
  }

  describe("the agent's own coins, signed in two requests that each understate the other", () => {
    for (const [type, sighashType] of [['p2wpkh', undefined], ['p2tr', ALL_ANYONECANPAY]] as const) {
      const what = type === 'p2wpkh' ? 'P2WPKH (BIP-143 commits to its own amount)' : 'P2TR ALL|ANYONECANPAY (commits to its own input only)';
      test(`${what}: the other coin claimed at 0 sat without its previous transaction is refused (psbt_previous_tx_required), nothing signed or charged`, async () => {
        const { agent, token, wallet } = await agentWith(tight(sighashType ? { bitcoin_sighash: ['all_anyonecanpay'] } : {}));
        const chain = new BitcoinTestChain('regtest');
        const keys = [wallet.receive(type, 0), wallet.receive(type, 1)] as [WalletKey, WalletKey];
        const coins = [chain.fundOne(keys[0].script, 100_000n), chain.fundOne(keys[1].script, 100_000n)] as [Utxo, Utxo];
        const change = walletOutput(wallet.change(type, 0), 100_000n);
        // Control: the transaction as it is (both coins the agent's, proven) burns 100,000 sat: refused by policy.
        const honest = buildPsbt(chain, keys.map((k, i) => walletInput(coins[i]!, k, { sighashType, withPreviousTransaction: true })), [change]).toBase64();
        await refused(await sign(token, honest), agent, 403, 'policy_denied', ['fee_exceeds_cap', 'fee_rate_exceeds_cap', 'budget_exceeded']);
        for (const mine of [0, 1] as const) {
          const res = await sign(token, splitPsbt(chain, coins, keys, [change], mine, { sighashType, claimed: 0n, withPrevious: false }));
          await refused(res, agent, 400, 'psbt_previous_tx_required');
          assert.match(res.body.error.message, /^input [01] has no full previous transaction/);
        }
      });
    }

    test('P2WPKH, honestly: the other coin with its previous transaction: each request is charged the whole payment and fee, and the two signatures make the transaction the chain accepts', async () => {
      const { agent, token, wallet } = await agentWith(open());
      const chain = new BitcoinTestChain('regtest');
      const keys = [wallet.receive('p2wpkh', 0), wallet.receive('p2wpkh', 1)] as [WalletKey, WalletKey];
      const coins = [chain.fundOne(keys[0].script, 100_000n), chain.fundOne(keys[1].script, 100_000n)] as [Utxo, Utxo];
      const outputs = [payTo(chain, PAYEE, 150_000n), walletOutput(wallet.change('p2wpkh', 0), 49_000n)];
      const signed: string[] = [];
      for (const mine of [0, 1] as const) {
        const res = await sign(token, splitPsbt(chain, coins, keys, outputs, mine, { withPrevious: true }));
        assert.equal(res.status, 200, JSON.stringify(res.body));
        assert.deepEqual(res.body.signedInputs, [mine]);
        assert.equal(BigInt(res.body.intent.bitcoin.feeSat), 1_000n, 'the true fee: the other coin at its proven amount');
        assert.equal(await charged(agent.id), BigInt(mine + 1) * 151_000n * MSAT, 'each request charged the payment and the fee');
        signed.push(res.body.psbt);
      }
      const accepted = combine(chain, buildPsbt(chain, keys.map((k, i) => walletInput(coins[i]!, k)), outputs).toBase64(), signed);
      assert.equal(accepted.feeSat, 1_000n);
      // The agent lost 151,000 sat (200,000 in, 49,000 back); charged twice that: more than once, never less.
      assert.ok((await charged(agent.id)) >= 151_000n * MSAT);
    });

    test('P2TR ALL|ANYONECANPAY, honestly: with previous transactions, each request is charged its outputs and fee (no change counted as returned); combined, the chain accepts', async () => {
      const { agent, token, wallet } = await agentWith(open({ bitcoin_sighash: ['all_anyonecanpay'] }));
      const chain = new BitcoinTestChain('regtest');
      const keys = [wallet.receive('p2tr', 0), wallet.receive('p2tr', 1)] as [WalletKey, WalletKey];
      const coins = [chain.fundOne(keys[0].script, 100_000n), chain.fundOne(keys[1].script, 100_000n)] as [Utxo, Utxo];
      const outputs = [payTo(chain, PAYEE, 150_000n), walletOutput(wallet.change('p2tr', 0), 49_000n)];
      const signed: string[] = [];
      for (const mine of [0, 1] as const) {
        const res = await sign(token, splitPsbt(chain, coins, keys, outputs, mine, { sighashType: ALL_ANYONECANPAY, withPrevious: true }));
        assert.equal(res.status, 200, JSON.stringify(res.body));
        assert.equal(BigInt(res.body.intent.bitcoin.feeSat), 1_000n);
        assert.deepEqual(res.body.intent.bitcoin.outputs.map((o: any) => o.change), [false, false]);
        assert.equal(await charged(agent.id), BigInt(mine + 1) * 200_000n * MSAT);
        signed.push(res.body.psbt);
      }
      const honest = buildPsbt(chain, keys.map((k, i) => walletInput(coins[i]!, k, { sighashType: ALL_ANYONECANPAY })), outputs).toBase64();
      assert.equal(combine(chain, honest, signed).feeSat, 1_000n);
    });

    test('P2TR ALL|ANYONECANPAY, each request a one-input transaction with the same outputs: the change is not counted as returned twice (charged as a spend: over the budget; under a larger one, charged at least what the chain takes)', async () => {
      // ANYONECANPAY commits to no other input: instead of understating the other coin, each request leaves it
      // out. Each alone pays its 100,000 sat back as change (fee 0); both signatures in one transaction burn
      // 100,000 sat. Previous transactions cannot help (there is no other input to prove): the change is what
      // must not count as returned, since several ALL|ANYONECANPAY signatures can each claim it.
      const onlyOne = async (doc: unknown) => {
        const { agent, token, wallet } = await agentWith(doc);
        const chain = new BitcoinTestChain('regtest');
        const keys = [wallet.receive('p2tr', 0), wallet.receive('p2tr', 1)];
        const coins = keys.map((k) => chain.fundOne(k.script, 100_000n));
        const change = walletOutput(wallet.change('p2tr', 0), 100_000n);
        const alone = (i: number) => buildPsbt(chain, [walletInput(coins[i]!, keys[i]!, { sighashType: ALL_ANYONECANPAY, withPreviousTransaction: true })], [change]).toBase64();
        return { agent, token, chain, keys, coins, change, alone };
      };
      const t = await onlyOne(tight({ bitcoin_sighash: ['all_anyonecanpay'] }));
      for (const i of [0, 1]) await refused(await sign(t.token, t.alone(i)), t.agent, 403, 'policy_denied', ['budget_exceeded']);

      const o = await onlyOne(open({ bitcoin_sighash: ['all_anyonecanpay'] }));
      const signed: string[] = [];
      for (const i of [0, 1]) {
        const res = await sign(o.token, o.alone(i));
        assert.equal(res.status, 200, JSON.stringify(res.body));
        assert.deepEqual(res.body.intent.spends.map((s: any) => [s.kind, BigInt(s.amount)]), [['transfer', 100_000n * MSAT], ['fee', 0n]]);
        signed.push(res.body.psbt);
      }
      const both = buildPsbt(o.chain, o.keys.map((k, i) => walletInput(o.coins[i]!, k, { sighashType: ALL_ANYONECANPAY })), [o.change]).toBase64();
      const psbt = bitcoin.Psbt.fromBase64(both, { network: o.chain.bitcoinjsNetwork });
      signed.forEach((b64, i) => psbt.updateInput(i, { tapKeySig: bitcoin.Psbt.fromBase64(b64).data.inputs[0]!.tapKeySig! }));
      const accepted = o.chain.broadcast(psbt.finalizeAllInputs().extractTransaction(true).toHex());
      assert.equal(accepted.feeSat, 100_000n, 'the chain takes 100,000 sat from the agent');
      assert.ok((await charged(o.agent.id)) >= 100_000n * MSAT, `charged ${await charged(o.agent.id)} msat`);
    });

    test('P2TR SIGHASH_DEFAULT needs no previous transaction: the signature commits to every amount, so understating the other coin makes it worthless on chain', async () => {
      const { token, wallet } = await agentWith(open());
      const chain = new BitcoinTestChain('regtest');
      const keys = [wallet.receive('p2tr', 0), wallet.receive('p2tr', 1)] as [WalletKey, WalletKey];
      const coins = [chain.fundOne(keys[0].script, 100_000n), chain.fundOne(keys[1].script, 100_000n)] as [Utxo, Utxo];
      const change = [walletOutput(wallet.change('p2tr', 0), 100_000n)];
      const lie = await sign(token, splitPsbt(chain, coins, keys, change, 0, { claimed: 0n, withPrevious: false }));
      assert.equal(lie.status, 200, JSON.stringify(lie.body));
      assert.equal(BigInt(lie.body.intent.bitcoin.feeSat), 0n);
      const truth = await sign(token, splitPsbt(chain, coins, keys, change, 1, { withPrevious: false }));
      assert.equal(truth.status, 200, JSON.stringify(truth.body));
      assert.equal(BigInt(truth.body.intent.bitcoin.feeSat), 100_000n, 'the other request is judged at the true amounts');
      const honest = buildPsbt(chain, keys.map((k, i) => walletInput(coins[i]!, k)), change).toBase64();
      assert.throws(() => combine(chain, honest, [lie.body.psbt, truth.body.psbt]), /bad_signature/);
    });
  });

  describe('a BIP-322 message proof requested as a PSBT', () => {
    test('to_sign as a PSBT (version 0, spending 0 sat) is refused for both address types (psbt_tx_version_unsupported); as version 2, psbt_zero_value_input; the message route is still denied', async () => {
      const { agent, token, wallet } = await agentWith({
        version: 1,
        rules: [
          { type: 'allow', name: 'spend', match: { actions: ['bitcoin.psbt'], chains: [CHAIN] } },
          { type: 'budget', name: 'daily', asset: BTC, max: String(2_000_000n * MSAT), window: '24h' },
        ],
      });
      const message = 'I, the holder of this address, authorize withdrawal of all funds to bcrt1qattacker';
      const direct = await h.call('POST', '/v1/sign/bitcoin-message', { token, body: { message, network: 'regtest', addressType: 'p2tr' } });
      assert.notEqual(direct.status, 200);
      for (const type of ['p2tr', 'p2wpkh'] as const) {
        const key = wallet.receive(type, 0);
        const { toSign } = bip322Transactions(utf8ToBytes(message), key.script);
        const asPsbt = (version: number) => {
          const tx = Transaction.fromPSBT(toSign.toPSBT(0), { allowUnknownOutputs: true, allowUnknownVersion: true });
          const fp = wallet.fingerprint;
          const path = key.path.replace(/^m\//, '').split('/').map((p) => (p.endsWith("'") ? 0x80000000 + Number(p.slice(0, -1)) : Number(p)));
          if (type === 'p2tr') tx.updateInput(0, { tapBip32Derivation: [[key.publicKey.slice(1), { hashes: [], der: { fingerprint: fp, path } }]], tapInternalKey: key.publicKey.slice(1) });
          else {
            const toSpend = RawTx.encode({ version: 0, segwitFlag: false, inputs: [{ txid: new Uint8Array(32), index: 0xffffffff, sequence: 0, finalScriptSig: Uint8Array.of(0x00, 0x20, ...bip322MessageHash(utf8ToBytes(message))) }], outputs: [{ amount: 0n, script: key.script }], witnesses: undefined, lockTime: 0 });
            tx.updateInput(0, { nonWitnessUtxo: toSpend, bip32Derivation: [[key.publicKey, { fingerprint: fp, path }]] });
          }
          const maps = decodePsbtMaps(base64.encode(tx.toPSBT(0)));
          const unsigned = maps.global.find((e) => e.key[0] === 0x00)!;
          const v = Uint8Array.from(unsigned.value);
          new DataView(v.buffer).setInt32(0, version, true);
          unsigned.value = v;
          return encodePsbtMaps(maps);
        };
        // What was asked for is a proof: signed here with the key itself, bip322-js verifies it for the address.
        const local = Transaction.fromPSBT(base64.decode(asPsbt(0)), { allowUnknownOutputs: true, allowUnknownVersion: true });
        local.signIdx(key.privateKey!, 0);
        local.finalizeIdx(0);
        assert.equal(Verifier.verifySignature(key.address, message, base64.encode(RawWitness.encode(local.getInput(0).finalScriptWitness!))), true);
        await refused(await sign(token, asPsbt(0), { finalize: true }), agent, 400, 'psbt_tx_version_unsupported');
        await refused(await sign(token, asPsbt(2), { finalize: true }), agent, 400, 'psbt_zero_value_input');
      }
    });
  });

  describe("the fee rate, with a co-signer's previous script claimed", () => {
    const PAYBACK = mallory.receive('p2wpkh', 8).address;
    const capped = {
      version: 1,
      rules: [
        { type: 'allow', name: 'bitcoin', match: { actions: ['bitcoin.psbt'], chains: [CHAIN] } },
        { type: 'destinations', name: 'only-payees', allow: [PAYEE, PAYBACK], match: { actions: ['bitcoin.psbt'] } },
        { type: 'bitcoin', name: 'fee-rate', max_fee_rate: 10 },
      ],
    };
    const ms15 = bitcoin.payments.p2ms({ m: 15, pubkeys: Array.from({ length: 15 }, (_, i) => mallory.receive('p2wpkh', 40 + i).publicKey) });
    const claims: Record<string, [Uint8Array, bigint]> = {
      P2PKH: [bitcoin.payments.p2pkh({ pubkey: mallory.receive('p2wpkh', 3).publicKey }).output!, 37_500n],
      'P2SH 15-of-15 multisig (redeemScript in the PSBT)': [bitcoin.payments.p2sh({ redeem: ms15 }).output!, 25_000n],
    };
    /** The reviewer's PSBT: Mallory's P2WPKH coin with a witness UTXO claiming `claimed` and no previous transaction. */
    function claiming(chain: BitcoinTestChain, ours: ReturnType<typeof fundedInput>, name: string): { psbt: string; real: Uint8Array } {
      const [claimed, back] = claims[name]!;
      const honest = buildPsbt(chain, [ours, fundedInput(chain, mallory.receive('p2wpkh', 0), 20_000n)], [payTo(chain, PAYEE, 80_000n), payTo(chain, PAYBACK, back)]);
      const maps = decodePsbtMaps(honest.toBase64());
      const real = maps.inputs[1]!.find((kv) => kv.key[0] === IN.WITNESS_UTXO)!.value;
      maps.inputs[1] = maps.inputs[1]!.filter((kv) => kv.key[0] !== IN.NON_WITNESS_UTXO && kv.key[0] !== IN.WITNESS_UTXO);
      maps.inputs[1]!.push({ key: Uint8Array.of(IN.WITNESS_UTXO), value: Buffer.concat([real.subarray(0, 8), compactSize(claimed.length), claimed]) });
      if (name.startsWith('P2SH')) maps.inputs[1]!.push({ key: Uint8Array.of(0x04), value: ms15.output! });
      return { psbt: encodePsbtMaps(maps), real };
    }

    for (const name of Object.keys(claims)) {
      test(`beside the agent's P2WPKH input, Mallory's P2WPKH coin claimed as ${name} without its previous transaction: refused (psbt_previous_tx_required)`, async () => {
        const { agent, token, wallet } = await agentWith(capped);
        const chain = new BitcoinTestChain('regtest');
        await refused(await sign(token, claiming(chain, fundedInput(chain, wallet.receive('p2wpkh', 0), 100_000n), name).psbt), agent, 400, 'psbt_previous_tx_required');
      });

      test(`beside the agent's P2TR input, the same claim (${name}) is committed to: restoring the true script makes the agent's signature invalid on chain`, async () => {
        const { token, wallet } = await agentWith(capped);
        const chain = new BitcoinTestChain('regtest');
        const { psbt, real } = claiming(chain, fundedInput(chain, wallet.receive('p2tr', 0), 100_000n), name);
        const res = await sign(token, psbt);
        assert.equal(res.status, 200, JSON.stringify(res.body));
        const back = decodePsbtMaps(res.body.psbt);
        back.inputs[1] = back.inputs[1]!.filter((kv) => kv.key[0] !== IN.WITNESS_UTXO && kv.key[0] !== 0x04);
        back.inputs[1]!.push({ key: Uint8Array.of(IN.WITNESS_UTXO), value: real });
        const taken = bitcoin.Psbt.fromBase64(encodePsbtMaps(back), { network: chain.bitcoinjsNetwork });
        assert.deepEqual(signOwnInputs(taken, mallory), [1]);
        assert.throws(() => verifyAirlockPsbt(taken.toBase64(), { chain }), /bad_signature|does not verify/);
      });
    }

    test("a co-signer's P2SH coin without its redeem script counts as the smallest input (41 vB): judged at least at the real rate, over the cap", async () => {
      // Mallory's coin pays to P2SH(OP_TRUE): spent with a 2-byte scriptSig. Without the redeem script the PSBT
      // does not say how it will be spent; counted as a 74-byte signature push it lowered the judged rate below
      // the cap while the transaction paid more.
      const { agent, token, wallet } = await agentWith(capped);
      const chain = new BitcoinTestChain('regtest');
      const redeem = Uint8Array.of(0x51);
      const p2sh = bitcoin.payments.p2sh({ redeem: { output: Buffer.from(redeem) } });
      const coin = chain.fundOne(p2sh.output!, 20_000n);
      const ours = fundedInput(chain, wallet.receive('p2tr', 0), 100_000n);
      const outputs = [payTo(chain, PAYEE, 80_000n), payTo(chain, PAYBACK, 38_000n)];
      const sent = buildPsbt(chain, [ours, { hash: coin.txid, index: coin.vout, witnessUtxo: { script: coin.script, value: coin.valueSat } }], outputs).toBase64();
      const res = await sign(token, sent);
      await refused(res, agent, 403, 'policy_denied', ['fee_rate_exceeds_cap']);
      const judged = Number(res.body.error.violations[0].requested ?? res.body.error.violations[0].used);
      // The transaction as Mallory would complete it: the agent's 64-byte signature, her 2-byte scriptSig.
      const tx = new bitcoin.Transaction();
      tx.version = 2;
      tx.addInput(Buffer.from(bitcoin.Psbt.fromBase64(sent).txInputs[0]!.hash), ours.index, 0xfffffffd);
      tx.addInput(Buffer.from(bitcoin.Psbt.fromBase64(sent).txInputs[1]!.hash), coin.vout, 0xfffffffd, bitcoin.script.compile([Buffer.from(redeem)]));
      for (const o of outputs) tx.addOutput(Buffer.from((o as { script: Uint8Array }).script), o.value);
      tx.setWitness(0, [Buffer.alloc(64)]);
      tx.setWitness(1, []);
      const realRate = 2_000 / tx.virtualSize();
      assert.ok(realRate > 10, `real rate ${realRate}`);
      assert.ok(judged >= realRate, `judged ${judged} sat/vB, real ${realRate.toFixed(3)} sat/vB`);
    });
  });
});
