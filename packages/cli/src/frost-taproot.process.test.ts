// The 2-of-3 threshold cluster signs Taproot key-path spends (BIP-341) of outputs locked to its group key, through
// `airlock frost sign --psbt`, each node decoding the PSBT and deciding under its own policy. The PSBTs are built
// with bitcoinjs-lib, not our code; the result is checked by bitcoinjs (`validateSignaturesOfInput` with
// libsecp256k1's BIP-340 verify, tiny-secp256k1), finalized and extracted by bitcoinjs, and accepted by the chain
// double (packages/testing/src/bitcoin/chain.ts: no Bitcoin node runs here; it re-hashes with bitcoinjs and
// verifies with libsecp256k1). Then the refusals: a destination the needed nodes' policies refuse, a sighash type
// other than DEFAULT, and a coordinator that tries to reuse one nonce across two inputs.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { randomBytes } from 'node:crypto';
import * as bitcoin from 'bitcoinjs-lib';
import * as ecc from 'tiny-secp256k1';
import { BitcoinTestChain } from '../../testing/src/bitcoin/index.ts';
import { cliEnv, runCli } from './testing/cli-process.ts';
import { frostTestCluster } from './testing/frost-cluster.ts';

bitcoin.initEccLib(ecc);

const dir = mkdtempSync(join(tmpdir(), 'airlock-frost-tr-'));
const env = cliEnv();
const NAMES = ['alice', 'bob', 'carol'] as const;
type Name = (typeof NAMES)[number];
const network = bitcoin.networks.regtest;
const SUPPLIER = bitcoin.payments.p2wpkh({ hash: Buffer.alloc(20, 0x11), network }).address!;
const STRANGER = bitcoin.payments.p2wpkh({ hash: Buffer.alloc(20, 0x22), network }).address!;

// alice: any Bitcoin transaction (stands for a compromised node); bob and carol: the supplier only.
const onlySupplier = `version: 1\nrules:\n  - { name: supplier, type: allow, match: { actions: [bitcoin.psbt], to: [${SUPPLIER}] } }\n`;
const POLICIES: Record<Name, string> = {
  alice: 'version: 1\nrules:\n  - { name: anything, type: allow, match: { actions: [bitcoin.psbt] } }\n',
  bob: onlySupplier,
  carol: onlySupplier,
};

const cluster = frostTestCluster<Name>(dir, env, POLICIES);
const chain = new BitcoinTestChain('regtest');
let groupKey = '';
let groupScript: Buffer;

before(async () => {
  await cluster.init();
  // Each node signs regtest PSBTs only (`--network`; the default is bitcoin, mainnet).
  await Promise.all(NAMES.map((n) => cluster.startNode(n, ['--network', 'regtest'])));
  groupKey = await cluster.generateKey();
  // The group key is the BIP-341 OUTPUT key already (tweaked for an empty script tree at key generation): the
  // P2TR script pays to it as is.
  groupScript = Buffer.concat([Buffer.from([0x51, 0x20]), Buffer.from(groupKey, 'hex')]);
});

after(async () => {
  await cluster.stopAll();
  rmSync(dir, { recursive: true, force: true });
});

/** A PSBT spending `inputs` outputs locked to the group key (funded on the chain double), paying `to`, change back to the group key. */
function groupPsbt(opts: { to: string; amounts?: bigint[]; sendSat?: bigint; sighashType?: number }): bitcoin.Psbt {
  const psbt = new bitcoin.Psbt({ network });
  psbt.setVersion(2);
  const amounts = opts.amounts ?? [60_000n, 40_000n];
  for (const amount of amounts) {
    const utxo = chain.fundOne(groupScript, amount);
    psbt.addInput({ hash: utxo.txid, index: utxo.vout, witnessUtxo: { script: utxo.script, value: utxo.valueSat }, ...(opts.sighashType === undefined ? {} : { sighashType: opts.sighashType }) });
  }
  const send = opts.sendSat ?? 70_000n;
  const total = amounts.reduce((a, b) => a + b, 0n);
  psbt.addOutput({ address: opts.to, value: send });
  psbt.addOutput({ script: groupScript, value: total - send - 1_000n });
  return psbt;
}

