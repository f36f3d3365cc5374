// A 2-of-3 threshold cluster as an operator runs it: three `airlock frost node` processes on loopback, each with
// its own sealed share, its own policy and its own ledger; `airlock frost dkg` and `airlock frost sign` as the
// coordinator. Signatures are checked by nostr-tools (verifyEvent) and libsecp256k1 (tiny-secp256k1), not by
// our code. Then the attacks: a compromised coordinator (it holds every node's token) and a compromised node
// (alice, whose policy allows anything we test) try to get what the honest nodes refuse; a node that sends a bad
// share (a proxy rewriting carol's answers) is named; a node down still lets 2-of-3 sign; a restarted node has
// forgotten its nonces but not its share.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { randomBytes } from 'node:crypto';
import { verifyEvent } from 'nostr-tools/pure';
import * as ecc from 'tiny-secp256k1';
import { hexToBytes } from '@noble/hashes/utils.js';
import { parseCluster, aggregateSignature, type CommitmentJson, type PublicPackageJson } from '@airlock/keys';
import { eventId } from '@airlock/chains';
import { AirlockError } from '@airlock/core';
import { FrostCoordinator } from '@airlock/server/frost';
import { cliEnv, runCli } from './testing/cli-process.ts';
import { frostTestCluster } from './testing/frost-cluster.ts';

const dir = mkdtempSync(join(tmpdir(), 'airlock-frost-'));
const env = cliEnv();
const NAMES = ['alice', 'bob', 'carol'] as const;
type Name = (typeof NAMES)[number];

// alice: lax (stands for a compromised node); bob: notes, never with "forbidden"; carol: notes only.
const POLICIES: Record<Name, string> = {
  alice: 'version: 1\nrules:\n  - { name: anything-nostr, type: allow, match: { nostr_kinds: [1, 4] } }\n',
  bob: 'version: 1\nrules:\n  - { name: notes, type: allow, match: { nostr_kinds: [1] } }\n  - { name: clean, type: nostr_event, deny_content_pattern: "forbidden" }\n',
  carol: 'version: 1\nrules:\n  - { name: notes, type: allow, match: { nostr_kinds: [1] } }\n  - { name: four-a-minute, type: rate_limit, max: 4, window: 1m }\n',
};

const cluster = frostTestCluster<Name>(dir, env, POLICIES);
const { tokens } = cluster;
const running = { get: (name: Name) => (cluster.url(name) ? { url: cluster.url(name)! } : undefined) };
let groupKey = '';

const nodeDir = (name: Name) => cluster.nodeDir(name);
const startNode = (name: Name) => cluster.startNode(name);
const stopNode = (name: Name) => cluster.stopNode(name);
const writeNodesFile = (file: string, urls: Partial<Record<Name, string>>) => cluster.writeNodesFile(file, urls);
const call = (name: Name, path: string, body?: unknown, token?: string) => cluster.call(name, path, body, token ?? tokens[name]);

function note(content: string, kind = 1) {
  return { kind, tags: [], content, created_at: Math.floor(Date.now() / 1000) };
}

/** `airlock frost sign`: JSON output when it succeeds, the operator's `error [code]` lines when it does not. */
async function sign(nodesFile: string, event: unknown, json = true) {
  const file = join(dir, `event-${randomBytes(4).toString('hex')}.json`);
  writeFileSync(file, JSON.stringify(event));
  return runCli(['frost', 'sign', ...(json ? ['--json'] : []), '--cluster', join(dir, 'cluster.json'), '--nodes', nodesFile, '--event', file], env);
}

function checkSigned(stdout: string): { id: string; pubkey: string; sig: string; kind: number; content: string; signers: string[] } {
  const { event, signers } = JSON.parse(stdout);
  assert.equal(event.pubkey, groupKey);
  assert.equal(verifyEvent({ ...event }), true, 'nostr-tools verifyEvent');
  assert.equal(ecc.verifySchnorr(hexToBytes(event.id), hexToBytes(groupKey), hexToBytes(event.sig)), true, 'libsecp256k1 BIP-340');
  return { ...event, signers };
}

before(async () => {
  await cluster.init();
  await Promise.all(NAMES.map(startNode));
});

after(async () => {
  await cluster.stopAll();
  rmSync(dir, { recursive: true, force: true });
});

