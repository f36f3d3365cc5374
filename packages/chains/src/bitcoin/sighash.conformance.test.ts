// BIP-341 wallet test vectors (bitcoin/bips bip-0341/wallet-test-vectors.json, shared/vectors): the key-path
// sighashes our signature tasks carry for taproot inputs, and the BIP-86 output scripts of keys without a tree.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { schnorr } from '@noble/curves/secp256k1.js';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { Transaction } from '@scure/btc-signer';
import { readVector, vectorsSkipReason } from '../../../../testing/vectors.ts';
import { addressOf, scriptOf } from './account.ts';
import { taprootSighash } from './sighash.ts';

const skip = vectorsSkipReason;

interface KeyPathSpending {
  given: { rawUnsignedTx: string; utxosSpent: { scriptPubKey: string; amountSats: number }[] };
  inputSpending: { given: { txinIndex: number; hashType: number }; intermediary: { sigHash: string }; expected: { witness: string[] } }[];
}

test('BIP-341 keyPathSpending: every input\'s sighash, and the expected signature verifies against the spent output key', { skip }, () => {
  const v = JSON.parse(readVector('bip341-wallet-test-vectors.json')) as { keyPathSpending: KeyPathSpending[] };
  let checked = 0;
  for (const spending of v.keyPathSpending) {
    const tx = Transaction.fromRaw(hexToBytes(spending.given.rawUnsignedTx), { allowUnknownOutputs: true, disableScriptCheck: true });
    const prevouts = spending.given.utxosSpent.map((u) => ({ script: hexToBytes(u.scriptPubKey), amount: BigInt(u.amountSats) }));
    for (const input of spending.inputSpending) {
      const { txinIndex, hashType } = input.given;
      const digest = taprootSighash(tx, txinIndex, prevouts, hashType);
      assert.equal(bytesToHex(digest), input.intermediary.sigHash, `input ${txinIndex}`);
      const signature = hexToBytes(input.expected.witness[0]!);
      assert.equal(signature.length, hashType === 0 ? 64 : 65);
      assert.ok(schnorr.verify(signature.slice(0, 64), digest, prevouts[txinIndex]!.script.slice(2)), `input ${txinIndex}: vector signature`);
      checked++;
    }
  }
  assert.equal(checked, 7);
});

test('BIP-341 scriptPubKey vectors without a script tree: our BIP-86 script and address of the internal key', { skip }, () => {
  const v = JSON.parse(readVector('bip341-wallet-test-vectors.json')) as {
    scriptPubKey: { given: { internalPubkey: string; scriptTree: unknown }; expected: { scriptPubKey: string; bip350Address: string } }[];
  };
  const keyOnly = v.scriptPubKey.filter((c) => c.given.scriptTree === null);
  assert.ok(keyOnly.length >= 1);
  for (const c of keyOnly) {
    // Either parity of the full key gives the same x-only internal key, hence the same output.
    const script = scriptOf('p2tr', hexToBytes(`02${c.given.internalPubkey}`));
    assert.equal(bytesToHex(script), c.expected.scriptPubKey);
    assert.equal(addressOf(script, 'bitcoin'), c.expected.bip350Address);
  }
});