async function signPsbt(psbt: bitcoin.Psbt, extra: string[] = []) {
  const file = join(dir, `tx-${randomBytes(4).toString('hex')}.psbt`);
  writeFileSync(file, psbt.toBase64());
  return runCli(['frost', 'sign', '--json', '--cluster', cluster.clusterFile, '--nodes', cluster.writeNodesFile('nodes.json'), '--psbt', file, '--network', 'regtest', ...extra], env);
}

const decisions = async (name: Name) => (await cluster.call(name, '/v1/frost/decisions')).json.decisions as { decision: string; action: string; eventId: string; violations: { rule: string; code: string }[] }[];

test('2-of-3 signs both key-path inputs; bitcoinjs validates, finalizes and extracts; the chain double accepts it', async () => {
  const psbt = groupPsbt({ to: SUPPLIER });
  const r = await signPsbt(psbt);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.deepEqual(out.signers, ['alice', 'bob']);
  assert.deepEqual(out.signedInputs, [0, 1]);
  // bob's policy lists the supplier only: it allowed this PSBT because the output back to the group key is change, not a destination.

  const signed = bitcoin.Psbt.fromBase64(out.psbt, { network });
  const outputKey = Buffer.from(groupKey, 'hex');
  for (const i of [0, 1]) {
    assert.equal(signed.data.inputs[i]!.tapKeySig?.length, 64, 'SIGHASH_DEFAULT: a 64-byte signature');
    // bitcoinjs computes the BIP-341 sighash itself; libsecp256k1 verifies against the output key in the script.
    assert.equal(signed.validateSignaturesOfInput(i, (pubkey, hash, sig) => ecc.verifySchnorr(hash, pubkey, sig), outputKey), true, `input ${i}`);
  }
  // A wrong key does not validate: the check above can fail.
  assert.throws(() => signed.validateSignaturesOfInput(0, (pubkey, hash, sig) => ecc.verifySchnorr(hash, pubkey, sig), Buffer.alloc(32, 2)), /No signatures for this pubkey/);
  signed.finalizeAllInputs();
  const tx = signed.extractTransaction();
  assert.equal(tx.ins[0]!.witness.length, 1);
  const accepted = chain.broadcast(tx.toHex());
  assert.equal(accepted.txid, tx.getId());

  // Each signing node recorded one decision for the whole PSBT (two inputs, one charge); carol was not asked.
  for (const n of ['alice', 'bob'] as const) {
    const last = (await decisions(n)).at(-1)!;
    assert.equal(last.action, 'bitcoin.taproot_key_path');
    assert.equal(last.decision, 'allow');
  }
  assert.equal((await decisions('carol')).length, 0);
});

test('--finalize returns the extracted transaction, which the chain double accepts', async () => {
  const r = await signPsbt(groupPsbt({ to: SUPPLIER, amounts: [90_000n] }), ['--finalize']);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  const tx = bitcoin.Transaction.fromHex(out.transaction);
  assert.equal(tx.getId(), out.txid);
  assert.equal(chain.broadcast(out.transaction).txid, out.txid);
});

test('a destination the needed nodes refuse is not signed: policy_denied with their rules, each decision recorded', async () => {
  const psbt = groupPsbt({ to: STRANGER });
  const r = await signPsbt(psbt);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /policy_denied/);
  assert.match(r.stderr, /bob:agent\/default/);
  assert.match(r.stderr, /carol:agent\/default/);
  for (const n of ['bob', 'carol'] as const) {
    const last = (await decisions(n)).at(-1)!;
    assert.equal(last.decision, 'deny');
    assert.equal(last.action, 'bitcoin.taproot_key_path');
  }
  // alice alone (lax, compromised) allowed it and contributed shares, worth nothing without a second node. Asked
  // again with carol after bob refused, she contributed for the same PSBT as a replay: charged once.
  const alice = (await decisions('alice')).slice(-2);
  assert.deepEqual(alice.map((d) => d.decision), ['allow', 'replay']);
  assert.equal(alice[0]!.eventId, alice[1]!.eventId);
});