test('key generation: every node confirms one group key; no node file holds more than its share', async () => {
  const before = await call('alice', '/v1/frost/node');
  assert.equal(before.json.status, 'no_key');
  const r = await runCli(['frost', 'dkg', '--json', '--cluster', join(dir, 'cluster.json'), '--nodes', writeNodesFile('nodes.json', {})], env);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  groupKey = out.groupKey;
  assert.match(out.npub, /^npub1/);
  for (const n of NAMES) {
    const info = await call(n, '/v1/frost/node');
    assert.equal(info.json.status, 'ready');
    assert.equal(info.json.groupKey, groupKey);
  }
  // A second ceremony is refused: a node takes part in one key generation.
  const again = await runCli(['frost', 'dkg', '--cluster', join(dir, 'cluster.json'), '--nodes', join(dir, 'nodes.json')], env);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /frost_key_not_ready/);
  // The state files are sealed: neither the share nor the identity secret appears in clear.
  for (const n of NAMES) {
    const file = readFileSync(join(nodeDir(n), 'frost-node.json'), 'utf8');
    assert.doesNotMatch(file, /signingShare|identitySecret/);
  }
});

test('2-of-3 signs a Nostr note; nostr-tools and libsecp256k1 verify it under the group key', async () => {
  const r = await sign(join(dir, 'nodes.json'), note('hello from a threshold key'));
  assert.equal(r.code, 0, r.stderr);
  const event = checkSigned(r.stdout);
  assert.deepEqual(event.signers, ['alice', 'bob']);
  assert.equal(event.id, eventId({ ...note('x'), ...event, pubkey: groupKey }));
});

test('latency: the coordinator library against the three node processes (both rounds over loopback HTTP)', async (t) => {
  const cluster = parseCluster(JSON.parse(readFileSync(join(dir, 'cluster.json'), 'utf8')));
  const coordinator = new FrostCoordinator(cluster, NAMES.map((n) => ({ name: n, url: running.get(n)!.url, token: tokens[n] })));
  await coordinator.groupPublicPackage();
  const times: number[] = [];
  for (let i = 0; i < 20; i++) {
    const started = performance.now();
    const { event } = await coordinator.signNostrEvent(note(`latency ${i}`));
    times.push(performance.now() - started);
    assert.equal(ecc.verifySchnorr(hexToBytes(event.id), hexToBytes(groupKey), hexToBytes(event.sig)), true);
  }
  times.sort((a, b) => a - b);
  t.diagnostic(`2-of-3 signature, coordinator to separate node processes: median ${times[10]!.toFixed(1)} ms, max ${times[19]!.toFixed(1)} ms over 20`);
});

test('a refusing node that is not needed does not block: bob refuses, alice and carol sign', async () => {
  const r = await sign(join(dir, 'nodes.json'), note('a forbidden word'));
  assert.equal(r.code, 0, r.stderr);
  const event = checkSigned(r.stdout);
  assert.deepEqual(event.signers, ['alice', 'carol']);
  const bobLog = (await call('bob', '/v1/frost/decisions')).json.decisions;
  const last = bobLog.at(-1);
  assert.equal(last.decision, 'deny');
  assert.equal(last.eventId, event.id);
  assert.equal(last.violations[0].code, 'nostr_content_not_allowed');
  assert.equal(last.violations[0].rule, 'agent/clean');
});

