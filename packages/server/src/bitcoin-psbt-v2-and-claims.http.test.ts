// PSBT v2 (BIP-370), duplicated keys and a change output claimed through the wrong derivation, over HTTP: controls
// an attack review probed and found holding, kept so they keep holding. A v2 PSBT with full previous transactions
// signs; another previous transaction, or a witness UTXO disagreeing with it, is psbt_utxo_mismatch; a key twice
// in one map and v2-only fields in a v0 PSBT are psbt_malformed. A change output claimed with a taproot derivation
// naming a leaf, with the agent's BIP-84 key as a taproot key, or with the agent's change key as the internal key
// of a script-path output is charged as a spend. Each refusal: its code, no signature, nothing charged.
// Decoding does not depend on the store: SQLite only (bitcoin-psbt.http.test.ts covers both stores).
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as bitcoin from 'bitcoinjs-lib';
import { BITCOIN_CHAINS, bitcoinAsset } from '@airlock/core';
import {
  asPsbtV2,
  BitcoinTestChain,
  buildPsbt,
  decodePsbtMaps,
  encodePsbtMaps,
  fundedInput,
  IN,
  payTo,
  TestWallet,
  verifyAirlockPsbt,
  walletOutput,
} from '../../testing/src/bitcoin/index.ts';
import { provisionAgent, startHarness, type Harness } from './testing/harness.ts';

const CHAIN = BITCOIN_CHAINS.regtest;
const BTC = bitcoinAsset(CHAIN);
const MSAT = 1000n;
const payee = TestWallet.stranger('psbt v2 and claims payee', 'regtest');
const mallory = TestWallet.stranger('psbt v2 and claims mallory', 'regtest');
const PAYEE = payee.receive('p2wpkh', 0).address;

const policy = {
  version: 1,
  rules: [
    { type: 'allow', name: 'bitcoin', match: { actions: ['bitcoin.psbt'], chains: [CHAIN] } },
    { type: 'budget', name: 'daily', asset: BTC, max: String(10_000_000n * MSAT), window: '24h', scope: 'agent' },
  ],
};

