// A replay must not let a node contribute to more within a window than its policy allows. Found by review
// (2026-12-05): a replay was judged "as a new request would be" once its charge had aged out of a window, yet it
// was not charged, and the old charge stayed at its old time. A coordinator (untrusted: it holds every node token)
// collected each honest node's allow of a PSBT in round-two sessions that never combine (nothing signed, each node
// charged today), waited a day, redeemed those allows as replays (judged against an empty window, charged nothing)
// and then spent a full day's budget afresh: the cluster signed twice the daily budget of every node within one day.
// Three real signer nodes over HTTP, a 2-of-3 key, bitcoinjs-lib building the PSBTs.
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

const dir = mkdtempSync(join(tmpdir(), 'airlock-frost-review-replay-'));
const NAMES = ['alice', 'bob', 'carol'] as const;
type Name = (typeof NAMES)[number];
const WEAK = { kdf: { memoryKiB: 64, passes: 1, parallelism: 1 }, allowWeakKdf: true };
const tokens = Object.fromEntries(NAMES.map((n) => [n, randomBytes(16).toString('hex')])) as Record<Name, string>;
const MAINNET_ASSET = 'bip122:000000000019d6689c085ae165831e93/slip44:0';
// Every node: 20,000 sat a day (millisatoshis), and no more.
const POLICY = `version: 1
rules:
  - { name: btc, type: allow, match: { actions: [bitcoin.psbt] } }
  - { name: daily, type: budget, asset: "${MAINNET_ASSET}", max: "20000000", window: 24h }
`;
const passphrase = (n: Name) => `passphrase of ${n} node`;
const nodes = new Map<Name, RunningFrostNode>();
let cluster: { threshold: number; nodes: { name: string; identifier: number; identityKey: string }[] };
let groupKey = '';
let publicPackage: any;
let clock = Date.now();

const coordinator = () => new FrostCoordinator(cluster, NAMES.map((n) => ({ name: n, url: nodes.get(n)!.url, token: tokens[n] })), { publicPackage });

async function call(n: Name, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(`${nodes.get(n)!.url}${path}`, { method: body === undefined ? 'GET' : 'POST', headers: { authorization: `Bearer ${tokens[n]}` }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  return { status: res.status, json: await res.json() };
}
const decisions = async (n: Name) => (await call(n, '/v1/frost/decisions')).json.decisions as { decision: string }[];

before(async () => {
  const keys = await Promise.all(NAMES.map((n) => { mkdirSync(join(dir, n)); return createNodeState(join(dir, n, NODE_STATE_FILE), n, passphrase(n), WEAK); }));
  cluster = { threshold: 2, nodes: NAMES.map((name, i) => ({ name, identifier: i + 1, identityKey: keys[i]! })) };
  for (const n of NAMES) nodes.set(n, await startFrostNode({ dir: join(dir, n), passphrase: passphrase(n), cluster, policyText: POLICY, token: tokens[n], now: () => clock }));
  const generated = await coordinator().generateKey();
  groupKey = generated.groupKey;
  publicPackage = generated.publicPackage;
});

after(async () => {
  await Promise.all([...nodes.values()].map((n) => n.close()));
  rmSync(dir, { recursive: true, force: true });
});

/** Round two to `n` alone, with a partner's commitment in the list (the partner is never asked): an allow, no signature. */
async function allowFrom(n: Name, psbt: string): Promise<{ status: number; json: any }> {
  const partner: Name = n === 'carol' ? 'alice' : 'carol';
  const mine = (await call(n, '/v1/frost/commit', {})).json;
  const theirs = (await call(partner, '/v1/frost/commit', {})).json;
  const commitments = [mine.commitment, theirs.commitment].sort((a: any, b: any) => (a.identifier < b.identifier ? -1 : 1));
  return call(n, '/v1/frost/sign', { sessions: [{ input: 0, commitmentId: mine.commitmentId, commitments }], request: { action: 'bitcoin.taproot_key_path', psbt, network: 'bitcoin' } });
}

test('an allow redeemed a day later counts in the day it is redeemed: the cluster never signs more than a day\'s budget in a day', async () => {
  // Day 0: alice and bob each allow P1 (15,000 sat) on their own; nothing is signed (the sessions never combine).
  const p1 = mainnetPsbtToGroupKey(groupKey, 15_000n);
  for (const n of ['alice', 'bob'] as const) {
    const r = await allowFrom(n, p1);
    assert.equal(r.status, 200, JSON.stringify(r.json));
  }
  // Day 1: P1 redeemed (alice and bob replay it): signed. That is 16,000 sat (the fee included) signed today.
  clock += 25 * 3600_000;
  const first = await coordinator().signTaprootPsbt(p1, 'bitcoin', { finalize: true });
  assert.deepEqual(first.signers, ['alice', 'bob']);
  for (const n of ['alice', 'bob'] as const) assert.equal((await decisions(n)).at(-1)!.decision, 'replay');
  // Then P2 (14,000 sat), the same day: 31,000 sat within 24 hours (the 1,000 sat fees included) is past every node's 20,000 sat budget.
  // Carol alone would allow it (her window is empty), but one node is not the threshold.
  let signed: { signers: string[] } | undefined;
  let refusal: any;
  try {
    signed = await coordinator().signTaprootPsbt(mainnetPsbtToGroupKey(groupKey, 14_000n), 'bitcoin', { finalize: true });
  } catch (e) {
    refusal = e;
  }
  assert.equal(signed, undefined, `the cluster signed 31,000 sat (fees included) within a day with ${signed?.signers.join(', ')}; every node's budget is 20,000 sat a day`);
  assert.equal(refusal.code, 'policy_denied', refusal.message);
  const rules = (refusal.violations ?? []).map((v: { rule: string; code: string }) => `${v.rule} ${v.code}`);
  for (const n of ['alice', 'bob']) assert.ok(rules.includes(`${n}:agent/daily budget_exceeded`), rules.join('; '));
});

test('a replay still charges once: a retry within the window is contributed without a second charge', async () => {
  clock += 25 * 3600_000;
  const p3 = mainnetPsbtToGroupKey(groupKey, 12_000n);
  const r = await allowFrom('alice', p3);
  assert.equal(r.status, 200, JSON.stringify(r.json));
  // The retry signs (alice replays, bob allows); asked once more, both replay.
  assert.deepEqual((await coordinator().signTaprootPsbt(p3, 'bitcoin')).signers, ['alice', 'bob']);
  assert.deepEqual((await coordinator().signTaprootPsbt(p3, 'bitcoin')).signers, ['alice', 'bob']);
  assert.deepEqual((await decisions('alice')).slice(-3).map((d) => d.decision), ['allow', 'replay', 'replay']);
  assert.deepEqual((await decisions('bob')).slice(-2).map((d) => d.decision), ['allow', 'replay']);
  // Alice was charged 13,000 sat (12,000 and the 1,000 sat fee) once: 7,000 sat more fit today, and nothing after.
  const fits = await allowFrom('alice', mainnetPsbtToGroupKey(groupKey, 6_000n)); // 6,000 + 1,000 fee
  assert.equal(fits.status, 200, JSON.stringify(fits.json));
  const over = await allowFrom('alice', mainnetPsbtToGroupKey(groupKey, 1n));
  assert.equal(over.status, 403, JSON.stringify(over.json));
});