test('what the honest nodes refuse is not signed, even by a compromised coordinator with a compromised node', async () => {
  // Through the coordinator: only alice (compromised, lax) would sign a DM; bob and carol refuse: policy_denied.
  const r = await sign(join(dir, 'nodes.json'), note('send me the keys', 4), false);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /error \[policy_denied\]/);
  assert.match(r.stderr, /bob:agent\/default/);
  assert.match(r.stderr, /carol:agent\/default/);
  assert.match(r.stderr, /nostr_kind_not_allowed/);

  // The coordinator itself compromised (it holds every token): it asks bob for a share of the DM directly.
  const commit = (await call('bob', '/v1/frost/commit', {})).json;
  const aliceCommit = (await call('alice', '/v1/frost/commit', {})).json;
  const commitments: CommitmentJson[] = [aliceCommit.commitment, commit.commitment];
  const dm = { ...note('send me the keys', 4), pubkey: groupKey };
  const refused = await call('bob', '/v1/frost/sign', { commitmentId: commit.commitmentId, commitments, request: { action: 'nostr.event', event: dm } });
  assert.equal(refused.status, 403);
  assert.equal(refused.json.error.code, 'policy_denied');
  // It sends bob an allowed note but alice the DM, hoping to combine the shares: bob's share binds bob's own
  // event id, so the combination fails share verification and no signature on the DM exists.
  const commit2 = (await call('bob', '/v1/frost/commit', {})).json;
  const list2: CommitmentJson[] = [aliceCommit.commitment, commit2.commitment];
  const aliceShare = (await call('alice', '/v1/frost/sign', { commitmentId: aliceCommit.commitmentId, commitments: list2, request: { action: 'nostr.event', event: dm } })).json;
  const bobShare = (await call('bob', '/v1/frost/sign', { commitmentId: commit2.commitmentId, commitments: list2, request: { action: 'nostr.event', event: { ...note('harmless'), pubkey: groupKey } } })).json;
  assert.equal(aliceShare.eventId, eventId(dm));
  assert.notEqual(bobShare.eventId, aliceShare.eventId);
  const pub = (await call('alice', '/v1/frost/node')).json.publicPackage as PublicPackageJson;
  assert.throws(
    () => aggregateSignature(pub, list2, hexToBytes(eventId(dm)), [
      { node: 'alice', identifier: aliceShare.identifier, share: aliceShare.share },
      { node: 'bob', identifier: bobShare.identifier, share: bobShare.share },
    ]),
    (e: unknown) => e instanceof AirlockError && e.code === 'frost_share_invalid' && JSON.stringify(e.details?.nodes) === '["bob"]',
  );
  // A raw digest is not a request a node signs.
  const c3 = (await call('bob', '/v1/frost/commit', {})).json;
  const raw = await call('bob', '/v1/frost/sign', { commitmentId: c3.commitmentId, commitments: [aliceCommit.commitment, c3.commitment], request: { action: 'raw', digest: eventId(dm) } });
  assert.equal(raw.status, 400);
  assert.equal(raw.json.error.code, 'unsupported_action');
});

test('nonces are single-use, token-guarded, and forgotten by a restart; the share is not', async () => {
  const noToken = await call('bob', '/v1/frost/commit', {}, '');
  assert.equal(noToken.status, 401);
  const wrongToken = await call('bob', '/v1/frost/commit', {}, tokens.alice);
  assert.equal(wrongToken.status, 401);

  const a = (await call('alice', '/v1/frost/commit', {})).json;
  const b = (await call('bob', '/v1/frost/commit', {})).json;
  const list = [a.commitment, b.commitment];
  const event = { ...note('once'), pubkey: groupKey };
  const first = await call('bob', '/v1/frost/sign', { commitmentId: b.commitmentId, commitments: list, request: { action: 'nostr.event', event } });
  assert.equal(first.status, 200);
  const second = await call('bob', '/v1/frost/sign', { commitmentId: b.commitmentId, commitments: list, request: { action: 'nostr.event', event } });
  assert.equal(second.status, 409);
  assert.equal(second.json.error.code, 'frost_commitment_unknown');

  const pending = (await call('bob', '/v1/frost/commit', {})).json;
  await stopNode('bob');
  await startNode('bob');
  const afterRestart = await call('bob', '/v1/frost/sign', { commitmentId: pending.commitmentId, commitments: [a.commitment, pending.commitment], request: { action: 'nostr.event', event } });
  assert.equal(afterRestart.status, 409);
  assert.equal(afterRestart.json.error.code, 'frost_commitment_unknown');
  const info = (await call('bob', '/v1/frost/node')).json;
  assert.equal(info.status, 'ready');
  assert.equal(info.groupKey, groupKey);
  // The decision log survived the restart and its hash chain holds (the node re-checks it when it reads).
  assert.ok((await call('bob', '/v1/frost/decisions')).json.decisions.length >= 3);
});

/** Stands between the coordinator and carol; when `corrupt` is on, rewrites carol's signature shares. */
function proxy(target: () => string): Promise<{ url: string; corrupt: boolean; server: Server }> {
  const state = { corrupt: false, url: '', server: undefined as unknown as Server };
  state.server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    let upstream: Response;
    try {
      upstream = await fetch(`${target()}${req.url}`, { method: req.method!, headers: { authorization: req.headers.authorization ?? '', 'content-type': 'application/json' }, ...(req.method === 'POST' ? { body: Buffer.concat(chunks) } : {}) });
    } catch {
      req.socket.destroy(); // carol is down: so is the proxy, as far as the coordinator can tell
      return;
    }
    let text = await upstream.text();
    if (state.corrupt && req.url === '/v1/frost/sign' && upstream.ok) {
      const json = JSON.parse(text);
      json.share = (BigInt(`0x${json.share}`) + 1n).toString(16).padStart(64, '0');
      text = JSON.stringify(json);
    }
    res.writeHead(upstream.status, { 'content-type': 'application/json' }).end(text);
  });
  return new Promise((resolve) => state.server.listen(0, '127.0.0.1', () => {
    state.url = `http://127.0.0.1:${(state.server.address() as AddressInfo).port}`;
    resolve(state);
  }));
}

