// bitcoin.psbt through the adapter, with PSBTs a wallet builds (btc-signer) for a test vault: what the intent
// says (every output, change, fee, rate), which inputs are signed, what is refused and with which code, and
// every signature checked with bitcoinjs-lib and libsecp256k1 (independent of our code).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BITCOIN_CHAINS, isAirlockError, type DecodedRequest } from '@airlock/core';
import { bytesToHex } from '@noble/hashes/utils.js';
import { base64 } from '@scure/base';
import { HDKey } from '@scure/bip32';
import { Transaction } from '@scure/btc-signer';
import { RawPSBTV0, RawPSBTV2 } from '@scure/btc-signer/psbt.js';
import { addressOf } from './account.ts';
import { createBitcoinAdapter } from './adapter.ts';
import { assertPsbtSignaturesValid, assertTransactionSignaturesValid } from './testing/independent-check.ts';
import { PSBT_OPTIONS } from './psbt-parse.ts';
import { openTestVault, produceSignatures, PsbtBuilder, signRequest, strangerScript, vaultKey, type TestVault } from './testing/test-vault.ts';

const adapter = createBitcoinAdapter();
const REGTEST = BITCOIN_CHAINS.regtest;
const ASSET = `${REGTEST}/slip44:0`;

function decode(vault: TestVault, psbt: string, extra: Record<string, unknown> = {}): DecodedRequest {
  return adapter.decode('bitcoin.psbt', { psbt, network: 'regtest', ...extra }, vault.signer);
}

function assertRefused(run: () => unknown, code: string, what: string): void {
  assert.throws(run, (e: unknown) => isAirlockError(e) && e.code === code, `${what}: expected ${code}`);
}

/** Rewrites the PSBT at the byte level (what a hostile coordinator can send; btc-signer's builder would refuse). */
function tamper(psbt: string, edit: (raw: ReturnType<typeof RawPSBTV0.decode>) => void): string {
  const raw = RawPSBTV0.decode(base64.decode(psbt));
  edit(raw);
  return base64.encode(RawPSBTV0.encode(raw));
}

const prevoutsOf = (psbt: string) => {
  const tx = Transaction.fromPSBT(base64.decode(psbt), PSBT_OPTIONS);
  return Array.from({ length: tx.inputsLength }, (_, i) => {
    const input = tx.getInput(i);
    return input.nonWitnessUtxo ? input.nonWitnessUtxo.outputs[input.index!]! : input.witnessUtxo!;
  });
};

test('adapter shape: namespace, actions, the four account paths, the agent named by its BIP-84 account key', async () => {
  assert.equal(adapter.namespace, 'bitcoin');
  assert.deepEqual(adapter.actions, ['bitcoin.psbt', 'bitcoin.message']);
  assert.deepEqual(adapter.signerKeyPaths!(3), ["m/84'/0'/3'", "m/84'/1'/3'", "m/86'/0'/3'", "m/86'/1'/3'"]);
  assert.equal(adapter.derivationPath(3, 9), "m/84'/0'/3'");
  const vault = await openTestVault();
  const key = vault.signer.extendedKeys!["m/84'/0'/3'"]!.publicKey;
  assert.equal(adapter.addressFromPublicKey(key), bytesToHex(key));
  assertRefused(() => adapter.addressFromPublicKey(key.slice(1)), 'invalid_request', 'an x-only key');
  assertRefused(() => adapter.signerKeyPaths!(2 ** 31), 'invalid_request', 'a hardened account index');
});

