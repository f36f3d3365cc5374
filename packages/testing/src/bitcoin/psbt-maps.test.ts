// The hand-written BIP-370 conversion is checked against @scure/btc-signer's reader (the one other v2
// implementation at hand) and by a round trip through bitcoinjs: a v0 PSBT converted to v2 and back is the
// same bytes, and a v2 PSBT names the same transaction, fields and derivations.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as btc from '@scure/btc-signer';
import * as bitcoin from 'bitcoinjs-lib';
import { BitcoinTestChain } from './chain.ts';
import { buildPsbt, fundedInput, payTo, signOwnInputs, walletOutput } from './psbt-builder.ts';
import { decodePsbtMaps, encodePsbtMaps, find, GLOBAL, IN, OUT, psbtVersion, toPsbtV0, toPsbtV2 } from './psbt-maps.ts';
import { TestWallet } from './wallet.ts';

const agent = TestWallet.stranger('agent-like', 'regtest');
const bob = TestWallet.stranger('bob', 'regtest');

function samplePsbt(chain: BitcoinTestChain) {
  return buildPsbt(
    chain,
    [fundedInput(chain, agent.receive('p2wpkh', 3), 70_000n), fundedInput(chain, agent.receive('p2tr', 4), 30_000n, { sequence: 0xfffffffe, sighashType: bitcoin.Transaction.SIGHASH_ALL })],
    [payTo(chain, bob.receive('p2wpkh').address, 60_000n), walletOutput(agent.change('p2tr', 2), 39_000n)],
    { locktime: 1234 },
  );
}

test('v0 -> v2 -> v0 gives back the same bytes, and the maps re-encode to the same bytes', () => {
  const chain = new BitcoinTestChain('regtest');
  const v0 = samplePsbt(chain).toBase64();
  assert.equal(encodePsbtMaps(decodePsbtMaps(v0)), v0);
  const v2 = toPsbtV2(v0);
  assert.equal(psbtVersion(v2), 2);
  assert.equal(find(decodePsbtMaps(v2).global, GLOBAL.UNSIGNED_TX), undefined, 'BIP-370 forbids the unsigned transaction');
  assert.equal(toPsbtV0(v2), v0);
});

test('@scure/btc-signer reads the v2 PSBT as the same transaction with the same fields', () => {
  const chain = new BitcoinTestChain('regtest');
  const psbt = samplePsbt(chain);
  const unsigned = bitcoin.Transaction.fromBuffer(psbt.data.getTransaction());
  const tx = btc.Transaction.fromPSBT(Buffer.from(toPsbtV2(psbt.toBase64()), 'base64'));
  assert.equal(tx.id, unsigned.getId());
  assert.equal(tx.lockTime, 1234);
  assert.equal(tx.inputsLength, 2);
  assert.equal(tx.getInput(1).sequence, 0xfffffffe);
  assert.equal(tx.getInput(1).sighashType, bitcoin.Transaction.SIGHASH_ALL);
  assert.equal(tx.getInput(0).witnessUtxo?.amount, 70_000n);
  assert.equal(Buffer.from(tx.getInput(0).nonWitnessUtxo ? btc.RawTx.encode(tx.getInput(0).nonWitnessUtxo!) : []).length > 0, true);
  assert.equal(tx.getInput(0).bip32Derivation?.[0]?.[1].fingerprint, agent.fingerprint);
  assert.deepEqual(tx.getInput(1).tapBip32Derivation?.[0]?.[1].der.path, [0x80000000 + 86, 0x80000000 + 1, 0x80000000, 0, 4]);
  assert.equal(tx.getOutput(1).amount, 39_000n);
  assert.deepEqual(tx.getOutput(1).tapBip32Derivation?.[0]?.[1].der.path, [0x80000000 + 86, 0x80000000 + 1, 0x80000000, 1, 2]);
  // And scure's own v2 of the same PSBT converts to the same v0 bytes as ours (field order aside).
  const scureV2 = Buffer.from(btc.Transaction.fromPSBT(psbt.toBuffer()).toPSBT(2)).toString('base64');
  assert.equal(bitcoin.Psbt.fromBase64(toPsbtV0(scureV2)).data.getTransaction().toString(), psbt.data.getTransaction().toString());
});

test('signatures survive the conversion both ways: a v2 PSBT signed after conversion still finalizes', () => {
  const chain = new BitcoinTestChain('regtest');
  const v2 = toPsbtV2(samplePsbt(chain).toBase64());
  const signed = bitcoin.Psbt.fromBase64(toPsbtV0(v2));
  signOwnInputs(signed, agent);
  const back = toPsbtV2(signed.toBase64());
  const maps = decodePsbtMaps(back);
  assert.ok(find(maps.inputs[0]!, IN.PARTIAL_SIG));
  assert.ok(find(maps.inputs[1]!, IN.TAP_KEY_SIG));
  assert.ok(find(maps.outputs[0]!, OUT.AMOUNT));
  const final = bitcoin.Psbt.fromBase64(toPsbtV0(back)).finalizeAllInputs().extractTransaction();
  assert.equal(chain.broadcast(final.toHex()).feeSat, 1_000n);
});

test('a v2 PSBT missing a required field is refused by the converter', () => {
  const chain = new BitcoinTestChain('regtest');
  const maps = decodePsbtMaps(toPsbtV2(samplePsbt(chain).toBase64()));
  maps.inputs[1] = maps.inputs[1]!.filter((kv) => kv.key[0] !== IN.OUTPUT_INDEX);
  assert.throws(() => toPsbtV0(encodePsbtMaps(maps)), /PSBT_IN_OUTPUT_INDEX on input 1/);
});

test('BIP-370 lock time: the fallback without requirements, else the largest height every requiring input supports', () => {
  const chain = new BitcoinTestChain('regtest');
  const maps = decodePsbtMaps(toPsbtV2(samplePsbt(chain).toBase64()));
  const locktimeOf = () => bitcoin.Transaction.fromBuffer(find(decodePsbtMaps(toPsbtV0(encodePsbtMaps(maps))).global, GLOBAL.UNSIGNED_TX)!.value).locktime;
  assert.equal(locktimeOf(), 1234, 'the fallback');
  const u32 = (n: number) => Uint8Array.of(n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, n >>> 24);
  maps.inputs[0]!.push({ key: Uint8Array.of(IN.REQUIRED_HEIGHT_LOCKTIME), value: u32(500) });
  maps.inputs[1]!.push({ key: Uint8Array.of(IN.REQUIRED_HEIGHT_LOCKTIME), value: u32(700) }, { key: Uint8Array.of(IN.REQUIRED_TIME_LOCKTIME), value: u32(1_600_000_000) });
  assert.equal(locktimeOf(), 700, 'height, supported by both');
  maps.inputs[0] = maps.inputs[0]!.filter((kv) => kv.key[0] !== IN.REQUIRED_HEIGHT_LOCKTIME);
  maps.inputs[0]!.push({ key: Uint8Array.of(IN.REQUIRED_TIME_LOCKTIME), value: u32(1_700_000_000) });
  assert.equal(locktimeOf(), 1_700_000_000, 'time, the only kind both support');
  // And @scure/btc-signer agrees.
  assert.equal(btc.Transaction.fromPSBT(Buffer.from(encodePsbtMaps(maps), 'base64')).lockTime, 1_700_000_000);
});
