// Denial of service inside the body limit, through the public HTTP API: PSBTs whose entries hold a lot (a previous
// transaction of 20,000 outputs, taproot leaf scripts on every input of a stranger, hundreds of partial
// signatures) cost seconds of synchronous decoding (btc-signer re-checks every input on each parse, copy and
// serialisation) while every other request waits. Each is refused before it is parsed (psbt_too_large, the
// limit named in details), nothing signed or charged; the event loop is measured the way other agents feel it.
// At the limits, a PSBT holding every limit at once is still decoded; its cost is printed (`# dos-timing`).
// bitcoin-review.http.test.ts has the earlier shapes (600 inputs, 1,000 derivation entries on one input).
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { BITCOIN_CHAINS, bitcoinAsset } from '@airlock/core';
import { schnorr, secp256k1 } from '@noble/curves/secp256k1.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { utf8ToBytes } from '@noble/hashes/utils.js';
import { base64 } from '@scure/base';
import { p2tr, RawTx, Transaction } from '@scure/btc-signer';
import { txidOf } from '../../chains/src/bitcoin/psbt-parse.ts';
import { PSBT_LIMITS } from '../../chains/src/bitcoin/psbt-limits.ts';
import { BitcoinTestChain, buildPsbt, decodePsbtMaps, encodePsbtMaps, fundedInput, IN, payTo, TestWallet, type KeyValue } from '../../testing/src/bitcoin/index.ts';
import { provisionAgent, startHarness, type Harness } from './testing/harness.ts';
import { timed } from './testing/stall-probe.ts';

const CHAIN = BITCOIN_CHAINS.regtest;
const BTC = bitcoinAsset(CHAIN);
const payee = TestWallet.stranger('decode limits payee', 'regtest');
const PAYEE = payee.receive('p2wpkh', 0).address;
const IN_TAP_LEAF_SCRIPT = 0x15;

/** A taproot output of `n` leaves (a balanced tree) and each leaf's PSBT_IN_TAP_LEAF_SCRIPT entry (the reviewer's). */
function leafTree(n: number) {
  const internal = schnorr.getPublicKey(new Uint8Array(32).fill(7));
  const scripts = Array.from({ length: n }, (_, i) => ({ script: Uint8Array.of(0x01, i, 0x75, 0x51) }));
  type Tree = { script: Uint8Array } | [Tree, Tree];
  const build = (xs: Tree[]): Tree => (xs.length === 1 ? xs[0]! : [build(xs.slice(0, xs.length / 2)), build(xs.slice(xs.length / 2))]);
  const pay = p2tr(internal, build(scripts) as Parameters<typeof p2tr>[1], undefined, true);
  return { script: pay.script, leaves: (pay.leaves as unknown as { controlBlock: Uint8Array; script: Uint8Array }[]).map((l): KeyValue => ({ key: Uint8Array.of(IN_TAP_LEAF_SCRIPT, ...l.controlBlock), value: Uint8Array.of(...l.script, 0xc0) })) };
}