test('P2WPKH and P2TR inputs of the agent: intent figures, change proven, signatures valid, finalized transaction valid', async () => {
  const vault = await openTestVault();
  const b = new PsbtBuilder(vault);
  b.addOwnInput('p2wpkh', { amount: 100_000n });
  b.addOwnInput('p2tr', { amount: 50_000n, index: 2, sequence: 0xfffffffd, nonWitness: true });
  const shop = strangerScript('shop');
  b.pay(shop, 120_000n);
  b.addClaimedOutput('p2tr', 28_000n, { index: 1 });
  const psbt = b.base64();
  const { decoded, result } = await signRequest(vault, 'bitcoin.psbt', { psbt, network: 'regtest' });
  const { intent } = decoded;
  const shopAddress = addressOf(shop, 'regtest')!;
  assert.equal(intent.kind, 'bitcoin.transaction');
  assert.equal(intent.chain, REGTEST);
  assert.equal(intent.from, `[${vault.fingerprint.toString(16).padStart(8, '0')}/84'/1'/3']`);
  assert.equal(intent.to, shopAddress);
  assert.deepEqual(intent.spends, [
    { asset: ASSET, amount: 120_000_000n, decimals: 11, to: shopAddress, kind: 'transfer' },
    { asset: ASSET, amount: 2_000_000n, decimals: 11, kind: 'fee' },
  ]);
  const info = intent.bitcoin!;
  assert.equal(info.feeSat, 2000n);
  assert.equal(info.rbf, true);
  assert.deepEqual(info.sighashes, ['all', 'default']);
  assert.deepEqual(info.inputs.map((i) => [i.ours, i.path, i.scriptType, i.sighash]), [
    [true, "m/84'/1'/3'/0/0", 'p2wpkh', 'all'],
    [true, "m/86'/1'/3'/0/2", 'p2tr', 'default'],
  ]);
  assert.deepEqual(info.outputs.map((o) => [o.change, o.path, o.address]), [
    [false, undefined, shopAddress],
    [true, "m/86'/1'/3'/1/1", addressOf(vaultKey(vault, 'p2tr', 'regtest', 1, 1).script, 'regtest')],
  ]);
  assert.equal(info.feeRate, Math.ceil((2000 * 1000) / info.vsize) / 1000);
  assert.match(intent.summary, /^send 0\.0012 BTC to bcrt1q.*, fee 2000 sat \(\d+\.\d{3} sat\/vB\) on regtest$/);
  assert.deepEqual(decoded.tasks!.map((t) => [t.path, t.scheme]), [
    ["m/84'/1'/3'/0/0", 'ecdsa-secp256k1'],
    ["m/86'/1'/3'/0/2", 'taproot-key-path'],
  ]);
  assert.deepEqual(result.signedInputs, [0, 1]);
  assert.equal(result.transaction, undefined);
  assertPsbtSignaturesValid(result.psbt!, [0, 1]);

  const final = await signRequest(vault, 'bitcoin.psbt', { psbt, network: 'regtest', finalize: true });
  const tx = assertTransactionSignaturesValid(final.result.transaction!, prevoutsOf(psbt), [0, 1]);
  assert.equal(tx.getId(), final.result.txid);
  assert.equal(final.result.txid, info.txid, 'an all-segwit transaction keeps its unsigned txid');
  // The estimate is what the signed transaction weighs, or a little more (a DER signature may be 71 bytes, not 72).
  assert.ok(info.vsize >= tx.virtualSize() && info.vsize - tx.virtualSize() <= 1, `vsize estimate ${info.vsize}, actual ${tx.virtualSize()}`);
});

test('several inputs, some not the agent\'s: only the agent\'s are signed; finalize needs the others final', async () => {
  const vault = await openTestVault();
  const b = new PsbtBuilder(vault);
  b.addStrangerInput(40_000n, false, 'a');
  b.addOwnInput('p2wpkh', { amount: 70_000n, index: 4 });
  b.addOwnInput('p2wpkh', { amount: 30_000n, index: 1, account: 4 }); // another agent of the same vault
  b.addOwnInput('p2tr', { amount: 20_000n, index: 0, nonWitness: true });
  b.pay(strangerScript('shop'), 150_000n);
  const psbt = b.base64();
  const { decoded, result } = await signRequest(vault, 'bitcoin.psbt', { psbt, network: 'regtest' });
  assert.deepEqual(decoded.intent.bitcoin!.inputs.map((i) => i.ours), [false, true, false, true]);
  assert.deepEqual(result.signedInputs, [1, 3]);
  assertPsbtSignaturesValid(result.psbt!, [1, 3]);
  const signed = Transaction.fromPSBT(base64.decode(result.psbt!), PSBT_OPTIONS);
  assert.equal(signed.getInput(2).partialSig, undefined, "the other agent's input is never signed");
  assert.equal(signed.getInput(0).partialSig, undefined);
  assertRefused(() => decode(vault, psbt, { finalize: true }), 'invalid_request', 'finalize with a stranger input not final');

  // The strangers sign and finalize their inputs; now the agent's signatures complete the transaction.
  const c = new PsbtBuilder(vault);
  c.addOwnInput('p2tr', { amount: 70_000n, index: 5 });
  c.addStrangerInput(40_000n, true, 'a');
  c.pay(strangerScript('shop'), 100_000n);
  const done = await signRequest(vault, 'bitcoin.psbt', { psbt: c.base64(), network: 'regtest', finalize: true });
  assert.deepEqual(done.result.signedInputs, [0]);
  assertTransactionSignaturesValid(done.result.transaction!, prevoutsOf(c.base64()), [0]);
  // The stranger's final witness counts at most as it is: as the template, with the 60-byte signature its
  // signer could swap in (k = 1/2) after the agent signed, 11 or 12 weight units below its own.
  const [estimated, real] = [done.decoded.intent.bitcoin!.vsize, bitcoinVsize(done.result.transaction!)];
  assert.ok(estimated <= real && real - estimated <= 3, `estimated ${estimated} vB, signed ${real} vB`);
});

