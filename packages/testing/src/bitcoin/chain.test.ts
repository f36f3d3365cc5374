// The chain double must be able to say no: transactions signed by bitcoinjs with test keys are accepted, and
// each way a transaction can be wrong (a tampered signature or transaction, a double spend, an amount that
// lies, the wrong key, a BIP-86 key used without its tweak, high-S) is refused with its reason.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as bitcoin from 'bitcoinjs-lib';
import { BitcoinTestChain, BroadcastRejected, type BroadcastRefusal } from './chain.ts';
import { buildPsbt, fundedInput, payTo, signOwnInputs, walletInput, walletOutput } from './psbt-builder.ts';
import { ECPair, TestWallet, xOnly } from './wallet.ts';

const alice = TestWallet.stranger('alice', 'regtest');
const bob = TestWallet.stranger('bob', 'regtest');

function refused(run: () => unknown, reason: BroadcastRefusal, input?: number): void {
  assert.throws(run, (e: unknown) => {
    assert.ok(e instanceof BroadcastRejected, `expected BroadcastRejected, got ${String(e)}`);
    assert.equal(e.reason, reason, e.message);
    if (input !== undefined) assert.equal(e.input, input, e.message);
    return true;
  });
}

/** Alice spends a P2WPKH and a P2TR coin to Bob and her own change, all signed and finalized by bitcoinjs. */
function aliceSpends(chain: BitcoinTestChain, sighashType?: number) {
  const opts = sighashType === undefined ? {} : { sighashType };
  const inputs = [fundedInput(chain, alice.receive('p2wpkh', 0), 60_000n, opts), fundedInput(chain, alice.receive('p2tr', 1), 40_000n, opts)];
  const psbt = buildPsbt(chain, inputs, [payTo(chain, bob.receive('p2tr').address, 70_000n), walletOutput(alice.change('p2wpkh'), 29_000n)]);
  assert.deepEqual(signOwnInputs(psbt, alice, { finalize: true, ...(sighashType === undefined ? {} : { sighashTypes: [sighashType] }) }), [0, 1]);
  return psbt.extractTransaction();
}

test('a transaction signed by bitcoinjs (P2WPKH and P2TR key path) is accepted and moves the UTXO set', () => {
  const chain = new BitcoinTestChain('regtest');
  const tx = aliceSpends(chain);
  const spent = tx.ins.map((i) => ({ txid: Buffer.from(i.hash).reverse().toString('hex'), vout: i.index }));
  const accepted = chain.broadcast(tx.toHex());
  assert.equal(accepted.txid, tx.getId());
  assert.equal(accepted.feeSat, 1_000n);
  for (const s of spent) assert.equal(chain.utxo(s.txid, s.vout), undefined);
  assert.equal(chain.unspentTo(bob.receive('p2tr').address)[0]?.valueSat, 70_000n);
  assert.equal(chain.utxo(tx.getId(), 1)?.valueSat, 29_000n);
});

test('the funding transaction carries a witness: its txid is the hash without it', () => {
  const chain = new BitcoinTestChain('regtest');
  const utxo = chain.fundOne(alice.receive('p2wpkh').script, 1_000n);
  assert.ok(utxo.transaction.hasWitnesses());
  assert.notEqual(utxo.transaction.getHash(true).toString(), utxo.transaction.getHash(false).toString());
  const stripped = utxo.transaction.clone();
  stripped.ins.forEach((i) => (i.witness = []));
  assert.equal(utxo.txid, Buffer.from(bitcoin.crypto.hash256(stripped.toBuffer())).reverse().toString('hex'));
});

test('a signature with one bit flipped is refused (P2WPKH and P2TR)', () => {
  for (const input of [0, 1]) {
    const chain = new BitcoinTestChain('regtest');
    const tx = aliceSpends(chain);
    const sig = tx.ins[input]!.witness[0]!;
    // Inside r (DER: 30 len 02 rlen r…) or the schnorr nonce point: still well formed, no longer valid.
    sig[6]! ^= 0x01;
    refused(() => chain.broadcast(tx.toHex()), 'bad_signature', input);
  }
});

test('a signed transaction whose output is changed afterwards is refused (SIGHASH_ALL covers it)', () => {
  const chain = new BitcoinTestChain('regtest');
  const tx = aliceSpends(chain);
  tx.outs[0]!.value += 500n;
  refused(() => chain.broadcast(tx.toHex()), 'bad_signature', 0);
});

