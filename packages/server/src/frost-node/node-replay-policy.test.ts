// A signer node contributes its share again for a message it already allowed and charged (a retry after another
// node failed) only if the policy it runs now still allows it, judged with that charge taken out of its totals, as
// the daemon judges a replay. Found by review: the allow never expired, so a coordinator (which holds every node's
// token and is not trusted, docs/threat-model.md) kept one node's allow of a PSBT the other nodes refused, and
// redeemed it a day later with another node's fresh allow, after the first node's operator had switched it to
// deny every spend. Three real signer nodes over HTTP, a 2-of-3 key, bitcoinjs-lib building the PSBTs.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { randomBytes } from 'node:crypto';
import { createNodeState } from '@airlock/keys';
import { mainnetPsbtToGroupKey } from '../testing/group-key-psbt.ts';
import { FrostCoordinator } from './coordinator.ts';
import { NODE_STATE_FILE, startFrostNode, type RunningFrostNode } from './serve-node.ts';

const dir = mkdtempSync(join(tmpdir(), 'airlock-node-replay-'));
const NAMES = ['alice', 'bob', 'carol'] as const;
type Name = (typeof NAMES)[number];
const WEAK = { kdf: { memoryKiB: 64, passes: 1, parallelism: 1 }, allowWeakKdf: true };
const tokens = Object.fromEntries(NAMES.map((n) => [n, randomBytes(16).toString('hex')])) as Record<Name, string>;
const MAINNET_ASSET = 'bip122:000000000019d6689c085ae165831e93/slip44:0';
const POLICY = `version: 1
rules:
  - { name: btc, type: allow, match: { actions: [bitcoin.psbt] } }
  - { name: daily, type: budget, asset: "${MAINNET_ASSET}", max: "20000000", window: 24h }
`;
// What alice's operator switches to after deciding the cluster must not spend any more (an emergency stop).
const STOP = `version: 1
rules:
  - { name: btc, type: allow, match: { actions: [bitcoin.psbt] } }
  - { name: stop, type: deny, match: { actions: [bitcoin.psbt] } }
`;
// A compromised (or careless) node: allows any Bitcoin spend. The threat model's "coordinator with one compromised node".
const LENIENT = `version: 1
rules:
  - { name: btc, type: allow, match: { actions: [bitcoin.psbt] } }
`;
const passphrase = (n: Name) => `passphrase of ${n} node`;
const nodes = new Map<Name, RunningFrostNode>();
let cluster: { threshold: number; nodes: { name: string; identifier: number; identityKey: string }[] };
let groupKey = '';
let publicPackage: any;
let clock = Date.now();

const start = (n: Name, policyText = POLICY) => startFrostNode({ dir: join(dir, n), passphrase: passphrase(n), cluster, policyText, token: tokens[n], now: () => clock });
const coordinator = () => new FrostCoordinator(cluster, NAMES.map((n) => ({ name: n, url: nodes.get(n)!.url, token: tokens[n] })), { publicPackage });