describe('PSBT v2, duplicated keys, v2 fields in v0, change claimed through the wrong derivation', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ store: 'sqlite' });
  });
  after(async () => h.close());

  async function setup() {
    const { token, agent } = await provisionAgent(h, { policy, actions: ['bitcoin.psbt'] });
    const wallet = TestWallet.fromMnemonic(h.mnemonic, 'regtest', agent.accountIndex);
    return { token, agent, wallet, chain: new BitcoinTestChain('regtest') };
  }
  const sign = (token: string, psbt: string) => h.call('POST', '/v1/sign/psbt', { token, body: { psbt, network: 'regtest' } });
  const charged = async (agentId: string) => (await h.airlock.store.transaction((tx) => tx.windowTotals([{ series: `agent:${agentId}`, asset: BTC, sinceMs: 0 }])))[0]!.amount;
  async function refused(res: { status: number; body: any }, agentId: string, code: string) {
    assert.equal(res.status, 400, JSON.stringify(res.body));
    assert.equal(res.body.error?.code, code, JSON.stringify(res.body));
    assert.equal(res.body.psbt, undefined);
    assert.equal(await charged(agentId), 0n);
  }

  test('v2: a P2WPKH input with its previous transaction signs and verifies; another transaction, or a disagreeing witness UTXO, is psbt_utxo_mismatch', async () => {
    const { token, agent, wallet, chain } = await setup();
    const ours = fundedInput(chain, wallet.receive('p2wpkh', 0), 100_000n);
    const base = buildPsbt(chain, [ours], [payTo(chain, PAYEE, 90_000n)]);

    const wrongTx = decodePsbtMaps(asPsbtV2(base));
    const other = chain.fundOne(wallet.receive('p2wpkh', 0).script, 100_000n).transaction.toBuffer();
    wrongTx.inputs[0] = wrongTx.inputs[0]!.map((kv) => (kv.key[0] === IN.NON_WITNESS_UTXO ? { key: kv.key, value: Uint8Array.from(other) } : kv));
    await refused(await sign(token, encodePsbtMaps(wrongTx)), agent.id, 'psbt_utxo_mismatch');

    const lie = decodePsbtMaps(asPsbtV2(base));
    const w = lie.inputs[0]!.find((kv) => kv.key[0] === IN.WITNESS_UTXO)!;
    const v = Uint8Array.from(w.value);
    new DataView(v.buffer).setBigUint64(0, 1_000n, true);
    w.value = v;
    await refused(await sign(token, encodePsbtMaps(lie)), agent.id, 'psbt_utxo_mismatch');

    const res = await sign(token, asPsbtV2(base));
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(BigInt(res.body.intent.bitcoin.feeSat), 10_000n);
    verifyAirlockPsbt(res.body.psbt, { chain });
  });

  test('duplicated keys (witness UTXO twice with two amounts, a derivation twice) and v2-only fields in a v0 PSBT are psbt_malformed', async () => {
    const { token, agent, wallet, chain } = await setup();
    const base = buildPsbt(chain, [fundedInput(chain, wallet.receive('p2tr', 0), 100_000n)], [payTo(chain, PAYEE, 90_000n)]).toBase64();

    const twice = decodePsbtMaps(base);
    const w = twice.inputs[0]!.find((kv) => kv.key[0] === IN.WITNESS_UTXO)!;
    const v = Uint8Array.from(w.value);
    new DataView(v.buffer).setBigUint64(0, 1_000n, true);
    twice.inputs[0]!.push({ key: w.key, value: v });
    await refused(await sign(token, encodePsbtMaps(twice)), agent.id, 'psbt_malformed');

    const der = decodePsbtMaps(base);
    const d = der.inputs[0]!.find((kv) => kv.key[0] === IN.TAP_BIP32_DERIVATION)!;
    der.inputs[0]!.push({ key: d.key, value: d.value });
    await refused(await sign(token, encodePsbtMaps(der)), agent.id, 'psbt_malformed');

    const mixed = decodePsbtMaps(base);
    // PSBT_IN_PREVIOUS_TXID / OUTPUT_INDEX (v2 only) naming another outpoint than the unsigned transaction.
    mixed.inputs[0]!.push({ key: Uint8Array.of(IN.PREVIOUS_TXID), value: new Uint8Array(32).fill(9) }, { key: Uint8Array.of(IN.OUTPUT_INDEX), value: Uint8Array.of(1, 0, 0, 0) });
    await refused(await sign(token, encodePsbtMaps(mixed)), agent.id, 'psbt_malformed');
  });

  test("change claimed through a taproot derivation with a leaf hash, or through the agent's 84' key as a taproot key, is charged as a spend", async () => {
    const { token, wallet, chain } = await setup();
    const changeKey = wallet.change('p2tr', 0);
    const out = walletOutput(changeKey, 9_000n) as any;
    out.tapBip32Derivation[0].leafHashes = [Buffer.alloc(32, 1)];
    const res = await sign(token, buildPsbt(chain, [fundedInput(chain, wallet.receive('p2tr', 0), 100_000n)], [payTo(chain, PAYEE, 90_000n), out]).toBase64());
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(res.body.intent.bitcoin.outputs.map((o: any) => o.change), [false, false]);

    // P2TR of the agent's BIP-84 change key (x-only), claimed with its 84' path as a taproot derivation.
    const k84 = wallet.change('p2wpkh', 0);
    const x = Buffer.from(k84.publicKey.slice(1));
    const script = bitcoin.payments.p2tr({ internalPubkey: x, network: chain.bitcoinjsNetwork }).output!;
    const psbt = buildPsbt(chain, [fundedInput(chain, wallet.receive('p2tr', 1), 100_000n)], [payTo(chain, PAYEE, 90_000n), { script, value: 9_000n }]);
    psbt.updateOutput(1, { tapInternalKey: x, tapBip32Derivation: [{ masterFingerprint: Buffer.from(k84.masterFingerprint), pubkey: x, path: k84.path, leafHashes: [] }] });
    const res2 = await sign(token, psbt.toBase64());
    assert.equal(res2.status, 200, JSON.stringify(res2.body));
    assert.deepEqual(res2.body.intent.bitcoin.outputs.map((o: any) => o.change), [false, false]);

    // The agent's change key as the INTERNAL key of an output with Mallory's script leaf (a script-path output):
    // derivation names the change path with no leaf hash, the script is not the BIP-86 one: charged.
    const internal = Buffer.from(changeKey.publicKey.slice(1));
    const leaf = { output: bitcoin.script.compile([Buffer.from(mallory.receive('p2tr', 0).publicKey.slice(1)), bitcoin.opcodes.OP_CHECKSIG]) };
    const tree = bitcoin.payments.p2tr({ internalPubkey: internal, scriptTree: leaf, network: chain.bitcoinjsNetwork });
    const psbt3 = buildPsbt(chain, [fundedInput(chain, wallet.receive('p2tr', 2), 100_000n)], [payTo(chain, PAYEE, 90_000n), { script: tree.output!, value: 9_000n }]);
    psbt3.updateOutput(1, { tapInternalKey: internal, tapBip32Derivation: [{ masterFingerprint: Buffer.from(changeKey.masterFingerprint), pubkey: internal, path: changeKey.path, leafHashes: [] }] });
    const res3 = await sign(token, psbt3.toBase64());
    assert.equal(res3.status, 200, JSON.stringify(res3.body));
    assert.deepEqual(res3.body.intent.bitcoin.outputs.map((o: any) => o.change), [false, false]);
    assert.equal(res3.body.intent.spends.filter((x: any) => x.kind === 'transfer').length, 2);
  });
});