function bitcoinVsize(hex: string): number {
  return Transaction.fromRaw(Uint8Array.from(Buffer.from(hex, 'hex')), { allowUnknownOutputs: true }).vsize;
}

test('only inputs of another agent of the vault, or none of the vault: nothing to sign', async () => {
  const vault = await openTestVault();
  const other = new PsbtBuilder(vault);
  other.addOwnInput('p2wpkh', { amount: 70_000n, account: 4 });
  other.pay(strangerScript('shop'), 60_000n);
  assertRefused(() => decode(vault, other.base64()), 'psbt_nothing_to_sign', "another agent's input");
  const none = new PsbtBuilder(vault);
  none.addStrangerInput(70_000n);
  none.pay(strangerScript('shop'), 60_000n);
  assertRefused(() => decode(vault, none.base64()), 'psbt_nothing_to_sign', 'no input of the vault');
});

test('change is only what derivation proves: look-alike outputs are spends with their addresses', async () => {
  const vault = await openTestVault();
  const b = new PsbtBuilder(vault);
  b.addOwnInput('p2wpkh', { amount: 1_000_000n });
  const attacker = strangerScript('attacker');
  b.addClaimedOutput('p2wpkh', 100_000n, { index: 0 }); // 0: real change m/84'/1'/3'/1/0
  b.addClaimedOutput('p2wpkh', 110_000n, { change: 0, index: 0 }); // 1: the agent's receive address, with its derivation
  b.addClaimedOutput('p2wpkh', 120_000n, { index: 5, script: attacker }); // 2: a change claim over the attacker's script
  b.addClaimedOutput('p2wpkh', 130_000n, { index: 0, account: 4 }); // 3: change of another agent of the vault
  b.addClaimedOutput('p2tr', 140_000n, { index: 2, claimKey: vaultKey(vault, 'p2tr', 'regtest', 1, 3).xOnly }); // 4: a key that is not the path's
  b.pay(vaultKey(vault, 'p2wpkh', 'regtest', 1, 7).script, 150_000n); // 5: the agent's change script without a derivation
  b.addClaimedOutput('p2tr', 160_000n, { index: 9 }); // 6: real taproot change
  const { intent } = decode(vault, b.base64());
  assert.deepEqual(intent.bitcoin!.outputs.map((o) => o.change), [true, false, false, false, false, false, true]);
  const transfers = intent.spends.filter((s) => s.kind === 'transfer');
  assert.deepEqual(transfers.map((s) => s.amount), [110_000_000n, 120_000_000n, 130_000_000n, 140_000_000n, 150_000_000n]);
  assert.equal(transfers[1]!.to, addressOf(attacker, 'regtest'));
  assert.equal(intent.to, undefined, 'several destinations');
  assert.match(intent.summary, /and 4 more/);
});

test('a stranger output hidden among many change outputs is a spend', async () => {
  const vault = await openTestVault();
  const b = new PsbtBuilder(vault);
  b.addOwnInput('p2tr', { amount: 2_200_000n });
  for (let i = 0; i < 6; i++) b.addClaimedOutput('p2tr', 100_000n, { index: i });
  const thief = strangerScript('thief');
  b.pay(thief, 900_000n);
  for (let i = 6; i < 12; i++) b.addClaimedOutput('p2wpkh', 100_000n, { index: i });
  const { intent } = decode(vault, b.base64());
  const transfers = intent.spends.filter((s) => s.kind === 'transfer');
  assert.deepEqual(transfers, [{ asset: ASSET, amount: 900_000_000n, decimals: 11, to: addressOf(thief, 'regtest'), kind: 'transfer' }]);
  assert.equal(intent.to, addressOf(thief, 'regtest'));
  assert.equal(intent.bitcoin!.feeSat, 100_000n);
});