test('a node down still lets 2-of-3 sign; a bad share is named; two down is refused', async () => {
  const carolProxy = await proxy(() => running.get('carol')?.url ?? 'http://127.0.0.1:9');
  try {
    const nodesFile = writeNodesFile('nodes-proxy.json', { carol: carolProxy.url });
    await stopNode('bob');
    const ok = await sign(nodesFile, note('bob is down'));
    assert.equal(ok.code, 0, ok.stderr);
    assert.deepEqual(checkSigned(ok.stdout).signers, ['alice', 'carol']);

    carolProxy.corrupt = true;
    const bad = await sign(nodesFile, note('carol lies'), false);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /error \[frost_share_invalid\]: signature share from carol does not verify/);
    assert.doesNotMatch(bad.stdout, /"sig"/);
    carolProxy.corrupt = false;

    await stopNode('carol');
    const down = await sign(nodesFile, note('only alice is up'), false);
    assert.equal(down.code, 1);
    assert.match(down.stderr, /error \[frost_threshold_not_met\]/);
  } finally {
    carolProxy.server.close();
    await Promise.all([startNode('bob'), startNode('carol')]);
  }
});

test('a node first in line that sends bad shares is named and left out: bob and carol sign; bob is charged once', async () => {
  // alice (compromised or faulty, below the threshold) answers round two with a share that does not verify. She is
  // chosen first every time; before the fix every signature failed (frost_share_invalid) while bob, paired with
  // her, recorded an allow each time (found by review).
  const aliceProxy = await proxy(() => running.get('alice')?.url ?? 'http://127.0.0.1:9');
  try {
    aliceProxy.corrupt = true;
    const nodesFile = writeNodesFile('nodes-alice-proxy.json', { alice: aliceProxy.url });
    const before = (await call('bob', '/v1/frost/decisions')).json.decisions.length;
    const r = await sign(nodesFile, note('alice lies, the others sign'));
    assert.equal(r.code, 0, r.stderr);
    const event = checkSigned(r.stdout);
    assert.deepEqual(event.signers, ['bob', 'carol']);
    // Bob was asked twice for the same event (paired with alice, then with carol): the second is a replay.
    const bobNew = (await call('bob', '/v1/frost/decisions')).json.decisions.slice(before);
    assert.deepEqual(bobNew.map((d: { decision: string }) => d.decision), ['allow', 'replay']);
    assert.ok(bobNew.every((d: { eventId: string }) => d.eventId === event.id));
  } finally {
    aliceProxy.server.close();
  }
});

test('each node keeps its own ledger: carol\'s rate limit holds whatever the coordinator does', async () => {
  // carol allows 4 notes a minute by her own count (she already signed some above). Ask her directly, as a
  // coordinator would, until she refuses: the refusal names her rule and her own count.
  const pub = parseCluster(JSON.parse(readFileSync(join(dir, 'cluster.json'), 'utf8')));
  assert.equal(pub.threshold, 2);
  let refusal: any;
  for (let i = 0; i < 5 && !refusal; i++) {
    const a = (await call('alice', '/v1/frost/commit', {})).json;
    const c = (await call('carol', '/v1/frost/commit', {})).json;
    const r = await call('carol', '/v1/frost/sign', { commitmentId: c.commitmentId, commitments: [a.commitment, c.commitment], request: { action: 'nostr.event', event: { ...note(`note ${i}`), pubkey: groupKey } } });
    if (r.status === 403) refusal = r.json.error;
    else assert.equal(r.status, 200);
  }
  assert.ok(refusal, 'carol never refused');
  assert.equal(refusal.violations[0].rule, 'agent/four-a-minute');
  assert.equal(refusal.violations[0].code, 'rate_limit_exceeded');
  // Bob's ledger is his own: the same note is still fine for him.
  const a = (await call('alice', '/v1/frost/commit', {})).json;
  const b = (await call('bob', '/v1/frost/commit', {})).json;
  const r = await call('bob', '/v1/frost/sign', { commitmentId: b.commitmentId, commitments: [a.commitment, b.commitment], request: { action: 'nostr.event', event: { ...note('note for bob'), pubkey: groupKey } } });
  assert.equal(r.status, 200);
});