test('a sighash type other than DEFAULT is refused, by the coordinator and by a node asked directly', async () => {
  const psbt = groupPsbt({ to: SUPPLIER, sighashType: bitcoin.Transaction.SIGHASH_ALL });
  const r = await signPsbt(psbt);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /psbt_sighash_not_default/);

  // A coordinator that skips its own check: the node decodes the PSBT itself and refuses, recording nothing.
  const before = (await decisions('bob')).length;
  const sessions = [];
  for (const input of [0, 1]) {
    const c = await cluster.call('bob', '/v1/frost/commit', {});
    sessions.push({ input, commitmentId: c.json.commitmentId, commitments: [c.json.commitment, (await cluster.call('carol', '/v1/frost/commit', {})).json.commitment] });
  }
  const request = { action: 'bitcoin.taproot_key_path', psbt: psbt.toBase64(), network: 'regtest' };
  const refused = await cluster.call('bob', '/v1/frost/sign', { sessions, request });
  assert.equal(refused.status, 400);
  assert.equal(refused.json.error.code, 'psbt_sighash_not_default');
  assert.equal((await decisions('bob')).length, before);
  // The nonces named were spent by the refused request all the same.
  const again = await cluster.call('bob', '/v1/frost/sign', { sessions, request: { ...request, psbt: groupPsbt({ to: SUPPLIER }).toBase64() } });
  assert.equal(again.status, 409);
  assert.equal(again.json.error.code, 'frost_commitment_unknown');
});

test('a coordinator cannot reuse one nonce across two inputs, nor leave an input out', async () => {
  const psbt = groupPsbt({ to: SUPPLIER });
  const request = { action: 'bitcoin.taproot_key_path', psbt: psbt.toBase64(), network: 'regtest' };
  const commitBoth = async () => [(await cluster.call('bob', '/v1/frost/commit', {})).json, (await cluster.call('carol', '/v1/frost/commit', {})).json];
  const [bob, carol] = await commitBoth();
  const list = [bob.commitment, carol.commitment];
  const before = (await decisions('bob')).length;
  // The same commitment for inputs 0 and 1: the second take finds it spent.
  const reused = await cluster.call('bob', '/v1/frost/sign', { sessions: [{ input: 0, commitmentId: bob.commitmentId, commitments: list }, { input: 1, commitmentId: bob.commitmentId, commitments: list }], request });
  assert.equal(reused.status, 409);
  assert.equal(reused.json.error.code, 'frost_commitment_unknown');
  // One session for a PSBT with two group-key inputs: refused before policy.
  const [bob2, carol2] = await commitBoth();
  const partial = await cluster.call('bob', '/v1/frost/sign', { sessions: [{ input: 0, commitmentId: bob2.commitmentId, commitments: [bob2.commitment, carol2.commitment] }], request });
  assert.equal(partial.status, 400);
  assert.equal(partial.json.error.code, 'invalid_request');
  assert.equal((await decisions('bob')).length, before);
});

test('an input without its previous output is refused (its amount is unknown and BIP-341 commits to it)', async () => {
  const psbt = groupPsbt({ to: SUPPLIER, amounts: [50_000n], sendSat: 20_000n });
  psbt.addInput({ hash: randomBytes(32), index: 0 });
  const r = await signPsbt(psbt);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /psbt_missing_utxo/);
});

test('a node signs its own network only (--network regtest here): the same PSBT labelled bitcoin is refused, unrecorded', async () => {
  const psbt = groupPsbt({ to: SUPPLIER });
  const before = (await decisions('bob')).length;
  const [b, c] = [(await cluster.call('bob', '/v1/frost/commit', {})).json, (await cluster.call('carol', '/v1/frost/commit', {})).json];
  // (the network is checked before the sessions are matched to the PSBT's inputs: one session is enough here)
  const sessions = [{ input: 0, commitmentId: b.commitmentId, commitments: [b.commitment, c.commitment] }];
  const refused = await cluster.call('bob', '/v1/frost/sign', { sessions, request: { action: 'bitcoin.taproot_key_path', psbt: psbt.toBase64(), network: 'bitcoin' } });
  assert.equal(refused.status, 400);
  assert.equal(refused.json.error.code, 'frost_network_mismatch');
  assert.equal((await decisions('bob')).length, before);
});