test('a fee that is most of the input is decoded as it is (policy judges it)', async () => {
  const vault = await openTestVault();
  const b = new PsbtBuilder(vault);
  b.addOwnInput('p2wpkh', { amount: 1_000_000n });
  b.pay(strangerScript('shop'), 10_000n);
  const { intent } = decode(vault, b.base64());
  assert.equal(intent.bitcoin!.feeSat, 990_000n);
  assert.deepEqual(intent.spends.at(-1), { asset: ASSET, amount: 990_000_000n, decimals: 11, kind: 'fee' });
  assert.ok(intent.bitcoin!.feeRate > 8000, `fee rate ${intent.bitcoin!.feeRate}`);
});

test('previous outputs: missing, or a P2WPKH input of the agent without its previous transaction, refused', async () => {
  const vault = await openTestVault();
  const none = new PsbtBuilder(vault);
  none.addOwnInput('p2tr', { amount: 50_000n });
  none.pay(strangerScript('shop'), 40_000n);
  const noUtxo = tamper(none.base64(), (raw) => {
    delete raw.inputs[0]!.witnessUtxo;
  });
  assertRefused(() => decode(vault, noUtxo), 'psbt_missing_utxo', 'no UTXO at all');

  const v0 = new PsbtBuilder(vault);
  v0.addOwnInput('p2wpkh', { amount: 50_000n, nonWitness: false });
  v0.pay(strangerScript('shop'), 40_000n);
  assertRefused(() => decode(vault, v0.base64()), 'psbt_missing_utxo', 'segwit v0 input of the agent with a witness UTXO only');

  // Taproot commits to every amount: a witness UTXO is enough.
  const tr = new PsbtBuilder(vault);
  tr.addOwnInput('p2tr', { amount: 50_000n, nonWitness: false });
  tr.pay(strangerScript('shop'), 40_000n);
  assert.equal(decode(vault, tr.base64()).tasks!.length, 1);
});

test("previous transactions for every input, whenever one of the agent's signatures does not commit to every amount: P2WPKH, or ANYONECANPAY", async () => {
  const vault = await openTestVault();
  const shop = strangerScript('shop');
  // The agent's P2WPKH beside a stranger's input with its witness UTXO only: the stranger's amount is a claim.
  const v0 = new PsbtBuilder(vault);
  v0.addOwnInput('p2wpkh', { amount: 50_000n });
  v0.addStrangerInput(40_000n, false, 'a', { withoutPreviousTransaction: true });
  v0.pay(shop, 85_000n);
  assertRefused(() => decode(vault, v0.base64()), 'psbt_previous_tx_required', 'a stranger input without its previous transaction beside P2WPKH');
  // Beside the agent's P2WPKH, its own P2TR input too: the P2WPKH signature does not commit to that amount either.
  const mixed = new PsbtBuilder(vault);
  mixed.addOwnInput('p2wpkh', { amount: 50_000n });
  mixed.addOwnInput('p2tr', { amount: 40_000n });
  mixed.pay(shop, 85_000n);
  assertRefused(() => decode(vault, mixed.base64()), 'psbt_previous_tx_required', 'the P2TR input beside P2WPKH');
  // Taproot without ANYONECANPAY commits to every amount and script: witness UTXOs are enough.
  const tr = new PsbtBuilder(vault);
  tr.addOwnInput('p2tr', { amount: 50_000n });
  tr.addStrangerInput(40_000n, false, 'a', { withoutPreviousTransaction: true });
  tr.pay(shop, 85_000n);
  assert.equal(decode(vault, tr.base64()).intent.bitcoin!.feeSat, 5_000n);
  // ANYONECANPAY commits to its own input only: every input needs its previous transaction, the agent's included.
  for (const sighashType of [0x81, 0x82, 0x83]) {
    const acp = new PsbtBuilder(vault);
    acp.addOwnInput('p2tr', { amount: 50_000n, sighashType });
    acp.addStrangerInput(40_000n, false, 'a');
    acp.pay(shop, 85_000n);
    assertRefused(() => decode(vault, acp.base64()), 'psbt_previous_tx_required', `taproot 0x${sighashType.toString(16)} without its own previous transaction`);
    const proven = new PsbtBuilder(vault);
    proven.addOwnInput('p2tr', { amount: 50_000n, sighashType, nonWitness: true });
    proven.addStrangerInput(40_000n, false, 'a');
    proven.pay(shop, 85_000n);
    assert.equal(decode(vault, proven.base64()).intent.bitcoin!.feeSat, 5_000n);
  }
});

