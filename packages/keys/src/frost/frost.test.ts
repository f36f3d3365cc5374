// The threshold key end to end in one process: a 2-of-3 DKG among three participants whose every message goes
// through a relay that could be hostile, then signing by every pair. Signatures are checked by libsecp256k1
// (tiny-secp256k1, WebAssembly build of bitcoin-core/secp256k1), not by the code that made them. The refusals:
// an altered, foreign or badly proven DKG message, a wrong share, disagreeing confirmations, a reused nonce,
// a bad signature share (named).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { schnorr } from '@noble/curves/secp256k1.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, hexToBytes, randomBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import * as ecc from 'tiny-secp256k1';
import { AirlockError } from '@airlock/core';
import { parseCluster, type ClusterDefinition } from './cluster.ts';
import { confirmDkg, DkgParticipant, identityPublicKey, signMessage, type DkgResult, type Round1Message, type Round2Message } from './dkg.ts';
import { aggregateSignature, FrostSigner, type CommitmentJson } from './signing.ts';
import { groupXOnlyKey } from './key-package.ts';

const NAMES = ['alice', 'bob', 'carol'] as const;

function setup(threshold = 2): { cluster: ClusterDefinition; secrets: Map<string, Uint8Array>; ceremony: string } {
  const secrets = new Map(NAMES.map((n) => [n as string, schnorr.utils.randomSecretKey()]));
  const cluster = parseCluster({ threshold, nodes: NAMES.map((name, i) => ({ name, identifier: i + 1, identityKey: identityPublicKey(secrets.get(name)!) })) });
  return { cluster, secrets, ceremony: bytesToHex(randomBytes(16)) };
}

function runDkg(threshold = 2): { cluster: ClusterDefinition; results: Map<string, DkgResult> } {
  const { cluster, secrets, ceremony } = setup(threshold);
  const parts = new Map(NAMES.map((n) => [n as string, new DkgParticipant(cluster, n, secrets.get(n)!, ceremony)]));
  const round1 = [...parts.values()].map((p) => p.round1());
  const round2 = [...parts.values()].flatMap((p) => p.round2(round1));
  const results = new Map([...parts].map(([n, p]) => [n, p.round3(round2)]));
  const confirmations = [...parts].map(([n, p]) => p.confirmation(results.get(n)!));
  for (const [, r] of results) confirmDkg(cluster, ceremony, r, confirmations);
  return { cluster, results };
}

function refusedWith(code: string, node?: string) {
  return (e: unknown) => {
    assert.ok(e instanceof AirlockError, String(e));
    assert.equal(e.code, code, e.message);
    if (node !== undefined) assert.equal(e.details?.node, node, e.message);
    return true;
  };
}

function signWith(results: Map<string, DkgResult>, cluster: ClusterDefinition, names: string[], message: Uint8Array, corrupt?: string): string {
  const signers = names.map((n) => ({ name: n, signer: new FrostSigner(results.get(n)!.secret, results.get(n)!.publicPackage) }));
  const rounds = signers.map((s) => ({ ...s, ...s.signer.commit() }));
  const list: CommitmentJson[] = rounds.map((r) => r.commitment);
  const shares = rounds.map((r) => {
    let share = r.signer.sign(r.signer.take(r.commitmentId), list, message);
    if (r.name === corrupt) share = bytesToHex(sha256(hexToBytes(share)));
    return { node: r.name, identifier: r.commitment.identifier, share };
  });
  return aggregateSignature(results.get(names[0]!)!.publicPackage, list, message, shares);
}

test('2-of-3 DKG: every node ends with the same group key; every pair signs a BIP-340 signature libsecp256k1 accepts', () => {
  const { cluster, results } = runDkg();
  const keys = new Set([...results.values()].map((r) => groupXOnlyKey(r.publicPackage)));
  assert.equal(keys.size, 1);
  const groupKey = hexToBytes([...keys][0]!);
  // No node's share alone is the key: share*G differs from the group key for each.
  for (const r of results.values()) assert.notEqual(r.publicPackage.verifyingShares[r.secret.identifier]!.slice(2), [...keys][0]);
  const message = sha256(utf8ToBytes('an event id'));
  for (const pair of [['alice', 'bob'], ['alice', 'carol'], ['bob', 'carol']]) {
    const sig = hexToBytes(signWith(results, cluster, pair, message));
    assert.equal(ecc.verifySchnorr(message, groupKey, sig), true, pair.join('+'));
    assert.equal(ecc.verifySchnorr(sha256(utf8ToBytes('another')), groupKey, sig), false);
  }
  // All three may sign too.
  assert.equal(ecc.verifySchnorr(message, groupKey, hexToBytes(signWith(results, cluster, ['alice', 'bob', 'carol'], message))), true);
});

