// The size estimate of other signers' inputs, against transactions btc-signer signs and finalizes for real:
// P2WPKH, P2PKH, P2SH-P2WPKH, 2-of-3 multisig in P2WSH and in P2SH, P2TR key path. Never above the truth (the
// fee rate cap divides by it), and below it only by the bytes each ECDSA signature of 71 or 72 bytes takes over
// the 60 a signer can make (its nonce k = 1/2, r = x(G/2) with 11 leading zero bytes).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { utf8ToBytes } from '@noble/hashes/utils.js';
import { p2ms, p2pkh, p2sh, p2tr, p2wpkh, p2wsh, Transaction } from '@scure/btc-signer';
import { fundingTransaction } from './testing/test-vault.ts';
import { higherRate, highestFeeRate, otherInputSize, virtualSize } from './vsize.ts';
import { RawWitness } from '@scure/btc-signer';

const privateKeys = ['a', 'b', 'c'].map((label) => sha256(utf8ToBytes(`vsize/${label}`)));
const [k1, k2, k3] = privateKeys.map((k) => secp256k1.getPublicKey(k, true)) as [Uint8Array, Uint8Array, Uint8Array];

test('estimated vsize of a transaction whose inputs other signers complete: at most the real one, below it by the 12 bytes a short signature saves', () => {
  const multisig = p2ms(2, [k1, k2, k3]);
  const spends: { script: Uint8Array; fields: Record<string, unknown>; legacy?: boolean }[] = [
    { script: p2wpkh(k1).script, fields: {} },
    { script: p2pkh(k1).script, fields: {}, legacy: true },
    { script: p2sh(p2wpkh(k2)).script, fields: { redeemScript: p2wpkh(k2).script } },
    { script: p2wsh(multisig).script, fields: { witnessScript: multisig.script } },
    { script: p2sh(multisig).script, fields: { redeemScript: multisig.script }, legacy: true },
    { script: p2tr(k3.slice(1)).script, fields: { tapInternalKey: k3.slice(1) } },
  ];
  const tx = new Transaction();
  for (const s of spends) {
    const funding = fundingTransaction([{ script: s.script, amount: 100_000n }]);
    tx.addInput({ txid: funding.txid, index: 0, ...(s.legacy ? { nonWitnessUtxo: funding.raw } : { witnessUtxo: { script: s.script, amount: 100_000n } }), ...s.fields });
  }
  tx.addOutput({ script: p2wpkh(k2).script, amount: 500_000n });
  const estimate = virtualSize(
    Array.from({ length: tx.inputsLength }, (_, i) => {
      const input = tx.getInput(i);
      return otherInputSize(input, input.nonWitnessUtxo ? input.nonWitnessUtxo.outputs[input.index!]!.script : input.witnessUtxo!.script);
    }),
    [p2wpkh(k2).script],
  );
  for (const k of privateKeys) tx.sign(k);
  tx.finalize();
  // Seven signatures, 12 bytes each at most: three in scriptSigs (P2PKH, P2SH 2-of-3), 36 vB; four in witnesses
  // (P2WPKH, P2SH-P2WPKH, P2WSH 2-of-3), 12 vB; the P2SH 2-of-3 scriptSig's length takes 2 more bytes past 252;
  // one for rounding.
  assert.ok(estimate <= tx.vsize && tx.vsize - estimate <= 36 + 12 + 2 + 1, `estimate ${estimate}, signed ${tx.vsize}`);
  // Once final, an input counts as it is, never above its template; a final P2SH or P2WSH input (its scripts
  // now inside the final fields, not beside them) counts as the floor of its type: the estimate is at most the size.
  const prevout = (i: number) => spends[i]!.script;
  const final = Array.from({ length: tx.inputsLength }, (_, i) => otherInputSize(tx.getInput(i), prevout(i)));
  assert.ok(virtualSize(final, [p2wpkh(k2).script]) <= tx.vsize);
  // A final P2TR input counts as signed while its internal key (kept beside it) proves there is no script tree.
  // Final P2WPKH and P2PKH inputs count as the template, 12 bytes below as signed: the co-signer could swap in a
  // signature made with k = 1/2 after the agent signed (its signatures do not commit to other inputs' witnesses).
  const withInternalKey = (i: number) => (i === 5 ? { ...tx.getInput(i), tapInternalKey: k3.slice(1) } : tx.getInput(i));
  const simple = [0, 1, 5].map((i) => otherInputSize(withInternalKey(i), prevout(i)));
  const signedWeight = [0, 1, 5].map((i) => { const inp = tx.getInput(i); return (inp.finalScriptSig?.length ?? 0) * 4 + (inp.finalScriptWitness ? RawWitness.encode(inp.finalScriptWitness).length : 0); });
  const derLength = (i: number) => { const inp = tx.getInput(i); return inp.finalScriptWitness ? inp.finalScriptWitness[0]!.length : inp.finalScriptSig![0]!; };
  assert.deepEqual(simple.map((x) => x.scriptSig * 4 + x.witness), [signedWeight[0]! - (derLength(0) - 60), signedWeight[1]! - 4 * (derLength(1) - 60), signedWeight[2]!], 'P2WPKH and P2PKH count a 60-byte signature, P2TR as signed');
  // A final witness or scriptSig padded past what its script type needs counts as the template: the co-signer
  // could swap in the small one after the agent signed (and pay a higher fee rate than policy saw).
  const padded = { ...tx.getInput(0), finalScriptWitness: [new Uint8Array(20_000), new Uint8Array(33)] };
  assert.deepEqual(otherInputSize(padded, prevout(0)), otherInputSize({ ...tx.getInput(0), finalScriptWitness: undefined }, prevout(0)));
  const paddedSig = { ...tx.getInput(1), finalScriptSig: new Uint8Array(4_000) };
  assert.equal(otherInputSize(paddedSig, prevout(1)).scriptSig, 1 + 60 + 1 + 33);
});