test('under ALL|ANYONECANPAY no output counts as change (several such signatures could each count it); under SINGLE|ANYONECANPAY, the paired one does', async () => {
  const vault = await openTestVault();
  const shop = strangerScript('shop');
  const change = (sighashType: number) => {
    const b = new PsbtBuilder(vault);
    b.addOwnInput('p2tr', { amount: 100_000n, sighashType, nonWitness: true });
    b.addClaimedOutput('p2tr', 60_000n, { index: 1 });
    b.pay(shop, 39_000n);
    return decode(vault, b.base64()).intent;
  };
  assert.deepEqual(change(0x01).bitcoin!.outputs.map((o) => o.change), [true, false]);
  const acp = change(0x81);
  assert.deepEqual(acp.bitcoin!.outputs.map((o) => o.change), [false, false]);
  assert.equal(acp.spends.reduce((sum, s) => sum + s.amount, 0n), 100_000_000n, 'the whole input is charged');
  assert.deepEqual(change(0x83).bitcoin!.outputs.map((o) => o.change), [true, false]);
});

test('a transaction of version 0 or above 3 (BIP-322 signs version 0), or an input of the agent worth 0 sat, is refused', async () => {
  const vault = await openTestVault();
  const withVersion = (version: number, amount = 50_000n) => {
    const b = new PsbtBuilder(vault);
    b.addOwnInput('p2tr', { amount });
    b.pay(strangerScript('shop'), amount === 0n ? 0n : 40_000n);
    return tamper(b.base64(), (raw) => {
      raw.global.unsignedTx!.version = version;
    });
  };
  for (const version of [0, 4, -1]) assertRefused(() => decode(vault, withVersion(version)), 'psbt_tx_version_unsupported', `version ${version}`);
  for (const version of [1, 2, 3]) assert.equal(decode(vault, withVersion(version)).tasks!.length, 1, `version ${version}`);
  assertRefused(() => decode(vault, withVersion(2, 0n)), 'psbt_zero_value_input', 'an input of the agent worth 0 sat');
});

test('a lying amount: the witness UTXO disagrees with the previous transaction, or the transaction is another one', async () => {
  const vault = await openTestVault();
  const b = new PsbtBuilder(vault);
  b.addOwnInput('p2wpkh', { amount: 100_000n });
  b.pay(strangerScript('shop'), 90_000n);
  const psbt = b.base64();
  const lowered = tamper(psbt, (raw) => {
    raw.inputs[0]!.witnessUtxo!.amount = 1_000_000n;
  });
  assertRefused(() => decode(vault, lowered), 'psbt_utxo_mismatch', 'witness UTXO amount differs');
  const otherTx = tamper(psbt, (raw) => {
    raw.inputs[0]!.nonWitnessUtxo!.outputs[1]!.amount = 1_000_000n;
    raw.inputs[0]!.witnessUtxo!.amount = 1_000_000n;
  });
  assertRefused(() => decode(vault, otherTx), 'psbt_utxo_mismatch', 'previous transaction not the outpoint one');
  const badVout = tamper(psbt, (raw) => {
    raw.global.unsignedTx!.inputs[0]!.index = 7;
  });
  assertRefused(() => decode(vault, badVout), 'psbt_utxo_mismatch', 'vout out of range');
});