test('one node alone cannot sign: a commitment list below the threshold is refused', () => {
  const { results } = runDkg();
  const alice = new FrostSigner(results.get('alice')!.secret, results.get('alice')!.publicPackage);
  const r = alice.commit();
  assert.throws(() => alice.sign(alice.take(r.commitmentId), [r.commitment], sha256(utf8ToBytes('x'))), /Wrong number of commitments/);
});

test('a bad signature share is named; nothing is aggregated', () => {
  const { cluster, results } = runDkg();
  assert.throws(() => signWith(results, cluster, ['alice', 'carol'], sha256(utf8ToBytes('m')), 'carol'), (e: unknown) => {
    assert.ok(e instanceof AirlockError);
    assert.equal(e.code, 'frost_share_invalid');
    assert.deepEqual(e.details?.nodes, ['carol']);
    return true;
  });
});

test('a nonce is used once: a second round two with the same commitment id is refused', () => {
  const { results } = runDkg();
  const signers = (['alice', 'bob'] as const).map((n) => new FrostSigner(results.get(n)!.secret, results.get(n)!.publicPackage));
  const rounds = signers.map((s) => s.commit());
  const list = rounds.map((r) => r.commitment);
  const taken = signers[0]!.take(rounds[0]!.commitmentId);
  signers[0]!.sign(taken, list, sha256(utf8ToBytes('first')));
  assert.throws(() => signers[0]!.take(rounds[0]!.commitmentId), refusedWith('frost_commitment_unknown'));
  // A commitment list that carries another commitment in this node's place is refused too.
  const other = signers[0]!.commit();
  const forged = [{ ...list[0]!, hiding: list[1]!.hiding }, list[1]!];
  assert.throws(() => signers[0]!.sign(signers[0]!.take(other.commitmentId), forged, sha256(utf8ToBytes('x'))), refusedWith('invalid_request'));
  // Expired commitments are gone.
  let now = 0;
  const clocked = new FrostSigner(results.get('bob')!.secret, results.get('bob')!.publicPackage, { ttlMs: 1000, now: () => now });
  const c = clocked.commit();
  now = 1000;
  assert.throws(() => clocked.take(c.commitmentId), refusedWith('frost_commitment_unknown'));
});

test('DKG refuses what a hostile relay or node sends, naming the node', () => {
  const { cluster, secrets, ceremony } = setup();
  const fresh = () => new Map(NAMES.map((n) => [n as string, new DkgParticipant(cluster, n, secrets.get(n)!, ceremony)]));
  let parts = fresh();
  const round1 = () => [...parts.values()].map((p) => p.round1());

  // The relay alters bob's commitment: bob's signature no longer covers it.
  let r1 = round1();
  const altered: Round1Message[] = r1.map((m) => (m.body.from === 'bob' ? { ...m, body: { ...m.body, commitment: [...m.body.commitment].reverse() } } : m));
  assert.throws(() => parts.get('alice')!.round2(altered), refusedWith('frost_dkg_failed', 'bob'));

  // A package from a node the cluster does not list (a relay's own key) is refused.
  parts = fresh();
  r1 = round1();
  const stranger = schnorr.utils.randomSecretKey();
  const foreign = signMessage({ ...r1[1]!.body }, stranger);
  assert.throws(() => parts.get('alice')!.round2([r1[0]!, foreign, r1[2]!]), refusedWith('frost_dkg_failed', 'bob'));

  // Bob (compromised) signs a package whose proof of knowledge is bad: named.
  parts = fresh();
  r1 = round1();
  const badProof = signMessage({ ...r1[1]!.body, proofOfKnowledge: r1[2]!.body.proofOfKnowledge }, secrets.get('bob')!);
  assert.throws(() => parts.get('alice')!.round2([r1[0]!, badProof, r1[2]!]), refusedWith('frost_dkg_failed', 'bob'));

  // Missing a node's package: refused (every node must take part).
  parts = fresh();
  r1 = round1();
  assert.throws(() => parts.get('alice')!.round2([r1[0]!, r1[1]!]), refusedWith('frost_dkg_failed'));

  // Carol (compromised) sends alice a share off her committed polynomial, encrypted and signed properly.
  parts = fresh();
  r1 = round1();
  const r2: Round2Message[] = [...parts.values()].flatMap((p) => p.round2(r1));
  const toAliceFromBob = r2.find((m) => m.body.from === 'bob' && m.body.to === 'alice')!;
  // Replay bob's share to alice as carol's: carol re-signs it, but it does not decrypt under carol's key.
  const replayed = signMessage({ ...toAliceFromBob.body, from: 'carol' }, secrets.get('carol')!);
  const withReplay = r2.filter((m) => !(m.body.from === 'carol' && m.body.to === 'alice')).concat(replayed);
  assert.throws(() => parts.get('alice')!.round3(withReplay), refusedWith('frost_dkg_failed', 'carol'));
});

