// Attacks on Bitcoin PSBT signing through the public HTTP API: a PSBT crafted to make Airlock sign more than
// policy allows, or sign at all where it should not. Every PSBT is built with bitcoinjs-lib from keys the test
// derives from the vault's mnemonic (never with Airlock's code); each test asserts the refusal a user would see
// (status, code, the violation naming the rule) and that nothing was signed and nothing charged. Where the
// refusal is a policy decision, a dry-run shows how Airlock classified the PSBT (change or money leaving).
// Decoding and policy do not depend on the store: SQLite only (bitcoin-psbt.http.test.ts covers both stores).
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as bitcoin from 'bitcoinjs-lib';
import { BITCOIN_CHAINS, bitcoinAsset } from '@airlock/core';
import {
  BitcoinTestChain,
  buildPsbt,
  decodePsbtMaps,
  derivationOf,
  encodePsbtMaps,
  extendedKeyBytes,
  fundedInput,
  IN,
  payTo,
  signOwnInputs,
  TestWallet,
  verifyAirlockPsbt,
  walletInput,
  walletOutput,
  type PsbtOutputExtended,
} from '../../testing/src/bitcoin/index.ts';
import { provisionAgent, startHarness, type Harness } from './testing/harness.ts';

const CHAIN = BITCOIN_CHAINS.regtest;
const BTC = bitcoinAsset(CHAIN);
const { SIGHASH_ALL, SIGHASH_NONE, SIGHASH_SINGLE, SIGHASH_ANYONECANPAY } = bitcoin.Transaction;
const payee = TestWallet.stranger('payee', 'regtest');
const mallory = TestWallet.stranger('mallory', 'regtest');
const PAYEES = [payee.receive('p2wpkh', 0).address, payee.receive('p2tr', 0).address, payee.receive('p2wpkh', 1).address];
const PAYEE = PAYEES[0]!;

/** Regtest to the payees only, fees capped at 20,000 sat and 100 sat/vB, a budget far above every test. */
function policy(extra: unknown[] = [], allowMatch: Record<string, unknown> = {}) {
  return {
    version: 1,
    sets: { payees: PAYEES },
    rules: [
      { type: 'allow', name: 'bitcoin', match: { actions: ['bitcoin.psbt'], chains: [CHAIN], ...allowMatch } },
      { type: 'destinations', name: 'only-payees', allow: '$payees', match: { actions: ['bitcoin.psbt'] } },
      { type: 'bitcoin', name: 'fees', max_fee_sat: '20000', max_fee_rate: 100 },
      { type: 'budget', name: 'daily', asset: BTC, max: '10000000000', window: '24h', scope: 'agent' },
      ...extra,
    ],
  };
}