test('derivation claims the keys do not bear out: input mismatch; wrapped and script-path keys: unsupported', async () => {
  const vault = await openTestVault();
  const build = (o: Parameters<PsbtBuilder['addOwnInput']>[1], type: 'p2wpkh' | 'p2tr' = 'p2wpkh') => {
    const b = new PsbtBuilder(vault);
    b.addOwnInput(type, o);
    b.pay(strangerScript('shop'), 40_000n);
    return b.base64();
  };
  const otherKey = vaultKey(vault, 'p2wpkh', 'regtest', 0, 1);
  assertRefused(() => decode(vault, build({ amount: 50_000n, claimKey: otherKey.publicKey })), 'psbt_input_mismatch', 'listed key differs from the derived one');
  assertRefused(() => decode(vault, build({ amount: 50_000n, script: otherKey.script })), 'psbt_input_mismatch', 'spent script differs from the derived one');
  assertRefused(() => decode(vault, build({ amount: 50_000n, script: strangerScript('x') }, 'p2tr')), 'psbt_input_mismatch', 'taproot claim over a stranger script');

  const leaf = build({ amount: 50_000n }, 'p2tr');
  const withLeaf = tamper(leaf, (raw) => {
    raw.inputs[0]!.tapBip32Derivation![0]![1].hashes = [new Uint8Array(32).fill(7)];
  });
  assertRefused(() => decode(vault, withLeaf), 'psbt_unsupported_input', 'key used in a script path');

  const { p2sh, p2wpkh } = await import('@scure/btc-signer');
  const key = vaultKey(vault, 'p2wpkh', 'regtest', 0, 0);
  const wrapped = p2sh(p2wpkh(key.publicKey));
  const b = new PsbtBuilder(vault);
  b.addOwnInput('p2wpkh', { amount: 50_000n, script: wrapped.script });
  b.pay(strangerScript('shop'), 40_000n);
  const withRedeem = tamper(b.base64(), (raw) => {
    raw.inputs[0]!.redeemScript = wrapped.redeemScript;
  });
  assertRefused(() => decode(vault, withRedeem), 'psbt_unsupported_input', 'P2SH-wrapped P2WPKH of the agent');
});

test('SIGHASH_SINGLE with no output at its index is refused; other sighash types are named', async () => {
  const vault = await openTestVault();
  const b = new PsbtBuilder(vault);
  b.addOwnInput('p2tr', { amount: 50_000n });
  b.addOwnInput('p2wpkh', { amount: 50_000n, index: 1, sighashType: 0x83 });
  b.pay(strangerScript('shop'), 90_000n);
  assertRefused(() => decode(vault, b.base64()), 'psbt_sighash_single_without_output', 'SINGLE|ANYONECANPAY at input 1 with one output');

  const ok = new PsbtBuilder(vault);
  ok.addOwnInput('p2tr', { amount: 50_000n, sighashType: 0x03, nonWitness: true });
  ok.addOwnInput('p2wpkh', { amount: 50_000n, index: 1, sighashType: 0x82 });
  ok.pay(strangerScript('shop'), 90_000n);
  const { decoded, result } = await signRequest(vault, 'bitcoin.psbt', { psbt: ok.base64(), network: 'regtest' });
  assert.deepEqual(decoded.intent.bitcoin!.sighashes, ['single', 'none_anyonecanpay']);
  assertPsbtSignaturesValid(result.psbt!, [0, 1]);
  const signed = Transaction.fromPSBT(base64.decode(result.psbt!), PSBT_OPTIONS);
  assert.equal(signed.getInput(0).tapKeySig!.length, 65, 'a non-default taproot sighash carries its byte');

  for (const [type, sighashType] of [['p2tr', 0x04], ['p2wpkh', 0x00], ['p2tr', 0x80]] as const) {
    const bad = new PsbtBuilder(vault);
    bad.addOwnInput(type, { amount: 50_000n, sighashType });
    bad.pay(strangerScript('shop'), 40_000n);
    assertRefused(() => decode(vault, bad.base64()), 'psbt_malformed', `${type} with sighash ${sighashType}`);
  }
});

test('amounts out of range: outputs above inputs, a value beyond 21 million bitcoin', async () => {
  const vault = await openTestVault();
  const b = new PsbtBuilder(vault);
  b.addOwnInput('p2tr', { amount: 50_000n, nonWitness: false });
  b.pay(strangerScript('shop'), 50_001n);
  assertRefused(() => decode(vault, b.base64()), 'psbt_value_out_of_range', 'negative fee');
  const big = new PsbtBuilder(vault);
  big.addOwnInput('p2tr', { amount: 2_100_000_000_000_001n, nonWitness: false });
  big.pay(strangerScript('shop'), 1n);
  assertRefused(() => decode(vault, big.base64()), 'psbt_value_out_of_range', 'input above MAX_MONEY');
  const sum = new PsbtBuilder(vault);
  sum.addOwnInput('p2tr', { amount: 2_000_000_000_000_000n, nonWitness: false });
  sum.addOwnInput('p2tr', { amount: 2_000_000_000_000_000n, nonWitness: false, index: 1 });
  sum.pay(strangerScript('shop'), 1n);
  assertRefused(() => decode(vault, sum.base64()), 'psbt_value_out_of_range', 'inputs adding up beyond MAX_MONEY');
});

