// verifyAirlockPsbt stands between Airlock's answer and the chain double: here bitcoinjs plays Airlock (it
// signs the agent's inputs with keys the test holds), so that every check can be shown to pass on a correct
// PSBT and to fail on each kind of wrong one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as bitcoin from 'bitcoinjs-lib';
import { BitcoinTestChain } from './chain.ts';
import { asPsbtV2, buildPsbt, fundedInput, payTo, signOwnInputs, walletOutput } from './psbt-builder.ts';
import { decodePsbtMaps, encodePsbtMaps, IN, OUT, toPsbtV0, toPsbtV2 } from './psbt-maps.ts';
import { PsbtVerificationFailed, verifyAirlockPsbt } from './verify-psbt.ts';
import { TestWallet } from './wallet.ts';

const agent = TestWallet.stranger('plays the agent', 'regtest');
const stranger = TestWallet.stranger('co-signer', 'regtest');
const payee = TestWallet.stranger('payee', 'regtest');

/** Inputs 0 (agent P2WPKH), 1 (stranger P2WPKH, already signed by the stranger), 2 (agent P2TR). */
function sent(chain: BitcoinTestChain): bitcoin.Psbt {
  const psbt = buildPsbt(
    chain,
    [fundedInput(chain, agent.receive('p2wpkh', 0), 50_000n), fundedInput(chain, stranger.receive('p2wpkh', 0), 20_000n), fundedInput(chain, agent.receive('p2tr', 0), 30_000n)],
    [payTo(chain, payee.receive('p2tr').address, 80_000n), walletOutput(agent.change('p2wpkh', 1), 18_500n)],
  );
  signOwnInputs(psbt, stranger);
  return psbt;
}

/** What a correct signer returns (v0): the agent's signatures added, nothing else touched. */
function signedByAgent(v0: string): string {
  const psbt = bitcoin.Psbt.fromBase64(v0);
  signOwnInputs(psbt, agent);
  return psbt.toBase64();
}

function fails(run: () => unknown, message: RegExp): void {
  assert.throws(run, (e: unknown) => e instanceof PsbtVerificationFailed && message.test(e.message));
}

test("a correctly signed v0 PSBT: the agent's inputs found signed, every signature verified, finalized and accepted", () => {
  const chain = new BitcoinTestChain('regtest');
  const before = sent(chain).toBase64();
  const result = verifyAirlockPsbt(signedByAgent(before), { chain, sent: before });
  assert.deepEqual(result.signedInputs, [0, 2]);
  assert.deepEqual(
    result.signatures.map((s) => [s.input, s.scheme, s.hashType]),
    [
      [0, 'ecdsa', 1],
      [1, 'ecdsa', 1],
      [2, 'schnorr', 0],
    ],
  );
  assert.equal(result.accepted?.feeSat, 1_500n);
  assert.equal(result.accepted?.txid, result.txid);
});

test('a correctly signed v2 PSBT is checked the same way', () => {
  const chain = new BitcoinTestChain('regtest');
  const before = asPsbtV2(sent(chain));
  const after = toPsbtV2(signedByAgent(toPsbtV0(before)));
  const result = verifyAirlockPsbt(after, { chain, sent: before });
  assert.equal(result.version, 2);
  assert.deepEqual(result.signedInputs, [0, 2]);
  assert.ok(result.accepted);
});

test('a signature with a flipped bit is caught before broadcast (ECDSA and schnorr)', () => {
  for (const [input, type] of [
    [0, IN.PARTIAL_SIG],
    [2, IN.TAP_KEY_SIG],
  ] as const) {
    const chain = new BitcoinTestChain('regtest');
    const before = sent(chain).toBase64();
    const maps = decodePsbtMaps(signedByAgent(before));
    const sig = maps.inputs[input]!.find((kv) => kv.key[0] === type)!;
    sig.value[8]! ^= 0x01;
    fails(() => verifyAirlockPsbt(encodePsbtMaps(maps), { chain, sent: before }), new RegExp(`input ${input}: .*does not verify`));
  }
});

test('anything changed besides signatures is caught: the transaction, an output field, a removed input field, an added one, the version', () => {
  const chain = new BitcoinTestChain('regtest');
  const before = sent(chain).toBase64();
  const good = signedByAgent(before);

  const tx = decodePsbtMaps(good);
  const unsigned = bitcoin.Transaction.fromBuffer(tx.global[0]!.value);
  unsigned.outs[0]!.value -= 1n;
  tx.global[0]!.value = unsigned.toBuffer();
  fails(() => verifyAirlockPsbt(encodePsbtMaps(tx), { chain, sent: before }), /global map changed/);

  const output = decodePsbtMaps(good);
  output.outputs[1] = output.outputs[1]!.filter((kv) => kv.key[0] !== OUT.BIP32_DERIVATION);
  fails(() => verifyAirlockPsbt(encodePsbtMaps(output), { chain, sent: before }), /output 1 changed/);

  const removed = decodePsbtMaps(good);
  removed.inputs[0] = removed.inputs[0]!.filter((kv) => kv.key[0] !== IN.NON_WITNESS_UTXO);
  fails(() => verifyAirlockPsbt(encodePsbtMaps(removed), { chain, sent: before }), /input 0: field 0x00 was removed/);

  const added = decodePsbtMaps(good);
  added.inputs[2]!.push({ key: Uint8Array.of(IN.SIGHASH_TYPE), value: Uint8Array.of(1, 0, 0, 0) });
  fails(() => verifyAirlockPsbt(encodePsbtMaps(added), { chain, sent: before }), /input 2: field 0x03 was added/);

  fails(() => verifyAirlockPsbt(toPsbtV2(good), { chain, sent: before }), /sent a version 0 PSBT, got version 2/);
});

test('an input nobody signed cannot be finalized, and a signature by the wrong key is named', () => {
  const chain = new BitcoinTestChain('regtest');
  const before = sent(chain).toBase64();
  fails(() => verifyAirlockPsbt(before, { chain, sent: before }), /cannot finalize input 0/);

  // The stranger's signature moved onto the agent's input 0: a valid signature, by a key the input does not pay.
  const maps = decodePsbtMaps(signedByAgent(before));
  maps.inputs[0] = [...maps.inputs[0]!.filter((kv) => kv.key[0] !== IN.PARTIAL_SIG), maps.inputs[1]!.find((kv) => kv.key[0] === IN.PARTIAL_SIG)!];
  fails(() => verifyAirlockPsbt(encodePsbtMaps(maps), { chain }), /input 0: the partial signature's key .* is not the key the input pays to/);
});

test('an input the signer finalized counts as signed; its derivation fields may go, its UTXOs may not', () => {
  const chain = new BitcoinTestChain('regtest');
  const before = sent(chain).toBase64();
  const psbt = bitcoin.Psbt.fromBase64(before);
  signOwnInputs(psbt, agent, { finalize: true });
  psbt.finalizeInput(1);
  const result = verifyAirlockPsbt(psbt.toBase64(), { chain, sent: before });
  assert.deepEqual(result.signedInputs, [0, 1, 2]);

  const maps = decodePsbtMaps(psbt.toBase64());
  maps.inputs[0] = maps.inputs[0]!.filter((kv) => kv.key[0] !== IN.WITNESS_UTXO);
  fails(() => verifyAirlockPsbt(encodePsbtMaps(maps), { chain, sent: before, finalize: false }), /input 0: field 0x01 was removed/);
});