test('a spend whose size cannot be known counts as the smallest input (41 vB, empty witness), never as what it claims', () => {
  const smallest = { scriptSig: 0, witness: 0 };
  const multisig = p2ms(2, [k1, k2, k3]);
  // P2SH or P2WSH without its script: a co-signer could reveal a one-byte script (OP_TRUE) and sign nothing.
  assert.deepEqual(otherInputSize({}, p2sh(multisig).script), smallest);
  assert.deepEqual(otherInputSize({}, p2wsh(multisig).script), smallest);
  // Taproot without an internal key proving there is no script tree, or with a tree: a leaf spend may be smaller
  // than the key path.
  assert.deepEqual(otherInputSize({}, p2tr(k3.slice(1)).script), smallest);
  assert.deepEqual(otherInputSize({ tapInternalKey: k3.slice(1), tapMerkleRoot: new Uint8Array(32) }, p2tr(k3.slice(1)).script), smallest);
  assert.deepEqual(otherInputSize({ tapInternalKey: k3.slice(1) }, p2tr(k3.slice(1)).script), { scriptSig: 0, witness: 1 + 1 + 64 });
  // A script of no known type (OP_TRUE), and a P2SH script that is not multisig: only what must be revealed.
  assert.deepEqual(otherInputSize({}, Uint8Array.of(0x51)), smallest);
  const hashLock = Uint8Array.of(0xa8, 0x20, ...new Uint8Array(32), 0x87);
  const wrapped = { type: 'unknown', script: hashLock } as unknown as Parameters<typeof p2sh>[0];
  assert.deepEqual(otherInputSize({ redeemScript: hashLock }, p2sh(wrapped).script), { scriptSig: 1 + hashLock.length, witness: 0 });
  assert.deepEqual(otherInputSize({ witnessScript: hashLock }, p2wsh(wrapped as Parameters<typeof p2wsh>[0]).script), { scriptSig: 0, witness: 1 + 1 + hashLock.length });
  const tx = virtualSize([smallest], [p2wpkh(k2).script]);
  assert.equal(tx, 10 + 41 + 31, 'one such input and one P2WPKH output: 82 vB');
});

test('highestFeeRate: the subset of inputs paying the highest rate takes the densest first and stops where the next would lower it', () => {
  const p2wpkhInput = { scriptSig: 0, witness: 1 + 1 + 60 + 1 + 33 };
  const padding = { scriptSig: 1 + 15 * 61 + 3 + 513, witness: 0 };
  const out = [p2wpkh(k2).script];
  // A coin of 100,000 sat and a 0-sat padding input paying 95,000: the padding is left out.
  const coin = { size: p2wpkhInput, amount: 100_000n };
  const alone = highestFeeRate([{ size: padding, amount: 0n }, coin], out, 95_000n)!;
  assert.deepEqual(alone, { feeSat: 5_000n, vsize: virtualSize([p2wpkhInput], out) });
  // A second coin the outputs need stays in; so does one that raises the rate; dust below the rate does not.
  const needed = highestFeeRate([coin, { size: p2wpkhInput, amount: 50_000n }, { size: padding, amount: 0n }], out, 145_000n)!;
  assert.deepEqual(needed, { feeSat: 5_000n, vsize: virtualSize([p2wpkhInput, p2wpkhInput], out) });
  const dust = Array.from({ length: 5 }, () => ({ size: p2wpkhInput, amount: 300n }));
  assert.deepEqual(highestFeeRate([...dust, coin], out, 97_000n), { feeSat: 3_000n, vsize: virtualSize([p2wpkhInput], out) });
  // Outputs no subset can pay: none.
  assert.equal(highestFeeRate([coin], out, 100_000n), undefined);
  assert.ok(higherRate({ feeSat: 1_001n, vsize: 100 }, { feeSat: 1_000n, vsize: 100 }) && !higherRate({ feeSat: 1_000n, vsize: 100 }, { feeSat: 2_000n, vsize: 200 }));
});