test('a PSBT for another network: the vault\'s keys on the other coin type, or a mainnet xpub on regtest', async () => {
  const vault = await openTestVault();
  const b = new PsbtBuilder(vault, 'bitcoin');
  b.addOwnInput('p2wpkh', { amount: 50_000n });
  b.pay(strangerScript('shop'), 40_000n);
  assertRefused(() => decode(vault, b.base64()), 'psbt_network_mismatch', 'mainnet derivation on regtest');
  assert.equal(adapter.decode('bitcoin.psbt', { psbt: b.base64(), network: 'bitcoin' }, vault.signer).intent.chain, BITCOIN_CHAINS.bitcoin);

  const c = new PsbtBuilder(vault);
  c.addOwnInput('p2tr', { amount: 50_000n });
  c.addClaimedOutput('p2tr', 40_000n, { coin: 0 });
  assertRefused(() => decode(vault, c.base64()), 'psbt_network_mismatch', 'mainnet change claim on regtest');

  const d = new PsbtBuilder(vault);
  d.addOwnInput('p2tr', { amount: 50_000n });
  d.pay(strangerScript('shop'), 40_000n);
  const mainnetAccount = HDKey.fromMasterSeed(new Uint8Array(32).fill(1)).derive("m/84'/0'/0'");
  const withXpub = tamper(d.base64(), (raw) => {
    raw.global.xpub = [[
      { version: 0x0488b21e, depth: 3, parentFingerprint: mainnetAccount.parentFingerprint, childNumber: mainnetAccount.index, chainCode: Uint8Array.from(mainnetAccount.chainCode!), publicKey: Uint8Array.from(mainnetAccount.publicKey!) },
      { fingerprint: 0x01020304, path: [84 + 2 ** 31, 2 ** 31, 2 ** 31] },
    ]];
  });
  assertRefused(() => decode(vault, withXpub), 'psbt_network_mismatch', 'PSBT_GLOBAL_XPUB with xpub version bytes');
});

test('refused: not base64, not a PSBT, a key off the curve, an output spent twice, the agent\'s input already final, no outputs', async () => {
  const vault = await openTestVault();
  assertRefused(() => decode(vault, 'not base64!'), 'psbt_malformed', 'not base64');
  assertRefused(() => decode(vault, base64.encode(new TextEncoder().encode('psbt\xff garbage'))), 'psbt_malformed', 'garbage');
  assertRefused(() => adapter.decode('bitcoin.psbt', { psbt: 1, network: 'regtest' }, vault.signer), 'invalid_request', 'psbt not a string');
  assertRefused(() => adapter.decode('bitcoin.psbt', { psbt: 'cHNidP8=', network: 'litecoin' }, vault.signer), 'invalid_request', 'unknown network');
  const b = new PsbtBuilder(vault);
  b.addOwnInput('p2wpkh', { amount: 50_000n });
  b.pay(strangerScript('shop'), 40_000n);
  // A partial signature under a key that is not a curve point (the bytes rewritten after encoding).
  const stray = vaultKey(vault, 'p2wpkh', 'regtest', 0, 9).publicKey;
  const withSig = tamper(b.base64(), (raw) => (raw.inputs[0]!.partialSig = [[Uint8Array.from(stray), new Uint8Array(3)]]));
  const badKey = base64.encode(Buffer.from(Buffer.from(base64.decode(withSig)).toString('hex').replace(bytesToHex(stray), '09'.repeat(33)), 'hex'));
  assertRefused(() => decode(vault, badKey), 'psbt_malformed', 'a partial signature key off the curve');
  const twice = tamper(b.base64(), (raw) => {
    raw.global.unsignedTx!.inputs.push({ ...raw.global.unsignedTx!.inputs[0]! });
    raw.inputs.push({ ...raw.inputs[0]! });
  });
  assertRefused(() => decode(vault, twice), 'psbt_malformed', 'one output spent by two inputs');
  const final = tamper(b.base64(), (raw) => (raw.inputs[0]!.finalScriptWitness = [new Uint8Array(72), new Uint8Array(33)]));
  assertRefused(() => decode(vault, final), 'invalid_request', "the agent's input already final");
  const noOutputs = tamper(b.base64(), (raw) => {
    raw.global.unsignedTx!.outputs = [];
    raw.outputs = [];
  });
  assertRefused(() => decode(vault, noOutputs), 'invalid_request', 'no outputs');
});

