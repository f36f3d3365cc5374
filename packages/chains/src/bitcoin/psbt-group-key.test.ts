// decodeGroupKeyPsbt: what a threshold signer node reads from a key-path PSBT. The PSBTs are built with
// bitcoinjs-lib and the sighashes compared with bitcoinjs's own BIP-341 code (an independent implementation).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as bitcoin from 'bitcoinjs-lib';
import * as ecc from 'tiny-secp256k1';
import { schnorr } from '@noble/curves/secp256k1.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { isAirlockError } from '@airlock/core';
import { completeGroupKeyPsbt, decodeGroupKeyPsbt, readTaprootKeyPathRequest } from './psbt-group-key.ts';

bitcoin.initEccLib(ecc);
const network = bitcoin.networks.regtest;
// Any x-only key stands in for the group key here: the decoder never tweaks it.
const secret = randomBytes(32);
const groupKey = bytesToHex(schnorr.getPublicKey(secret));
const groupScript = Buffer.concat([Buffer.from([0x51, 0x20]), Buffer.from(groupKey, 'hex')]);
const SUPPLIER = bitcoin.payments.p2wpkh({ hash: Buffer.alloc(20, 0x11), network }).address!;
const otherScript = Buffer.from(bitcoin.payments.p2wpkh({ hash: Buffer.alloc(20, 0x33), network }).output!);

function build(edit: (psbt: bitcoin.Psbt) => void = () => {}, spent: Buffer = groupScript): bitcoin.Psbt {
  const psbt = new bitcoin.Psbt({ network });
  psbt.setVersion(2);
  psbt.addInput({ hash: randomBytes(32), index: 0, witnessUtxo: { script: spent, value: 60_000n } });
  psbt.addInput({ hash: randomBytes(32), index: 1, witnessUtxo: { script: otherScript, value: 10_000n } });
  psbt.addInput({ hash: randomBytes(32), index: 2, witnessUtxo: { script: spent, value: 40_000n } });
  psbt.addOutput({ address: SUPPLIER, value: 70_000n });
  psbt.addOutput({ script: groupScript, value: 38_500n });
  edit(psbt);
  return psbt;
}

const decode = (psbt: bitcoin.Psbt) => decodeGroupKeyPsbt(readTaprootKeyPathRequest({ action: 'bitcoin.taproot_key_path', psbt: psbt.toBase64(), network: 'regtest' }), groupKey);

function refused(psbt: bitcoin.Psbt, code: string): void {
  assert.throws(() => decode(psbt), (e) => isAirlockError(e) && e.code === code);
}

test('signs the group-key inputs only, over the BIP-341 sighash bitcoinjs computes; change back to the group key is not spent', () => {
  const psbt = build();
  const decoded = decode(psbt);
  assert.deepEqual(decoded.inputs.map((i) => i.input), [0, 2]);
  const tx = bitcoin.Transaction.fromBuffer(psbt.data.getTransaction());
  const scripts = psbt.data.inputs.map((i) => i.witnessUtxo!.script);
  const values = psbt.data.inputs.map((i) => i.witnessUtxo!.value);
  for (const { input, sighash } of decoded.inputs) {
    assert.equal(bytesToHex(sighash), bytesToHex(tx.hashForWitnessV1(input, scripts, values, bitcoin.Transaction.SIGHASH_DEFAULT)));
  }
  // Spends: the supplier and the fee (110,000 in, 108,500 out), in millisatoshis; the 38,500 back to the group is change.
  assert.deepEqual(decoded.intent.spends.map((s) => [s.kind, s.to, s.amount]), [['transfer', SUPPLIER, 70_000_000n], ['fee', undefined, 1_500_000n]]);
  assert.equal(decoded.intent.to, SUPPLIER);
  assert.equal(decoded.intent.action, 'bitcoin.psbt');
  assert.equal(decoded.intent.bitcoin!.outputs[1]!.change, true);
  assert.equal(decoded.intent.bitcoin!.inputs.filter((i) => i.ours).length, 2);
  // The same PSBT gives the same message id (replays), another transaction another one.
  assert.equal(decode(psbt).messageId, decoded.messageId);
  assert.notEqual(decode(build()).messageId, decoded.messageId);
  // The network is committed to: the same PSBT under another network label is another message (no replay of a
  // decision a node took for the other label, under another network's policy asset).
  const asTestnet = decodeGroupKeyPsbt(readTaprootKeyPathRequest({ action: 'bitcoin.taproot_key_path', psbt: psbt.toBase64(), network: 'testnet' }), groupKey);
  assert.notEqual(asTestnet.messageId, decoded.messageId);
  assert.deepEqual(asTestnet.inputs.map((i) => bytesToHex(i.sighash)), decoded.inputs.map((i) => bytesToHex(i.sighash)));
});

test('completes the PSBT only with signatures that verify against the output key over each sighash', () => {
  const decoded = decode(build());
  const good = decoded.inputs.map((i) => schnorr.sign(i.sighash, secret));
  const signed = bitcoin.Psbt.fromBase64(completeGroupKeyPsbt(decoded, good).psbt, { network });
  for (const i of [0, 2]) assert.equal(signed.validateSignaturesOfInput(i, (k, h, s) => ecc.verifySchnorr(h, k, s), Buffer.from(groupKey, 'hex')), true);
  // Swapped signatures (each valid, for the other input) are refused.
  assert.throws(() => completeGroupKeyPsbt(decoded, [good[1]!, good[0]!]), (e) => isAirlockError(e) && e.code === 'signature_check_failed');
});

test('refusals: no group input, a non-default sighash, a script path, an input without its previous output, outputs above inputs', () => {
  refused(build(undefined, otherScript), 'psbt_nothing_to_sign');
  refused(build((p) => p.updateInput(2, { sighashType: bitcoin.Transaction.SIGHASH_ALL })), 'psbt_sighash_not_default');
  refused(build((p) => p.updateInput(0, { tapMerkleRoot: Buffer.alloc(32, 7) })), 'psbt_unsupported_input');
  refused(build((p) => p.addInput({ hash: randomBytes(32), index: 0 })), 'psbt_missing_utxo');
  refused(build((p) => p.addOutput({ address: SUPPLIER, value: 5_000n })), 'psbt_value_out_of_range');
  assert.throws(() => readTaprootKeyPathRequest({ action: 'bitcoin.taproot_key_path', psbt: 'x', network: 'regtest', digest: '00' }), (e) => isAirlockError(e) && e.code === 'invalid_request');
});

test("a BIP-322 to_sign for the group key's address is refused: version 0 (psbt_tx_version_unsupported), or a group-key input worth 0 sat (psbt_zero_value_input)", () => {
  refused(build((p) => p.setVersion(0)), 'psbt_tx_version_unsupported');
  refused(build((p) => p.setVersion(4)), 'psbt_tx_version_unsupported');
  const zero = new bitcoin.Psbt({ network });
  zero.setVersion(2);
  zero.addInput({ hash: randomBytes(32), index: 0, witnessUtxo: { script: groupScript, value: 0n } });
  zero.addOutput({ script: Buffer.from([0x6a]), value: 0n });
  refused(zero, 'psbt_zero_value_input');
  assert.equal(decode(build((p) => p.setVersion(3))).inputs.length, 2, 'version 3 (BIP-431) is signed');
});