test('DKG: a share off the sender\'s polynomial is named; disagreeing confirmations keep no key', async () => {
  const { cluster, secrets, ceremony } = setup();
  const parts = new Map(NAMES.map((n) => [n as string, new DkgParticipant(cluster, n, secrets.get(n)!, ceremony)]));
  const r1 = [...parts.values()].map((p) => p.round1());
  const r2 = [...parts.values()].flatMap((p) => p.round2(r1));
  // Carol encrypts a random scalar for alice instead of f_carol(alice): decrypts fine, fails the commitment check.
  const { xchacha20poly1305 } = await import('@noble/ciphers/chacha.js');
  const { canonicalJson } = await import('@airlock/core');
  const { secp256k1 } = await import('@noble/curves/secp256k1.js');
  const { hkdf } = await import('@noble/hashes/hkdf.js');
  const original = r2.find((m) => m.body.from === 'carol' && m.body.to === 'alice')!;
  const { ciphertext: _c, ...envelope } = original.body;
  const shared = secp256k1.getSharedSecret(secrets.get('carol')!, hexToBytes(`02${cluster.nodes[0]!.identityKey}`), true).slice(1);
  const key = hkdf(sha256, shared, hexToBytes(ceremony), utf8ToBytes('airlock-frost-dkg-share-v1|carol|alice'), 32);
  const wrong = xchacha20poly1305(key, hexToBytes(envelope.nonce), utf8ToBytes(canonicalJson(envelope))).encrypt(schnorr.utils.randomSecretKey());
  const forged = signMessage({ ...envelope, ciphertext: bytesToHex(wrong) }, secrets.get('carol')!);
  assert.throws(() => parts.get('alice')!.round3(r2.filter((m) => m !== original).concat(forged)), refusedWith('frost_dkg_failed', 'carol'));

  // Confirmations: bob's claims another transcript (a relay showed him other packages): alice keeps nothing.
  const ok = runDkgParts(cluster, secrets);
  const tampered = ok.confirmations.map((m) => (m.body.from === 'bob' ? signMessage({ ...m.body, transcript: bytesToHex(randomBytes(32)) }, secrets.get('bob')!) : m));
  assert.throws(() => confirmDkg(cluster, ok.ceremony, ok.results.get('alice')!, tampered), refusedWith('frost_dkg_failed', 'bob'));
  assert.throws(() => confirmDkg(cluster, ok.ceremony, ok.results.get('alice')!, ok.confirmations.slice(0, 2)), refusedWith('frost_dkg_failed', 'carol'));
});

function runDkgParts(cluster: ClusterDefinition, secrets: Map<string, Uint8Array>) {
  const ceremony = bytesToHex(randomBytes(16));
  const parts = new Map(NAMES.map((n) => [n as string, new DkgParticipant(cluster, n, secrets.get(n)!, ceremony)]));
  const r1 = [...parts.values()].map((p) => p.round1());
  const r2 = [...parts.values()].flatMap((p) => p.round2(r1));
  const results = new Map([...parts].map(([n, p]) => [n, p.round3(r2)]));
  const confirmations = [...parts].map(([n, p]) => p.confirmation(results.get(n)!));
  return { ceremony, results, confirmations };
}

test('cluster definitions: a 1-of-n threshold, duplicate names or keys are refused', () => {
  const key = identityPublicKey(schnorr.utils.randomSecretKey());
  const key2 = identityPublicKey(schnorr.utils.randomSecretKey());
  assert.throws(() => parseCluster({ threshold: 1, nodes: [{ name: 'a', identifier: 1, identityKey: key }, { name: 'b', identifier: 2, identityKey: key2 }] }), refusedWith('invalid_request'));
  assert.throws(() => parseCluster({ threshold: 2, nodes: [{ name: 'a', identifier: 1, identityKey: key }, { name: 'a', identifier: 2, identityKey: key2 }] }), refusedWith('invalid_request'));
  assert.throws(() => parseCluster({ threshold: 2, nodes: [{ name: 'a', identifier: 1, identityKey: key }, { name: 'b', identifier: 2, identityKey: key }] }), refusedWith('invalid_request'));
  assert.throws(() => parseCluster({ threshold: 2, extra: 1, nodes: [] }), refusedWith('invalid_request'));
});