test('a double spend is refused, in a second broadcast and in another transaction', () => {
  const chain = new BitcoinTestChain('regtest');
  const tx = aliceSpends(chain);
  chain.broadcast(tx.toHex());
  refused(() => chain.broadcast(tx.toHex()), 'double_spend', 0);

  const coin = chain.fundOne(alice.receive('p2wpkh', 5).script, 10_000n);
  const spendTo = (to: string) => {
    const psbt = buildPsbt(chain, [walletInput(coin, alice.receive('p2wpkh', 5))], [payTo(chain, to, 9_000n)]);
    signOwnInputs(psbt, alice, { finalize: true });
    return psbt.extractTransaction().toHex();
  };
  chain.broadcast(spendTo(bob.receive('p2wpkh').address));
  refused(() => chain.broadcast(spendTo(bob.receive('p2tr').address)), 'double_spend', 0);
});

test('one outpoint twice in a transaction, and a coin the chain never made, are refused', () => {
  const chain = new BitcoinTestChain('regtest');
  const coin = chain.fundOne(alice.receive('p2wpkh').script, 10_000n);
  const tx = new bitcoin.Transaction();
  tx.addInput(Buffer.from(coin.txid, 'hex').reverse(), 0);
  tx.addInput(Buffer.from(coin.txid, 'hex').reverse(), 0);
  tx.addOutput(bob.receive('p2wpkh').script, 1_000n);
  refused(() => chain.broadcast(tx.toHex()), 'duplicate_input', 1);

  const other = new BitcoinTestChain('regtest');
  const elsewhere = aliceSpends(other);
  refused(() => chain.broadcast(elsewhere.toHex()), 'unknown_utxo', 0);
});

test('amounts that lie: a signature over a false input amount, and outputs above the inputs, are refused', () => {
  const chain = new BitcoinTestChain('regtest');
  const key = alice.receive('p2wpkh', 2);
  const coin = chain.fundOne(key.script, 50_000n);
  // The signer is told the coin is worth 5,000,000 sat (no full previous transaction to contradict it).
  const input = { ...walletInput(coin, key, { withoutPreviousTransaction: true }), witnessUtxo: { script: coin.script, value: 5_000_000n } };
  const psbt = buildPsbt(chain, [input], [payTo(chain, bob.receive('p2wpkh').address, 40_000n)]);
  signOwnInputs(psbt, alice, { finalize: true });
  refused(() => chain.broadcast(psbt.extractTransaction(true).toHex()), 'bad_signature', 0);

  // bitcoinjs will not extract this one, so it is signed by hand (validly: only the amounts are wrong).
  const coin2 = chain.fundOne(key.script, 50_000n);
  const greedy = new bitcoin.Transaction();
  greedy.version = 2;
  greedy.addInput(Buffer.from(coin2.txid, 'hex').reverse(), coin2.vout);
  greedy.addOutput(bob.receive('p2wpkh').script, 50_001n);
  const digest = greedy.hashForWitnessV0(0, bitcoin.payments.p2pkh({ pubkey: key.publicKey }).output!, coin2.valueSat, bitcoin.Transaction.SIGHASH_ALL);
  greedy.setWitness(0, [bitcoin.script.signature.encode(ECPair.fromPrivateKey(key.privateKey!).sign(digest), bitcoin.Transaction.SIGHASH_ALL), key.publicKey]);
  refused(() => chain.broadcast(greedy.toHex()), 'outputs_exceed_inputs');
  greedy.outs[0]!.value = 50_000n;
  greedy.setWitness(0, [bitcoin.script.signature.encode(ECPair.fromPrivateKey(key.privateKey!).sign(greedy.hashForWitnessV0(0, bitcoin.payments.p2pkh({ pubkey: key.publicKey }).output!, coin2.valueSat, bitcoin.Transaction.SIGHASH_ALL)), bitcoin.Transaction.SIGHASH_ALL), key.publicKey]);
  assert.equal(chain.broadcast(greedy.toHex()).feeSat, 0n, 'the same transaction balanced is accepted: the refusal was the amount');
});