async function call(n: Name, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(`${nodes.get(n)!.url}${path}`, { method: body === undefined ? 'GET' : 'POST', headers: { authorization: `Bearer ${tokens[n]}` }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  return { status: res.status, json: await res.json() };
}
const decisions = async (n: Name) => (await call(n, '/v1/frost/decisions')).json.decisions as { decision: string }[];

before(async () => {
  const keys = await Promise.all(NAMES.map((n) => { mkdirSync(join(dir, n)); return createNodeState(join(dir, n, NODE_STATE_FILE), n, passphrase(n), WEAK); }));
  cluster = { threshold: 2, nodes: NAMES.map((name, i) => ({ name, identifier: i + 1, identityKey: keys[i]! })) };
  for (const n of NAMES) nodes.set(n, await start(n));
  const generated = await coordinator().generateKey();
  groupKey = generated.groupKey;
  publicPackage = generated.publicPackage;
});

after(async () => {
  await Promise.all([...nodes.values()].map((n) => n.close()));
  rmSync(dir, { recursive: true, force: true });
});

const psbtPaying = (sendSat: bigint): string => mainnetPsbtToGroupKey(groupKey, sendSat);

/** The hostile coordinator's first move: round two to `n` alone (a partner's commitment in the list, the partner never asked). */
async function allowFrom(n: Name, psbt: string): Promise<{ status: number; json: any }> {
  const partner: Name = n === 'alice' ? 'carol' : 'alice';
  const mine = (await call(n, '/v1/frost/commit', {})).json;
  const theirs = (await call(partner, '/v1/frost/commit', {})).json;
  return call(n, '/v1/frost/sign', { sessions: [{ input: 0, commitmentId: mine.commitmentId, commitments: [mine.commitment, theirs.commitment].sort((a: any, b: any) => (a.identifier < b.identifier ? -1 : 1)) }], request: { action: 'bitcoin.taproot_key_path', psbt, network: 'bitcoin' } });
}

test("a node's old allow is not redeemed after its operator's emergency stop: the PSBT no two nodes allowed at once stays unsigned", async () => {
  // carol refuses every spend throughout; bob: 20,000 sat a day; alice: any spend (until her operator stops her).
  await nodes.get('carol')!.close();
  nodes.set('carol', await start('carol', STOP));
  await nodes.get('alice')!.close();
  nodes.set('alice', await start('alice', LENIENT));
  // Bob's budget for today is used up by an honest spend alice and bob sign.
  const honest = await coordinator().signTaprootPsbt(psbtPaying(19_000n), 'bitcoin');
  assert.deepEqual(honest.signers, ['alice', 'bob']);
  // t0: the PSBT under test. Alice allows (and is charged), bob refuses (his budget), carol refuses: no signature.
  const psbt = psbtPaying(5_000n);
  await assert.rejects(coordinator().signTaprootPsbt(psbt, 'bitcoin'), (e: any) => {
    assert.equal(e.code, 'policy_denied', e.message);
    return true;
  });
  assert.deepEqual((await decisions('alice')).slice(-2).map((d) => d.decision), ['allow', 'replay']);
  assert.equal((await decisions('bob')).at(-1)!.decision, 'deny');
  // Alice's operator now stops every Bitcoin spend (deny rule), restarting the node on the same ledger.
  await nodes.get('alice')!.close();
  nodes.set('alice', await start('alice', STOP));
  // Control: a fresh PSBT is refused by alice's policy in force.
  const fresh = await allowFrom('alice', psbtPaying(6_000n));
  assert.equal(fresh.status, 403, JSON.stringify(fresh.json));
  assert.equal(fresh.json.error.code, 'policy_denied');
  // t1, a day later: bob's window is empty again. Alice (deny-all now) "replays", bob allows: signed.
  clock += 25 * 3600_000;
  let signed: { signers: string[]; transaction?: string } | undefined;
  try {
    signed = await coordinator().signTaprootPsbt(psbt, 'bitcoin', { finalize: true });
  } catch {
    signed = undefined;
  }
  const aliceLog = (await decisions('alice')).map((d) => d.decision);
  assert.equal(signed, undefined, `at t0 only alice allowed, at t1 only bob; alice's policy in force denies every bitcoin.psbt, yet the cluster signed with ${signed?.signers.join(', ')} (alice's log: ${aliceLog.join(', ')})`);
  assert.equal(aliceLog.at(-1), 'deny', `alice's asked replay is recorded as refused (log: ${aliceLog.join(', ')})`);
});

test('a replay under the same policy is still contributed, and charged once: a retry after a node failed signs', async () => {
  await nodes.get('alice')!.close();
  nodes.set('alice', await start('alice', LENIENT));
  await nodes.get('carol')!.close();
  nodes.set('carol', await start('carol', LENIENT));
  clock += 25 * 3600_000; // a fresh day for bob's budget
  const psbt = psbtPaying(7_000n);
  // Round two to alice alone: she allows and is charged; the coordinator never finishes (as when a partner failed).
  const first = await allowFrom('alice', psbt);
  assert.equal(first.status, 200, JSON.stringify(first.json));
  const signed = await coordinator().signTaprootPsbt(psbt, 'bitcoin', { finalize: true });
  assert.ok(signed.signers.includes('alice'), JSON.stringify(signed.signers));
  const aliceLog = (await decisions('alice')).map((d) => d.decision);
  assert.deepEqual(aliceLog.slice(-2), ['allow', 'replay'], 'the second contribution is a replay, not a second charge');
});