describe('decoding limits over HTTP', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ store: 'sqlite' });
  });
  after(async () => h.close());

  async function agentWith() {
    const doc = { version: 1, rules: [{ type: 'allow', name: 'bitcoin', match: { actions: ['bitcoin.psbt'], chains: [CHAIN] } }, { type: 'budget', name: 'daily', asset: BTC, max: '100000000000000', window: '24h', scope: 'agent' }] };
    const { agent, token } = await provisionAgent(h, { policy: doc, actions: ['bitcoin.psbt'] });
    return { agent, token, wallet: TestWallet.fromMnemonic(h.mnemonic, 'regtest', agent.accountIndex) };
  }
  const charged = async (agentId: string) => (await h.airlock.store.transaction((tx) => tx.windowTotals([{ series: `agent:${agentId}`, asset: BTC, sinceMs: 0 }])))[0]!.amount;

  /** One PSBT signing request, with its duration and the longest time the event loop was blocked meanwhile (testing/stall-probe.ts). */
  async function timedPsbt(label: string, token: string, psbt: string, finalize = false) {
    const { result: res, stallMs } = await timed(label, () => h.call('POST', '/v1/sign/psbt', { token, body: { psbt, network: 'regtest', finalize } }),
      (r) => `${psbt.length} bytes of base64, ${r.status} ${r.body.error?.code ?? ''}`);
    return { res, stallMs };
  }

  /** Sent by the agent whose inputs it spends: refused before parsing, nothing charged, the event loop not held. */
  async function refusedBeforeParsing(who: { agent: { id: string }; token: string }, label: string, psbt: string, limit: string, finalize = false) {
    const { agent, token } = who;
    const { res, stallMs } = await timedPsbt(label, token, psbt, finalize);
    assert.equal(res.status, 400, JSON.stringify(res.body).slice(0, 300));
    assert.equal(res.body.error.code, 'psbt_too_large');
    assert.equal(res.body.error.details.limit, limit);
    assert.equal(res.body.psbt, undefined);
    assert.equal(await charged(agent.id), 0n);
    assert.ok(stallMs < 1_000, `${label}: the event loop was blocked ${stallMs.toFixed(0)} ms`);
  }

  test("an input of the agent whose previous transaction has 20,001 outputs (240 kB: 9.9 s of decoding before): refused, previousTxBytes", async () => {
    const who = await agentWith();
    const { wallet } = who;
    const key = wallet.receive('p2wpkh', 0);
    const outputs: { amount: bigint; script: Uint8Array }[] = Array.from({ length: 20_000 }, () => ({ amount: 1n, script: new Uint8Array(0) }));
    outputs.push({ amount: 100_000n, script: key.script });
    const raw = RawTx.encode({ version: 2, segwitFlag: false, inputs: [{ txid: sha256(utf8ToBytes('x')), index: 0, finalScriptSig: Uint8Array.of(0x51), sequence: 0xffffffff }], outputs, witnesses: undefined, lockTime: 0 });
    const tx = new Transaction({ allowUnknownOutputs: true });
    const path = key.path.replace(/^m\//, '').split('/').map((p) => (p.endsWith("'") ? 0x80000000 + Number(p.slice(0, -1)) : Number(p)));
    tx.addInput({ txid: txidOf(RawTx.decode(raw)), index: 20_000, nonWitnessUtxo: raw, witnessUtxo: { script: key.script, amount: 100_000n }, bip32Derivation: [[key.publicKey, { fingerprint: wallet.fingerprint, path }]] });
    tx.addOutput({ script: payee.receive('p2wpkh', 0).script, amount: 90_000n });
    await refusedBeforeParsing(who, 'previous transaction of 20,001 outputs', base64.encode(tx.toPSBT(0)), 'previousTxBytes', true);
  });

  for (const [strangers, leaves, limit] of [[49, 16, 'leafScriptsPerInput'], [24, 32, 'leafScriptsPerInput'], [5, 8, 'leafScripts']] as const) {
    test(`${strangers} stranger taproot inputs with ${leaves} leaf scripts each (each a taproot tweak on every check; 10 s before for 49 x 16): refused, ${limit}`, async () => {
      const who = await agentWith();
      const { wallet } = who;
      const chain = new BitcoinTestChain('regtest');
      const tree = leafTree(leaves);
      const inputs = [fundedInput(chain, wallet.receive('p2tr', 0), 100_000n)];
      for (let i = 0; i < strangers; i++) {
        const coin = chain.fundOne(tree.script, 1_000n);
        inputs.push({ hash: coin.txid, index: coin.vout, witnessUtxo: { script: coin.script, value: coin.valueSat } });
      }
      const maps = decodePsbtMaps(buildPsbt(chain, inputs, [payTo(chain, PAYEE, 90_000n)]).toBase64());
      for (let i = 1; i <= strangers; i++) maps.inputs[i]!.push(...tree.leaves.slice(0, leaves));
      await refusedBeforeParsing(who, `${strangers} x ${leaves} leaf scripts`, encodePsbtMaps(maps), limit);
    });
  }

  test('30 partial signatures on each of 49 stranger inputs (1,470 keys to decompress on every parse): refused, publicKeys', async () => {
    const who = await agentWith();
    const { wallet } = who;
    const chain = new BitcoinTestChain('regtest');
    const keys = Array.from({ length: 30 }, (_, i) => secp256k1.getPublicKey(sha256(utf8ToBytes(`limits/${i}`)), true));
    const inputs = [fundedInput(chain, wallet.receive('p2tr', 0), 100_000n)];
    for (let i = 0; i < 49; i++) inputs.push(fundedInput(chain, payee.receive('p2wpkh', 10 + i), 1_000n, { withoutDerivation: true }));
    const maps = decodePsbtMaps(buildPsbt(chain, inputs, [payTo(chain, PAYEE, 90_000n)]).toBase64());
    for (let i = 1; i <= 49; i++) for (const key of keys) maps.inputs[i]!.push({ key: Uint8Array.of(IN.PARTIAL_SIG, ...key), value: Uint8Array.of(...new Uint8Array(71).fill(1), 1) });
    await refusedBeforeParsing(who, '49 x 30 partial signatures', encodePsbtMaps(maps), 'publicKeys');
  });

  test('64 unknown entries in each of 49 stranger inputs and 100 outputs (btc-signer serialises them in more than linear time: 15 s before): refused, entries', async () => {
    const who = await agentWith();
    const chain = new BitcoinTestChain('regtest');
    const inputs = [fundedInput(chain, who.wallet.receive('p2tr', 0), 1_000_000n)];
    for (let i = 0; i < 49; i++) inputs.push(fundedInput(chain, payee.receive('p2wpkh', 10 + i), 1_000n, { withoutDerivation: true }));
    const outputs = Array.from({ length: 100 }, (_, i) => payTo(chain, payee.receive('p2wpkh', 100 + i).address, 1_000n));
    const maps = decodePsbtMaps(buildPsbt(chain, inputs, outputs).toBase64());
    const fill = (map: KeyValue[]) => {
      for (let k = map.length; k < PSBT_LIMITS.entriesPerMap; k++) map.push({ key: Uint8Array.of(0xf0, k), value: Uint8Array.of(1) });
    };
    maps.inputs.slice(1).forEach(fill);
    maps.outputs.forEach(fill);
    await refusedBeforeParsing(who, '64 unknown entries per map', encodePsbtMaps(maps), 'entries');
  });

  test('every limit held at once (50 inputs each with its previous transaction, 2,500 previous outputs in all, 32 leaf scripts, 200 public keys, 1,000 entries, 100 outputs) is decoded, judged and signed; its cost is printed', async () => {
    const { agent, token, wallet } = await agentWith();
    const chain = new BitcoinTestChain('regtest');
    const own = wallet.receive('p2wpkh', 0);
    // The agent's coin in a transaction of 2,300 outputs (the rest of the 2,500 are the strangers' previous transactions).
    const big = chain.fund(Array.from({ length: 2_300 }, (_, i) => ({ to: i === 0 ? own.script : payee.receive('p2wpkh', 1).script, valueSat: i === 0 ? 1_000_000n : 546n })))[0]!;
    const tree = leafTree(8);
    const inputs = [{ hash: big.txid, index: big.vout, witnessUtxo: { script: big.script, value: big.valueSat }, nonWitnessUtxo: big.transaction.toBuffer(), bip32Derivation: [{ masterFingerprint: own.masterFingerprint, pubkey: own.publicKey, path: own.path }] }];
    for (let i = 0; i < 49; i++) {
      const withLeaves = i < 4;
      const key = payee.receive('p2tr', 20 + i);
      const coin = chain.fundOne(withLeaves ? tree.script : key.script, 1_000n);
      inputs.push({ hash: coin.txid, index: coin.vout, witnessUtxo: { script: coin.script, value: coin.valueSat }, nonWitnessUtxo: coin.transaction.toBuffer(), ...(withLeaves ? {} : { tapInternalKey: key.publicKey.subarray(1) }) } as never);
    }
    const outputs = Array.from({ length: 99 }, (_, i) => payTo(chain, payee.receive('p2wpkh', 100 + i).address, 1_000n));
    outputs.push(payTo(chain, PAYEE, 900_000n));
    const maps = decodePsbtMaps(buildPsbt(chain, inputs, outputs).toBase64());
    for (let i = 1; i <= 4; i++) maps.inputs[i]!.push(...tree.leaves);
    // 1 derivation + 45 internal keys + 32 leaves so far: 122 more public keys as partial signatures of strangers.
    const sigKeys = Array.from({ length: 3 }, (_, i) => secp256k1.getPublicKey(sha256(utf8ToBytes(`limits/${i}`)), true));
    let keys = 1 + 45 + 32;
    for (let i = 5; i <= 49 && keys < PSBT_LIMITS.publicKeys; i++) {
      for (const key of sigKeys) if (keys++ < PSBT_LIMITS.publicKeys) maps.inputs[i]!.push({ key: Uint8Array.of(IN.PARTIAL_SIG, ...key), value: Uint8Array.of(...new Uint8Array(71).fill(1), 1) });
    }
    // Unknown entries (kept as they are) up to the limit of entries in all maps.
    let entries = maps.global.length + [...maps.inputs, ...maps.outputs].reduce((n, m) => n + m.length, 0);
    for (const map of [...maps.inputs, ...maps.outputs]) {
      for (let k = 0; map.length < PSBT_LIMITS.entriesPerMap && entries < PSBT_LIMITS.entries; k++, entries++) map.push({ key: Uint8Array.of(0xf0, k), value: Uint8Array.of(1) });
    }
    const psbt = encodePsbtMaps(maps);
    const { res } = await timedPsbt('every limit at once', token, psbt);
    assert.equal(res.status, 200, JSON.stringify(res.body).slice(0, 300));
    assert.deepEqual(res.body.signedInputs, [0]);
    assert.ok((await charged(agent.id)) > 0n);
  });
});