test('the wrong key: another key in the witness, a signature by another key, a BIP-86 key without its tweak', () => {
  const chain = new BitcoinTestChain('regtest');
  const tx = aliceSpends(chain);
  const mallory = ECPair.makeRandom();
  // P2WPKH with Mallory's key in the witness: the program names Alice's key hash.
  const swapped = bitcoin.Transaction.fromHex(tx.toHex());
  swapped.ins[0]!.witness[1] = mallory.publicKey;
  refused(() => chain.broadcast(swapped.toHex()), 'bad_witness', 0);

  // P2WPKH with Alice's key in the witness but Mallory's signature over the right sighash.
  const forged = bitcoin.Transaction.fromHex(tx.toHex());
  const coin = chain.utxo(Buffer.from(forged.ins[0]!.hash).reverse().toString('hex'), forged.ins[0]!.index)!;
  const digest = forged.hashForWitnessV0(0, bitcoin.payments.p2pkh({ hash: coin.script.subarray(2) }).output!, coin.valueSat, bitcoin.Transaction.SIGHASH_ALL);
  forged.ins[0]!.witness[0] = bitcoin.script.signature.encode(mallory.sign(digest), bitcoin.Transaction.SIGHASH_ALL);
  refused(() => chain.broadcast(forged.toHex()), 'bad_signature', 0);

  // P2TR signed with the internal key itself: the output commits to the tweaked key (BIP-86), so it fails.
  const untweaked = bitcoin.Transaction.fromHex(tx.toHex());
  const scripts = untweaked.ins.map((i) => chain.utxo(Buffer.from(i.hash).reverse().toString('hex'), i.index)!);
  const sighash = untweaked.hashForWitnessV1(1, scripts.map((u) => u.script), scripts.map((u) => u.valueSat), bitcoin.Transaction.SIGHASH_DEFAULT);
  const internal = alice.receive('p2tr', 1);
  assert.notDeepEqual(xOnly(internal.publicKey), scripts[1]!.script.subarray(2));
  untweaked.ins[1]!.witness = [ECPair.fromPrivateKey(internal.privateKey!).signSchnorr(sighash)];
  refused(() => chain.broadcast(untweaked.toHex()), 'bad_signature', 1);
});

test('a high-S ECDSA signature is refused (standardness), though it is the same signature mathematically', () => {
  const chain = new BitcoinTestChain('regtest');
  const tx = aliceSpends(chain);
  const { signature, hashType } = bitcoin.script.signature.decode(tx.ins[0]!.witness[0]!);
  const n = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
  const s = BigInt(`0x${Buffer.from(signature.subarray(32)).toString('hex')}`);
  const high = Uint8Array.from([...signature.subarray(0, 32), ...Buffer.from((n - s).toString(16).padStart(64, '0'), 'hex')]);
  tx.ins[0]!.witness[0] = bitcoin.script.signature.encode(high, hashType);
  refused(() => chain.broadcast(tx.toHex()), 'bad_signature', 0);
});

test('other sighash types verify as signed: NONE|ANYONECANPAY lets outputs change, ALL does not', () => {
  const chain = new BitcoinTestChain('regtest');
  const loose = aliceSpends(chain, bitcoin.Transaction.SIGHASH_NONE | bitcoin.Transaction.SIGHASH_ANYONECANPAY);
  // Whoever relays it may redirect the change: exactly why Airlock must not sign NONE by default.
  loose.outs[1]!.script = bob.receive('p2wpkh', 9).script;
  assert.equal(chain.broadcast(loose.toHex()).txid, loose.getId());

  const strict = aliceSpends(chain);
  strict.outs[1]!.script = bob.receive('p2wpkh', 9).script;
  refused(() => chain.broadcast(strict.toHex()), 'bad_signature', 0);
});

test('scripts the double cannot check are refused, not waved through', () => {
  const chain = new BitcoinTestChain('regtest');
  const key = ECPair.makeRandom();
  const p2pkh = bitcoin.payments.p2pkh({ pubkey: key.publicKey, network: chain.bitcoinjsNetwork });
  const coin = chain.fundOne(p2pkh.output!, 10_000n);
  const tx = new bitcoin.Transaction();
  tx.addInput(Buffer.from(coin.txid, 'hex').reverse(), 0);
  tx.addOutput(bob.receive('p2wpkh').script, 9_000n);
  refused(() => chain.broadcast(tx.toHex()), 'unsupported_script', 0);
});
