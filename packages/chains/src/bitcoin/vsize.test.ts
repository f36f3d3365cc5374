// The size estimate of other signers' inputs, against transactions btc-signer signs and finalizes for real:
// P2WPKH, P2PKH, P2SH-P2WPKH, 2-of-3 multisig in P2WSH and in P2SH, P2TR key path. Never below the truth,
// and above it only by the bytes a 71-byte DER signature saves over the 72 assumed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { utf8ToBytes } from '@noble/hashes/utils.js';
import { p2ms, p2pkh, p2sh, p2tr, p2wpkh, p2wsh, Transaction } from '@scure/btc-signer';
import { fundingTransaction } from './testing/test-vault.ts';
import { otherInputSize, virtualSize } from './vsize.ts';
import { RawWitness } from '@scure/btc-signer';

const privateKeys = ['a', 'b', 'c'].map((label) => sha256(utf8ToBytes(`vsize/${label}`)));
const [k1, k2, k3] = privateKeys.map((k) => secp256k1.getPublicKey(k, true)) as [Uint8Array, Uint8Array, Uint8Array];

test('estimated vsize of a transaction whose inputs other signers complete: at least the real one, at most 8 vB more', () => {
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
  assert.ok(estimate >= tx.vsize && estimate - tx.vsize <= 8, `estimate ${estimate}, signed ${tx.vsize}`);
  // Once final, an input counts as it is, never above its template; a final P2SH or P2WSH input (its scripts
  // now inside the final fields, not beside them) counts as the floor of its type: the estimate is at most the size.
  const prevout = (i: number) => spends[i]!.script;
  const final = Array.from({ length: tx.inputsLength }, (_, i) => otherInputSize(tx.getInput(i), prevout(i)));
  assert.ok(virtualSize(final, [p2wpkh(k2).script]) <= tx.vsize);
  // A final P2TR input counts as signed while its internal key (kept beside it) proves there is no script tree.
  const withInternalKey = (i: number) => (i === 5 ? { ...tx.getInput(i), tapInternalKey: k3.slice(1) } : tx.getInput(i));
  const simple = [0, 1, 5].map((i) => otherInputSize(withInternalKey(i), prevout(i)));
  assert.deepEqual(simple.map((x) => x.scriptSig * 4 + x.witness), [0, 1, 5].map((i) => { const inp = tx.getInput(i); return (inp.finalScriptSig?.length ?? 0) * 4 + (inp.finalScriptWitness ? RawWitness.encode(inp.finalScriptWitness).length : 0); }), 'P2WPKH, P2PKH and P2TR count as signed');
  // A final witness or scriptSig padded past what its script type needs counts as the template: the co-signer
  // could swap in the small one after the agent signed (and pay a higher fee rate than policy saw).
  const padded = { ...tx.getInput(0), finalScriptWitness: [new Uint8Array(20_000), new Uint8Array(33)] };
  assert.deepEqual(otherInputSize(padded, prevout(0)), otherInputSize({ ...tx.getInput(0), finalScriptWitness: undefined }, prevout(0)));
  const paddedSig = { ...tx.getInput(1), finalScriptSig: new Uint8Array(4_000) };
  assert.equal(otherInputSize(paddedSig, prevout(1)).scriptSig, 1 + 72 + 1 + 33);
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