describe('Bitcoin PSBT attacks over HTTP', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ store: 'sqlite' });
  });
  after(async () => h.close());

  async function agentWith(doc: unknown = policy()) {
    const { agent, token } = await provisionAgent(h, { policy: doc, actions: ['bitcoin.psbt'] });
    return { agent, token, wallet: TestWallet.fromMnemonic(h.mnemonic, 'regtest', agent.accountIndex) };
  }
  const sign = (token: string, psbt: string, network = 'regtest') => h.call('POST', '/v1/sign/psbt', { token, body: { psbt, network } });
  const dryRun = (token: string, psbt: string) => h.call('POST', '/v1/dry-run', { token, body: { action: 'bitcoin.psbt', payload: { psbt, network: 'regtest' } } });
  const charged = async (agentId: string) => (await h.airlock.store.transaction((tx) => tx.windowTotals([{ series: `agent:${agentId}`, asset: BTC, sinceMs: 0 }])))[0]!.amount;
  const violations = (res: { body: any }) => (res.body.error?.violations ?? []).map((v: any) => [v.rule, v.code]);

  /** A refusal: the status and code, no PSBT back, nothing charged. */
  async function refused(res: { status: number; body: any }, agentId: string, status: number, code: string): Promise<void> {
    assert.equal(res.status, status, JSON.stringify(res.body));
    assert.equal(res.body.error?.code, code, JSON.stringify(res.body));
    assert.equal(res.body.psbt, undefined);
    assert.equal(res.body.signedInputs, undefined);
    assert.equal(await charged(agentId), 0n);
  }

  /** Denied by the destinations rule naming `address`, and by nothing else. */
  async function deniedFor(res: { status: number; body: any }, agentId: string, address: string): Promise<void> {
    await refused(res, agentId, 403, 'policy_denied');
    assert.deepEqual(violations(res), [['agent/only-payees', 'destination_not_allowed']]);
    assert.match(res.body.error.violations[0].message, new RegExp(address));
    for (const ok of PAYEES) assert.doesNotMatch(res.body.error.violations[0].message, new RegExp(ok));
  }

  /** One agent coin of 100,000 sat paying 60,000 to the payee and `other` (the output under test). */
  function spendWith(chain: BitcoinTestChain, wallet: TestWallet, other: PsbtOutputExtended): string {
    return buildPsbt(chain, [fundedInput(chain, wallet.receive('p2wpkh', 0), 100_000n)], [payTo(chain, PAYEE, 60_000n), other]).toBase64();
  }

  /** The PSBT with output `index` paying `script` instead, every other field as it was. */
  function withOutputScript(psbt: string, index: number, script: Uint8Array): string {
    const maps = decodePsbtMaps(psbt);
    const tx = bitcoin.Transaction.fromBuffer(maps.global[0]!.value);
    tx.outs[index]!.script = script;
    maps.global[0]!.value = tx.toBuffer();
    return encodePsbtMaps(maps);
  }

  describe('change that only looks like ours is money leaving, denied by the destinations allowlist', () => {
    test("a derivation claiming our fingerprint and change path, on a stranger's script (P2WPKH and P2TR)", async () => {
      const { agent, token, wallet } = await agentWith();
      const chain = new BitcoinTestChain('regtest');
      for (const type of ['p2wpkh', 'p2tr'] as const) {
        // Our change output with its true derivation fields, then its script swapped for Mallory's (bitcoinjs
        // refuses to build a taproot output that contradicts its internal key: the swap is done in the maps).
        const psbt = withOutputScript(spendWith(chain, wallet, walletOutput(wallet.change(type, 0), 39_000n)), 1, mallory.receive(type, 0).script);
        const dry = await dryRun(token, psbt);
        assert.equal(dry.status, 200, JSON.stringify(dry.body));
        assert.deepEqual(dry.body.intent.bitcoin.outputs[1].change, false);
        assert.equal(dry.body.intent.bitcoin.outputs[1].address, mallory.receive(type, 0).address);
        await deniedFor(await sign(token, psbt), agent.id, mallory.receive(type, 0).address);
      }
    });

    test("our fingerprint with another agent's account (a real key of the same vault)", async () => {
      const { agent, token, wallet } = await agentWith();
      const { agent: sibling } = await agentWith();
      const siblingWallet = TestWallet.fromMnemonic(h.mnemonic, 'regtest', sibling.accountIndex);
      const chain = new BitcoinTestChain('regtest');
      const key = siblingWallet.change('p2wpkh', 0);
      assert.deepEqual(key.masterFingerprint, wallet.change('p2wpkh', 0).masterFingerprint, 'same vault, same fingerprint');
      const psbt = spendWith(chain, wallet, walletOutput(key, 39_000n));
      const dry = await dryRun(token, psbt);
      assert.equal(dry.body.intent.bitcoin.outputs[1].change, false);
      await deniedFor(await sign(token, psbt), agent.id, key.address);
    });

    test('our own receive path presented as change (branch 0, not 1)', async () => {
      const { agent, token, wallet } = await agentWith();
      const chain = new BitcoinTestChain('regtest');
      const key = wallet.receive('p2tr', 4);
      const psbt = spendWith(chain, wallet, walletOutput(key, 39_000n));
      const dry = await dryRun(token, psbt);
      assert.equal(dry.body.intent.bitcoin.outputs[1].change, false);
      await deniedFor(await sign(token, psbt), agent.id, key.address);
    });
  });

  test('a fee of most of the input value is denied by the bitcoin fee caps (absolute and per vbyte)', async () => {
    const { agent, token, wallet } = await agentWith();
    const chain = new BitcoinTestChain('regtest');
    const psbt = buildPsbt(chain, [fundedInput(chain, wallet.receive('p2wpkh', 0), 100_000n)], [payTo(chain, PAYEE, 10_000n)]).toBase64();
    const res = await sign(token, psbt);
    await refused(res, agent.id, 403, 'policy_denied');
    assert.deepEqual(violations(res).sort(), [
      ['agent/fees', 'fee_exceeds_cap'],
      ['agent/fees', 'fee_rate_exceeds_cap'],
    ]);
    const fee = res.body.error.violations.find((v: any) => v.code === 'fee_exceeds_cap');
    assert.equal(fee.requested, '90000');
    assert.equal(fee.limit, '20000');
  });

  test('a missing UTXO: an agent input with neither witness UTXO nor previous transaction, and a stranger input the same', async () => {
    const { agent, token, wallet } = await agentWith();
    const chain = new BitcoinTestChain('regtest');
    const coin = chain.fundOne(wallet.receive('p2wpkh', 0).script, 100_000n);
    const bare = buildPsbt(chain, [{ hash: coin.txid, index: coin.vout, ...derivationOf(wallet.receive('p2wpkh', 0)) }], [payTo(chain, PAYEE, 90_000n)]).toBase64();
    await refused(await sign(token, bare), agent.id, 400, 'psbt_missing_utxo');

    const theirs = chain.fundOne(mallory.receive('p2wpkh', 0).script, 100_000n);
    const mixed = buildPsbt(chain, [fundedInput(chain, wallet.receive('p2wpkh', 1), 50_000n), { hash: theirs.txid, index: theirs.vout }], [payTo(chain, PAYEE, 40_000n)]).toBase64();
    await refused(await sign(token, mixed), agent.id, 400, 'psbt_missing_utxo');
  });

  test('P2WPKH without the full previous transaction is refused (BIP-143 does not commit to the other inputs amounts)', async () => {
    const { agent, token, wallet } = await agentWith();
    const chain = new BitcoinTestChain('regtest');
    const psbt = buildPsbt(chain, [fundedInput(chain, wallet.receive('p2wpkh', 0), 100_000n, { withoutPreviousTransaction: true })], [payTo(chain, PAYEE, 90_000n)]).toBase64();
    await refused(await sign(token, psbt), agent.id, 400, 'psbt_missing_utxo');
  });

  describe('a UTXO that lies', () => {
    /** An agent P2WPKH coin of 1,000,000 sat, its PSBT paying 99,000 to the payee; `lie` edits input 0's maps. */
    function lyingPsbt(wallet: TestWallet, lie: (input: ReturnType<typeof decodePsbtMaps>['inputs'][number], chain: BitcoinTestChain) => void): string {
      const chain = new BitcoinTestChain('regtest');
      const maps = decodePsbtMaps(buildPsbt(chain, [fundedInput(chain, wallet.receive('p2wpkh', 0), 1_000_000n)], [payTo(chain, PAYEE, 99_000n), walletOutput(wallet.change('p2wpkh', 0), 900_000n)]).toBase64());
      lie(maps.inputs[0]!, chain);
      return encodePsbtMaps(maps);
    }
    const witnessUtxo = (amount: bigint, script: Uint8Array) => {
      const value = new Uint8Array(8 + 1 + script.length);
      new DataView(value.buffer).setBigInt64(0, amount, true);
      value[8] = script.length;
      value.set(script, 9);
      return value;
    };

    test('the witness UTXO amount differs from the previous transaction (it says 100,000 sat, the coin holds 1,000,000)', async () => {
      const { agent, token, wallet } = await agentWith();
      const psbt = lyingPsbt(wallet, (input) => {
        input.find((kv) => kv.key[0] === IN.WITNESS_UTXO)!.value = witnessUtxo(100_000n, wallet.receive('p2wpkh', 0).script);
      });
      await refused(await sign(token, psbt), agent.id, 400, 'psbt_utxo_mismatch');
    });

    test('the witness UTXO script differs from the previous transaction', async () => {
      const { agent, token, wallet } = await agentWith();
      const psbt = lyingPsbt(wallet, (input) => {
        input.find((kv) => kv.key[0] === IN.WITNESS_UTXO)!.value = witnessUtxo(1_000_000n, wallet.receive('p2wpkh', 1).script);
      });
      const res = await sign(token, psbt);
      assert.ok(['psbt_utxo_mismatch', 'psbt_input_mismatch'].includes(res.body.error?.code), JSON.stringify(res.body));
      await refused(res, agent.id, 400, res.body.error.code);
    });

    test('the previous transaction is another transaction (it does not hash to the outpoint)', async () => {
      const { agent, token, wallet } = await agentWith();
      const psbt = lyingPsbt(wallet, (input, chain) => {
        const other = chain.fundOne(wallet.receive('p2wpkh', 0).script, 1_000_000n);
        input.find((kv) => kv.key[0] === IN.NON_WITNESS_UTXO)!.value = other.transaction.toBuffer();
      });
      await refused(await sign(token, psbt), agent.id, 400, 'psbt_utxo_mismatch');
    });
  });

  test('SIGHASH_SINGLE with no output at the input index is refused before policy (P2WPKH and P2TR), even where policy grants SINGLE', async () => {
    const { agent, token, wallet } = await agentWith(policy([], { bitcoin_sighash: ['single', 'single_anyonecanpay'] }));
    const chain = new BitcoinTestChain('regtest');
    for (const [type, sighashType] of [
      ['p2wpkh', SIGHASH_SINGLE],
      ['p2tr', SIGHASH_SINGLE | SIGHASH_ANYONECANPAY],
    ] as const) {
      // Input 1 is the agent's; the transaction has one output: SINGLE would commit to no output at all.
      const psbt = buildPsbt(chain, [fundedInput(chain, mallory.receive('p2wpkh', 0), 10_000n), fundedInput(chain, wallet.receive(type, 0), 100_000n, { sighashType })], [payTo(chain, PAYEE, 100_000n)]).toBase64();
      await refused(await sign(token, psbt), agent.id, 400, 'psbt_sighash_single_without_output');
    }
  });

  test('SIGHASH_NONE and ANYONECANPAY are denied by default (sighash_not_allowed); granted by name, the signature commits with that type and verifies', async () => {
    const { agent, token, wallet } = await agentWith();
    const chain = new BitcoinTestChain('regtest');
    // ANYONECANPAY commits to no other input's amount: the previous transactions prove them (wallets keep them).
    const acp = (sighashType: number) => (sighashType & SIGHASH_ANYONECANPAY) !== 0;
    const psbtWith = (type: 'p2wpkh' | 'p2tr', sighashType: number, index: number) =>
      buildPsbt(chain, [fundedInput(chain, wallet.receive(type, index), 100_000n, { sighashType, withPreviousTransaction: acp(sighashType) })], [payTo(chain, PAYEE, 90_000n), walletOutput(wallet.change(type, index), 9_000n)]).toBase64();
    for (const [type, sighashType] of [
      ['p2wpkh', SIGHASH_NONE],
      ['p2wpkh', SIGHASH_ALL | SIGHASH_ANYONECANPAY],
      ['p2tr', SIGHASH_NONE | SIGHASH_ANYONECANPAY],
      ['p2tr', SIGHASH_ALL | SIGHASH_ANYONECANPAY],
    ] as const) {
      const res = await sign(token, psbtWith(type, sighashType, sighashType));
      await refused(res, agent.id, 403, 'policy_denied');
      // Under NONE the change is no longer the agent's (no signature commits to it): a destination too. Under
      // ALL|ANYONECANPAY neither: signatures of several requests could each count it as returned. Under NONE
      // every output can be removed after signing, the whole coin left as the fee: past the 100 sat/vB cap.
      const none = (sighashType & 0x1f) === SIGHASH_NONE;
      const uncounted = none || acp(sighashType);
      assert.deepEqual(
        res.body.error.violations.map((v: any) => v.code),
        [...(uncounted ? ['destination_not_allowed'] : []), ...(none ? ['fee_exceeds_cap', 'fee_rate_exceeds_cap'] : []), 'sighash_not_allowed'],
        `${type} 0x${sighashType.toString(16)}`,
      );
    }

    const granted = await agentWith(policy([], { bitcoin_sighash: ['all_anyonecanpay'] }));
    for (const type of ['p2wpkh', 'p2tr'] as const) {
      // No change: under ALL|ANYONECANPAY it would count as a destination (and this policy lists payees only).
      const sent = buildPsbt(chain, [fundedInput(chain, granted.wallet.receive(type, 0), 100_000n, { sighashType: SIGHASH_ALL | SIGHASH_ANYONECANPAY, withPreviousTransaction: true })], [payTo(chain, PAYEE, 99_000n)]).toBase64();
      const res = await sign(granted.token, sent);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      const verified = verifyAirlockPsbt(res.body.psbt, { chain, sent });
      assert.deepEqual(verified.signatures.map((s) => s.hashType), [SIGHASH_ALL | SIGHASH_ANYONECANPAY]);
      assert.deepEqual(res.body.intent.bitcoin.sighashes, ['all_anyonecanpay']);
    }
  });

  test('one output to a stranger hidden among many to payees is named in the denial', async () => {
    const { agent, token, wallet } = await agentWith();
    const chain = new BitcoinTestChain('regtest');
    const outputs = Array.from({ length: 20 }, (_, i) => payTo(chain, PAYEES[i % PAYEES.length]!, 1_000n + BigInt(i)));
    const hidden = mallory.receive('p2tr', 7).address;
    outputs.splice(13, 0, payTo(chain, hidden, 1_000n));
    const psbt = buildPsbt(chain, [fundedInput(chain, wallet.receive('p2wpkh', 0), 100_000n)], [...outputs, walletOutput(wallet.change('p2wpkh', 0), 70_000n)]).toBase64();
    await deniedFor(await sign(token, psbt), agent.id, hidden);
  });

  test('value paid to a script without an address (anyone-can-spend OP_TRUE, an OP_RETURN burn) is money leaving: denied', async () => {
    const { agent, token, wallet } = await agentWith();
    const chain = new BitcoinTestChain('regtest');
    for (const script of [Uint8Array.of(bitcoin.opcodes.OP_TRUE!), bitcoin.payments.embed({ data: [Buffer.from('burn')] }).output!]) {
      const psbt = spendWith(chain, wallet, { script, value: 39_000n });
      const res = await sign(token, psbt);
      assert.equal(res.status, 403, `${Buffer.from(script).toString('hex')}: ${JSON.stringify(res.body)}`);
      await refused(res, agent.id, 403, 'policy_denied');
    }
  });

  test('a PSBT for another network: regtest keys sent as mainnet, mainnet keys sent as regtest, a mainnet global xpub sent as regtest', async () => {
    const { agent, token, wallet } = await agentWith();
    const chain = new BitcoinTestChain('regtest');
    const regtestPsbt = buildPsbt(chain, [fundedInput(chain, wallet.receive('p2wpkh', 0), 100_000n)], [payTo(chain, PAYEE, 90_000n)]).toBase64();
    await refused(await sign(token, regtestPsbt, 'bitcoin'), agent.id, 400, 'psbt_network_mismatch');

    const mainnet = TestWallet.fromMnemonic(h.mnemonic, 'bitcoin', agent.accountIndex);
    const mainnetPsbt = buildPsbt(chain, [fundedInput(chain, mainnet.receive('p2wpkh', 0), 100_000n)], [payTo(chain, PAYEE, 90_000n)]).toBase64();
    await refused(await sign(token, mainnetPsbt), agent.id, 400, 'psbt_network_mismatch');

    const withXpub = buildPsbt(chain, [fundedInput(chain, wallet.receive('p2wpkh', 1), 100_000n)], [payTo(chain, PAYEE, 90_000n)]);
    withXpub.updateGlobal({ globalXpub: [{ extendedPubkey: extendedKeyBytes(mainnet.accountXpub('p2wpkh')), masterFingerprint: mainnet.receive('p2wpkh').masterFingerprint, path: `m/84'/0'/${agent.accountIndex}'` }] });
    await refused(await sign(token, withXpub.toBase64()), agent.id, 400, 'psbt_network_mismatch');
  });

  test("an input naming another agent's account of the same vault is never signed", async () => {
    const { agent, token, wallet } = await agentWith();
    const { agent: sibling } = await agentWith();
    const siblingWallet = TestWallet.fromMnemonic(h.mnemonic, 'regtest', sibling.accountIndex);
    const chain = new BitcoinTestChain('regtest');
    const only = buildPsbt(chain, [fundedInput(chain, siblingWallet.receive('p2wpkh', 0), 100_000n)], [payTo(chain, PAYEE, 90_000n)]).toBase64();
    await refused(await sign(token, only), agent.id, 400, 'psbt_nothing_to_sign');

    const sent = buildPsbt(chain, [fundedInput(chain, wallet.receive('p2tr', 0), 50_000n), fundedInput(chain, siblingWallet.receive('p2tr', 0), 50_000n)], [payTo(chain, PAYEE, 99_000n)]).toBase64();
    const res = await sign(token, sent);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(res.body.signedInputs, [0]);
    assert.deepEqual(verifyAirlockPsbt(res.body.psbt, { chain, sent, finalize: false }).signedInputs, [0]);
    assert.deepEqual(
      res.body.intent.bitcoin.inputs.map((i: any) => i.ours),
      [true, false],
    );
  });

  test('a derivation on our account whose key is not the one the path derives is refused, not skipped', async () => {
    const { agent, token, wallet } = await agentWith();
    const chain = new BitcoinTestChain('regtest');
    const input = fundedInput(chain, wallet.receive('p2wpkh', 0), 100_000n);
    input.bip32Derivation = [{ ...input.bip32Derivation![0]!, pubkey: wallet.receive('p2wpkh', 1).publicKey }];
    const psbt = buildPsbt(chain, [input], [payTo(chain, PAYEE, 90_000n)]).toBase64();
    await refused(await sign(token, psbt), agent.id, 400, 'psbt_input_mismatch');
  });

  test('one agent coin listed twice (the fee computed from a doubled input) is refused', async () => {
    const { agent, token, wallet } = await agentWith();
    const chain = new BitcoinTestChain('regtest');
    const coin = chain.fundOne(wallet.receive('p2wpkh', 0).script, 100_000n);
    // bitcoinjs will not add an outpoint twice: the second input is written into the maps.
    const maps = decodePsbtMaps(buildPsbt(chain, [walletInput(coin, wallet.receive('p2wpkh', 0)), fundedInput(chain, wallet.receive('p2wpkh', 1), 1_000n)], [payTo(chain, PAYEE, 190_000n)]).toBase64());
    const tx = bitcoin.Transaction.fromBuffer(maps.global[0]!.value);
    tx.ins[1]!.hash = tx.ins[0]!.hash;
    tx.ins[1]!.index = tx.ins[0]!.index;
    maps.global[0]!.value = tx.toBuffer();
    maps.inputs[1] = maps.inputs[0]!.map((kv) => ({ key: kv.key, value: kv.value }));
    const res = await sign(token, encodePsbtMaps(maps));
    assert.equal(res.status, 400, JSON.stringify(res.body));
    await refused(res, agent.id, 400, res.body.error.code);
  });

  describe('the fee rate cap against sizes another signer claims', () => {
    // The fee rate policy sees is fee / the estimated vsize of the signed transaction. Another signer's input
    // is sized from what the PSBT says about it; if what it says is not bound to the coin, it can make the
    // transaction look larger than it will be, and the rate look lower. Policy here: at most 10 sat/vB, no
    // absolute fee cap. 120,000 sat in, 85,000 out: a 35,000 sat fee on a ~210 vB transaction, denied.
    const ratePolicy = () => ({
      version: 1,
      sets: { payees: PAYEES },
      rules: [
        { type: 'allow', name: 'bitcoin', match: { actions: ['bitcoin.psbt'], chains: [CHAIN] } },
        { type: 'destinations', name: 'only-payees', allow: [...PAYEES, mallory.receive('p2wpkh', 8).address], match: { actions: ['bitcoin.psbt'] } },
        { type: 'bitcoin', name: 'fee-rate', max_fee_rate: 10 },
      ],
    });
    /** Agent coin 100,000 + Mallory's coin 20,000 (input 1); 80,000 to the payee, 5,000 back to Mallory. */
    function coinjoin(chain: BitcoinTestChain, wallet: TestWallet, strangerInput: ReturnType<typeof walletInput>) {
      return buildPsbt(chain, [fundedInput(chain, wallet.receive('p2wpkh', 0), 100_000n), strangerInput], [payTo(chain, PAYEE, 80_000n), payTo(chain, mallory.receive('p2wpkh', 8).address, 5_000n)]);
    }
    const witnessStack = (items: Uint8Array[]) => Buffer.concat([Buffer.from([items.length]), ...items.flatMap((i) => [Buffer.from(i.length < 0xfd ? [i.length] : [0xfd, i.length & 0xff, i.length >> 8]), Buffer.from(i)])]);

    test('control: the honest coinjoin is denied by the fee rate cap', async () => {
      const { agent, token, wallet } = await agentWith(ratePolicy());
      const chain = new BitcoinTestChain('regtest');
      const psbt = coinjoin(chain, wallet, fundedInput(chain, mallory.receive('p2wpkh', 0), 20_000n));
      const res = await sign(token, psbt.toBase64());
      await refused(res, agent.id, 403, 'policy_denied');
      assert.deepEqual(violations(res), [['agent/fee-rate', 'fee_rate_exceeds_cap']]);
    });

    test("a stranger's P2WPKH input \"finalized\" with padding no P2WPKH spend can have (a 20 kB witness, a 4 kB scriptSig) does not lower the fee rate", async () => {
      const pads = {
        witness: { finalScriptWitness: witnessStack([new Uint8Array(10_000), new Uint8Array(10_000)]) },
        scriptSig: { finalScriptSig: bitcoin.script.compile([new Uint8Array(4_000)]), finalScriptWitness: witnessStack([new Uint8Array(72), mallory.receive('p2wpkh', 0).publicKey]) },
      };
      const bypassed: string[] = [];
      for (const [name, pad] of Object.entries(pads)) {
        const { agent, token, wallet } = await agentWith(ratePolicy());
        const chain = new BitcoinTestChain('regtest');
        const psbt = coinjoin(chain, wallet, fundedInput(chain, mallory.receive('p2wpkh', 0), 20_000n));
        // Junk as Mallory's "final" input: she swaps in her real witness later (no signature commits to it).
        psbt.updateInput(1, pad);
        const res = await sign(token, psbt.toBase64());
        if (res.status !== 200) {
          await refused(res, agent.id, 403, 'policy_denied');
          assert.deepEqual(violations(res), [['agent/fee-rate', 'fee_rate_exceeds_cap']]);
          continue;
        }
        // The attack completes: Mallory replaces the padding with her signature, and the chain takes it.
        const maps = decodePsbtMaps(res.body.psbt);
        maps.inputs[1] = maps.inputs[1]!.filter((kv) => kv.key[0] !== IN.FINAL_SCRIPTWITNESS && kv.key[0] !== IN.FINAL_SCRIPTSIG);
        const taken = bitcoin.Psbt.fromBase64(encodePsbtMaps(maps), { network: chain.bitcoinjsNetwork });
        assert.deepEqual(signOwnInputs(taken, mallory), [1]);
        const onChain = verifyAirlockPsbt(taken.toBase64(), { chain });
        const vsize = bitcoin.Transaction.fromHex(onChain.transaction!).virtualSize();
        bypassed.push(
          `${name}: signed at an estimated ${res.body.intent.bitcoin.feeRate} sat/vB (${res.body.intent.bitcoin.vsize} vB); ` +
            `the transaction the chain accepted is ${vsize} vB, ${(Number(onChain.accepted!.feeSat) / vsize).toFixed(1)} sat/vB (cap 10)`,
        );
      }
      assert.deepEqual(bypassed, []);
    });

    test("a stranger's P2WSH input whose witness script does not hash to its program does not lower the fee rate", async () => {
      const { agent, token, wallet } = await agentWith(ratePolicy());
      const chain = new BitcoinTestChain('regtest');
      const key = mallory.receive('p2wpkh', 1);
      const real = bitcoin.script.compile([key.publicKey, bitcoin.opcodes.OP_CHECKSIG!]);
      const p2wsh = bitcoin.payments.p2wsh({ redeem: { output: real }, network: chain.bitcoinjsNetwork });
      const coin = chain.fundOne(p2wsh.output!, 20_000n);
      // 15 pushes of 520 bytes: an ~8 kB "witness script" that is not the one the coin commits to.
      const bogus = bitcoin.script.compile([...Array.from({ length: 15 }, () => [new Uint8Array(520).fill(7), bitcoin.opcodes.OP_DROP!]).flat(), key.publicKey, bitcoin.opcodes.OP_CHECKSIG!]);
      const psbt = coinjoin(chain, wallet, { hash: coin.txid, index: coin.vout, witnessUtxo: { script: coin.script, value: coin.valueSat } });
      const maps = decodePsbtMaps(psbt.toBase64());
      maps.inputs[1]!.push({ key: Uint8Array.of(0x05), value: bogus });
      const res = await sign(token, encodePsbtMaps(maps));
      assert.notEqual(res.status, 200, `signed at an estimated ${res.body.intent?.bitcoin?.feeRate} sat/vB (vsize ${res.body.intent?.bitcoin?.vsize})`);
      // The witness script is checked against the P2WSH program when the PSBT is read.
      await refused(res, agent.id, 400, 'psbt_malformed');
    });
  });

  test('sighash values that are not defined (0x00 on segwit v0, 0x04, 0x84, 0x20, 0xffffffff) are refused, never signed', async () => {
    const { agent, token, wallet } = await agentWith(policy([], { bitcoin_sighash: ['none', 'single', 'all_anyonecanpay', 'none_anyonecanpay', 'single_anyonecanpay'] }));
    const chain = new BitcoinTestChain('regtest');
    let index = 0;
    for (const [type, sighashType] of [
      ['p2wpkh', 0x00],
      ['p2wpkh', 0x04],
      ['p2wpkh', 0x84],
      ['p2wpkh', 0x20],
      ['p2wpkh', 0xffffffff],
      ['p2tr', 0x04],
      ['p2tr', 0x80],
    ] as const) {
      const sent = buildPsbt(chain, [fundedInput(chain, wallet.receive(type, index++), 100_000n)], [payTo(chain, PAYEE, 90_000n), walletOutput(wallet.change(type, index), 9_000n)]);
      const maps = decodePsbtMaps(sent.toBase64());
      const field = new Uint8Array(4);
      new DataView(field.buffer).setUint32(0, sighashType >>> 0, true);
      maps.inputs[0]!.push({ key: Uint8Array.of(IN.SIGHASH_TYPE), value: field });
      const res = await sign(token, encodePsbtMaps(maps));
      assert.notEqual(res.status, 200, `${type} sighash 0x${sighashType.toString(16)} was signed: ${JSON.stringify(res.body.intent?.bitcoin?.sighashes)}`);
      assert.equal(res.status, 400, JSON.stringify(res.body));
      assert.equal(res.body.error.code, 'psbt_malformed');
      assert.equal(res.body.psbt, undefined);
    }
    assert.equal(await charged(agent.id), 0n);
  });

  test('a taproot input asking for SIGHASH_ALL explicitly gets a 65-byte signature ending in 0x01 (BIP-341), which verifies', async () => {
    const { token, wallet } = await agentWith();
    const chain = new BitcoinTestChain('regtest');
    const sent = buildPsbt(chain, [fundedInput(chain, wallet.receive('p2tr', 0), 100_000n, { sighashType: SIGHASH_ALL })], [payTo(chain, PAYEE, 90_000n), walletOutput(wallet.change('p2tr', 0), 9_000n)]).toBase64();
    const res = await sign(token, sent);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const verified = verifyAirlockPsbt(res.body.psbt, { chain, sent });
    assert.deepEqual(verified.signatures.map((s) => [s.hashType, s.signature.length / 2]), [[SIGHASH_ALL, 65]]);
  });

  test('granted SIGHASH_NONE or SINGLE, change outputs the signature does not cover are charged as money that can leave', async () => {
    // NONE commits to no output, SINGLE to the output at the input's index only: whoever holds the signed PSBT
    // can point every other output elsewhere. A change output no agent signature commits to is not the agent's
    // any more once signed, so the budget must count it (the spends are what the agent can lose).
    const lost: string[] = [];
    for (const [type, sighashType, name] of [
      ['p2wpkh', SIGHASH_NONE, 'none'],
      ['p2wpkh', SIGHASH_SINGLE, 'single'],
      ['p2tr', SIGHASH_NONE | SIGHASH_ANYONECANPAY, 'none_anyonecanpay'],
      ['p2tr', SIGHASH_SINGLE, 'single'],
    ] as const) {
      // With the payees' allowlist, the uncovered change is a destination nobody listed: refused, nothing charged.
      const listed = await agentWith(policy([], { bitcoin_sighash: [name] }));
      const listedChain = new BitcoinTestChain('regtest');
      const withPreviousTransaction = (sighashType & SIGHASH_ANYONECANPAY) !== 0;
      const refusedPsbt = buildPsbt(listedChain, [fundedInput(listedChain, listed.wallet.receive(type, 0), 100_000n, { sighashType, withPreviousTransaction })], [payTo(listedChain, PAYEE, 10_000n), walletOutput(listed.wallet.change(type, 0), 89_000n)]).toBase64();
      const refusedRes = await sign(listed.token, refusedPsbt);
      await refused(refusedRes, listed.agent.id, 403, 'policy_denied');
      // And the fee caps (20,000 sat, 100 sat/vB) judge the fee left once those outputs are removed: 90,000 or 100,000 sat.
      assert.deepEqual(refusedRes.body.error.violations.map((v: any) => [v.code, v.code === 'fee_rate_exceeds_cap' ? 'cap' : v.message]), [
        ['destination_not_allowed', `${listed.wallet.change(type, 0).address} is not in the destination allowlist`],
        ['fee_exceeds_cap', `the signatures allow a fee of up to ${name.startsWith('none') ? 100_000 : 90_000} sat (the PSBT shows 1000 sat); at most 20000 sat allowed`],
        ['fee_rate_exceeds_cap', 'cap'],
      ]);

      // Without one, it is signed and the budget counts the change as money that can leave.
      const open = { version: 1, rules: [{ type: 'allow', name: 'any', match: { actions: ['bitcoin.psbt'], bitcoin_sighash: [name] } }, { type: 'budget', name: 'daily', asset: BTC, max: '1000000000', window: '24h' }] };
      const { agent, token, wallet } = await agentWith(open);
      const chain = new BitcoinTestChain('regtest');
      // Input 0 (100,000 sat) pays output 0 (10,000 to the payee); output 1 is 89,000 of change.
      const sent = buildPsbt(chain, [fundedInput(chain, wallet.receive(type, 0), 100_000n, { sighashType, withPreviousTransaction })], [payTo(chain, PAYEE, 10_000n), walletOutput(wallet.change(type, 0), 89_000n)]).toBase64();
      const res = await sign(token, sent);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.deepEqual(res.body.intent.bitcoin.outputs.map((o: any) => o.change), [false, false], 'no agent signature commits to output 1');
      const charged_ = await charged(agent.id);
      // Mallory redirects the change to herself; the agent's signature still holds.
      const tx = bitcoin.Transaction.fromHex(verifyAirlockPsbt(res.body.psbt, { chain, sent, broadcast: false }).transaction!);
      tx.outs[1]!.script = mallory.receive('p2wpkh', 3).script;
      chain.broadcast(tx.toHex());
      const agentLost = 100_000n - chain.unspentTo(wallet.change(type, 0).address).reduce((sum, u) => sum + u.valueSat, 0n);
      if (charged_ < agentLost * 1000n) lost.push(`${type} ${name}: charged ${charged_ / 1000n} sat, the chain took ${agentLost} sat from the agent`);
    }
    assert.deepEqual(lost, []);
  });

  test("Airlock's signature does not follow a redirected output: the payee swapped after signing, the chain refuses it", async () => {
    const { token, wallet } = await agentWith();
    const chain = new BitcoinTestChain('regtest');
    const psbt = buildPsbt(chain, [fundedInput(chain, wallet.receive('p2wpkh', 0), 100_000n)], [payTo(chain, PAYEE, 90_000n), walletOutput(wallet.change('p2wpkh', 0), 9_000n)]);
    const res = await sign(token, psbt.toBase64());
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const signed = bitcoin.Psbt.fromBase64(res.body.psbt).finalizeAllInputs();
    const tx = signed.extractTransaction();
    tx.outs[0]!.script = mallory.receive('p2wpkh').script;
    assert.throws(() => chain.broadcast(tx.toHex()), /bad_signature/);
  });
});