test('PSBT v2 (BIP-370): decoded, signed and returned as v2', async () => {
  const vault = await openTestVault();
  const b = new PsbtBuilder(vault, 'regtest', 2, 850_000);
  b.addOwnInput('p2wpkh', { amount: 80_000n });
  b.addOwnInput('p2tr', { amount: 20_000n, index: 1, nonWitness: true });
  b.pay(strangerScript('shop'), 60_000n);
  b.addClaimedOutput('p2wpkh', 39_000n, { index: 3 });
  const psbt = b.base64();
  const { decoded, result } = await signRequest(vault, 'bitcoin.psbt', { psbt, network: 'regtest' });
  assert.equal(decoded.intent.bitcoin!.psbtVersion, 2);
  assert.equal(decoded.intent.bitcoin!.locktime, 850_000);
  assert.deepEqual(decoded.intent.bitcoin!.outputs.map((o) => o.change), [false, true]);
  const signed = Transaction.fromPSBT(base64.decode(result.psbt!), PSBT_OPTIONS);
  assert.equal(RawPSBTV2.decode(base64.decode(result.psbt!)).global.version, 2, 'returned as PSBT v2');
  // bitcoinjs reads v0 only: the same transaction re-serialised as v0 carries the signatures we made.
  assertPsbtSignaturesValid(base64.encode(signed.toPSBT(0)), [0, 1]);
  const final = await signRequest(vault, 'bitcoin.psbt', { psbt, network: 'regtest', finalize: true });
  assertTransactionSignaturesValid(final.result.transaction!, prevoutsOf(psbt), [0, 1]);
});

test('the request digest commits to the tasks: the same PSBT gives the same digest and the same signatures', async () => {
  const vault = await openTestVault();
  const b = new PsbtBuilder(vault);
  b.addOwnInput('p2wpkh', { amount: 80_000n });
  b.addOwnInput('p2tr', { amount: 20_000n, index: 1, nonWitness: true });
  b.pay(strangerScript('shop'), 90_000n);
  const psbt = b.base64();
  const first = await signRequest(vault, 'bitcoin.psbt', { psbt, network: 'regtest' });
  const again = await signRequest(vault, 'bitcoin.psbt', { psbt, network: 'regtest' });
  assert.deepEqual(first.decoded.digest, again.decoded.digest);
  assert.equal(first.result.psbt, again.result.psbt, 'a replay releases byte-identical signatures');
  b.tx.updateOutput(0, { amount: 89_000n });
  assert.notDeepEqual(decode(vault, b.base64()).digest, first.decoded.digest);
});

test('finalize refuses signatures that do not verify: wrong digest, swapped tasks, wrong scheme', async () => {
  const vault = await openTestVault();
  const b = new PsbtBuilder(vault);
  b.addOwnInput('p2wpkh', { amount: 80_000n });
  b.addOwnInput('p2tr', { amount: 20_000n, index: 1, nonWitness: true });
  b.pay(strangerScript('shop'), 90_000n);
  const decoded = decode(vault, b.base64());
  const good = await produceSignatures(vault.backend, decoded);
  const other = await vault.backend.signDigest(decoded.tasks![0]!.path, new Uint8Array(32).fill(1), 'ecdsa-secp256k1');
  assertRefused(() => adapter.finalize('bitcoin.psbt', decoded, other, vault.signer, [other, good[1]!]), 'signature_check_failed', 'ECDSA over another digest');
  assertRefused(() => adapter.finalize('bitcoin.psbt', decoded, good[1]!, vault.signer, [good[1]!, good[0]!]), 'signature_check_failed', 'swapped');
  const untweaked = { schnorr: await vault.backend.signSchnorr(decoded.tasks![1]!.path, decoded.tasks![1]!.digest) };
  assertRefused(() => adapter.finalize('bitcoin.psbt', decoded, good[0]!, vault.signer, [good[0]!, untweaked]), 'signature_check_failed', 'BIP-340 with the untweaked key');
  assertRefused(() => adapter.finalize('bitcoin.psbt', decoded, good[0]!, vault.signer, [good[0]!]), 'signature_check_failed', 'one signature short');
});
