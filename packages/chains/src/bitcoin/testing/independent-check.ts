// Test helper: signatures checked with libraries that share no code with ours (bitcoinjs-lib computes the
// sighashes, tiny-secp256k1 — libsecp256k1 compiled to wasm — verifies).
import assert from 'node:assert/strict';
import * as bitcoin from 'bitcoinjs-lib';
import * as ecc from 'tiny-secp256k1';

bitcoin.initEccLib(ecc);

/** Every partial signature / taproot key signature of `inputs` in a (v0) PSBT verifies under bitcoinjs' own sighash. */
export function assertPsbtSignaturesValid(psbtBase64: string, inputs: readonly number[]): void {
  const psbt = bitcoin.Psbt.fromBase64(psbtBase64);
  for (const i of inputs) {
    const valid = psbt.validateSignaturesOfInput(i, (pubkey, hash, signature) => (pubkey.length === 32 ? ecc.verifySchnorr(hash, pubkey, signature) : ecc.verify(hash, pubkey, signature)));
    assert.equal(valid, true, `input ${i}: signature does not verify independently`);
  }
}

/** The witnesses of `inputs` in a network-serialised transaction satisfy the previous outputs (P2WPKH, P2TR key path). */
export function assertTransactionSignaturesValid(hex: string, prevouts: readonly { script: Uint8Array; amount: bigint }[], inputs: readonly number[]): bitcoin.Transaction {
  const tx = bitcoin.Transaction.fromHex(hex);
  for (const i of inputs) {
    const witness = tx.ins[i]!.witness;
    const prev = prevouts[i]!;
    if (prev.script[0] === 0x00) {
      assert.equal(witness.length, 2, `input ${i}: a P2WPKH witness has two items`);
      const [sig, pubkey] = witness as [Uint8Array, Uint8Array];
      assert.deepEqual(bitcoin.payments.p2wpkh({ pubkey }).output, prev.script, `input ${i}: the witness key is not the output's`);
      const { signature, hashType } = bitcoin.script.signature.decode(sig);
      const scriptCode = bitcoin.payments.p2pkh({ pubkey }).output!;
      const hash = tx.hashForWitnessV0(i, scriptCode, prev.amount, hashType);
      assert.ok(ecc.verify(hash, pubkey, signature, true), `input ${i}: ECDSA signature does not verify independently`);
    } else {
      assert.equal(witness.length, 1, `input ${i}: a key-path witness has one item`);
      const sig = witness[0]!;
      const hashType = sig.length === 65 ? sig[64]! : bitcoin.Transaction.SIGHASH_DEFAULT;
      const hash = tx.hashForWitnessV1(i, prevouts.map((p) => p.script), prevouts.map((p) => p.amount), hashType);
      assert.ok(ecc.verifySchnorr(hash, prev.script.slice(2), sig.slice(0, 64)), `input ${i}: BIP-340 signature does not verify independently`);
    }
  }
  return tx;
}
