// A hostile coordinator and a hostile node against in-process signer nodes (real HTTP on loopback, port 0):
//  - the network of a Taproot PSBT is each node's own setting (default bitcoin), never the coordinator's label:
//    a mainnet PSBT labelled testnet would otherwise be judged on the testnet asset, past every mainnet cap;
//  - a replay is keyed by the action and (for a PSBT) the network as well as the message;
//  - a node's bad round-one commitment (another node's identifier, a point off the curve) gets that node left out
//    by the coordinator, not the honest nodes; a node handed such a point refuses before deciding anything;
//  - bodies are read with a byte cap on both sides.
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { randomBytes } from 'node:crypto';
import { AirlockError } from '@airlock/core';
import { createNodeState, isCurvePoint, type CommitmentJson } from '@airlock/keys';
import { mainnetPsbtToGroupKey } from '../testing/group-key-psbt.ts';
import { FrostCoordinator } from './coordinator.ts';
import { NodeLedger } from './node-ledger.ts';
import { NODE_STATE_FILE, startFrostNode, type RunningFrostNode } from './serve-node.ts';

const dir = mkdtempSync(join(tmpdir(), 'airlock-frost-coord-'));
const NAMES = ['alice', 'bob', 'carol'] as const;
type Name = (typeof NAMES)[number];
const WEAK = { kdf: { memoryKiB: 64, passes: 1, parallelism: 1 }, allowWeakKdf: true };
const tokens = Object.fromEntries(NAMES.map((n) => [n, randomBytes(16).toString('hex')])) as Record<Name, string>;
const MAINNET_ASSET = 'bip122:000000000019d6689c085ae165831e93/slip44:0';
// Every node: any Bitcoin transaction, at most 10,000 sat per request and 20,000 sat a day ON MAINNET; notes too.
const POLICY = `version: 1
rules:
  - { name: btc, type: allow, match: { actions: [bitcoin.psbt] } }
  - { name: notes, type: allow, match: { nostr_kinds: [1] } }
  - { name: per-request, type: max_amount, asset: "${MAINNET_ASSET}", max: "10000000" }
  - { name: daily, type: budget, asset: "${MAINNET_ASSET}", max: "20000000", window: 24h }
`;
const nodes = new Map<Name, RunningFrostNode>();
let cluster: { threshold: number; nodes: { name: string; identifier: number; identityKey: string }[] };
let coordinator: FrostCoordinator;
let groupKey = '';
const passphrase = (n: Name) => `passphrase of ${n} node`;
const servers: Server[] = [];

async function call(n: Name, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(`${nodes.get(n)!.url}${path}`, { method: body === undefined ? 'GET' : 'POST', headers: { authorization: `Bearer ${tokens[n]}` }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  return { status: res.status, json: await res.json() };
}
const decisions = async (n: Name) => (await call(n, '/v1/frost/decisions')).json.decisions as { decision: string; action: string; violations: { rule: string; code: string }[] }[];
const note = (content: string) => ({ kind: 1, tags: [], content, created_at: Math.floor(Date.now() / 1000) });

async function listen(server: Server): Promise<string> {
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

before(async () => {
  const keys = await Promise.all(NAMES.map((n) => { mkdirSync(join(dir, n)); return createNodeState(join(dir, n, NODE_STATE_FILE), n, passphrase(n), WEAK); }));
  cluster = { threshold: 2, nodes: NAMES.map((name, i) => ({ name, identifier: i + 1, identityKey: keys[i]! })) };
  // No network given: every node signs mainnet PSBTs only (the default).
  for (const n of NAMES) nodes.set(n, await startFrostNode({ dir: join(dir, n), passphrase: passphrase(n), cluster, policyText: POLICY, token: tokens[n] }));
  coordinator = new FrostCoordinator(cluster, NAMES.map((n) => ({ name: n, url: nodes.get(n)!.url, token: tokens[n] })));
  groupKey = (await coordinator.generateKey()).groupKey;
});

after(async () => {
  for (const s of servers) s.closeAllConnections?.(), s.close();
  await Promise.all([...nodes.values()].map((n) => n.close()));
  rmSync(dir, { recursive: true, force: true });
});

const mainnetPsbt = (sendSat: bigint): string => mainnetPsbtToGroupKey(groupKey, sendSat);

test('a mainnet PSBT labelled testnet (or signet, regtest) is refused by every node, before anything is recorded', async () => {
  const before = await Promise.all(NAMES.map(decisions));
  const psbt = mainnetPsbt(900_001n);
  for (const label of ['testnet', 'signet', 'regtest']) {
    await assert.rejects(coordinator.signTaprootPsbt(psbt, label, { finalize: true }), (e: AirlockError) => {
      assert.equal(e.code, 'frost_threshold_not_met', e.message);
      // Two refusals leave no threshold-sized set: the coordinator stops there.
      const answers = (e.details as { nodes: { node: string; code: string }[] }).nodes;
      assert.ok(answers.length >= 2);
      for (const a of answers) assert.equal(a.code, 'frost_network_mismatch', JSON.stringify(answers));
      return true;
    });
  }
  // Every node asked directly: the same code, status 400.
  for (const n of NAMES) {
    const other = n === 'alice' ? 'bob' : 'alice';
    const c = [(await call(n, '/v1/frost/commit', {})).json, (await call(other, '/v1/frost/commit', {})).json];
    const r = await call(n, '/v1/frost/sign', { sessions: [{ input: 0, commitmentId: c[0].commitmentId, commitments: c.map((x) => x.commitment) }], request: { action: 'bitcoin.taproot_key_path', psbt, network: 'testnet' } });
    assert.equal(r.status, 400);
    assert.equal(r.json.error.code, 'frost_network_mismatch');
  }
  // Nothing recorded, nothing charged, on any node.
  assert.deepEqual(await Promise.all(NAMES.map(decisions)), before);
});

test('labelled bitcoin, the same spend is judged by the mainnet policy: over the cap, refused', async () => {
  await assert.rejects(coordinator.signTaprootPsbt(mainnetPsbt(900_001n), 'bitcoin'), (e: AirlockError) => {
    assert.equal(e.code, 'policy_denied');
    const rules = (e.violations ?? []).map((v) => `${v.rule} ${v.code}`);
    for (const n of ['alice', 'bob']) assert.ok(rules.includes(`${n}:agent/per-request amount_exceeds_max`), rules.join('; '));
    return true;
  });
  // Under the cap: signed, charged once; the same PSBT again is a replay (no second charge).
  const psbt = mainnetPsbt(5_000n);
  const signed = await coordinator.signTaprootPsbt(psbt, 'bitcoin', { finalize: true });
  assert.deepEqual(signed.signers, ['alice', 'bob']);
  const again = await coordinator.signTaprootPsbt(psbt, 'bitcoin');
  assert.deepEqual(again.signers, ['alice', 'bob']);
  assert.deepEqual((await decisions('bob')).slice(-2).map((d) => d.decision), ['allow', 'replay']);
  // Another label for the charged PSBT is no replay: it is refused for its network, not signed unchecked.
  await assert.rejects(coordinator.signTaprootPsbt(psbt, 'testnet'), (e: AirlockError) => e.code === 'frost_threshold_not_met');
  assert.deepEqual((await decisions('bob')).slice(-1).map((d) => d.decision), ['replay']);
});

test('a node set to another network refuses mainnet PSBTs; an unknown network does not start', async () => {
  // carol's share again, in a second node process set to testnet (a copy of her directory: same share, own ledger).
  cpSync(join(dir, 'carol'), join(dir, 'carol-testnet'), { recursive: true });
  const testnetCarol = await startFrostNode({ dir: join(dir, 'carol-testnet'), passphrase: passphrase('carol'), cluster, policyText: POLICY, token: tokens.carol, network: 'testnet' });
  try {
    const ask = async (network: string) => {
      const c = (await fetch(`${testnetCarol.url}/v1/frost/commit`, { method: 'POST', headers: { authorization: `Bearer ${tokens.carol}` } }).then((r) => r.json())) as any;
      const a = (await call('alice', '/v1/frost/commit', {})).json;
      const res = await fetch(`${testnetCarol.url}/v1/frost/sign`, {
        method: 'POST',
        headers: { authorization: `Bearer ${tokens.carol}` },
        body: JSON.stringify({ sessions: [{ input: 0, commitmentId: c.commitmentId, commitments: [a.commitment, c.commitment] }], request: { action: 'bitcoin.taproot_key_path', psbt: mainnetPsbt(1_000n), network } }),
      });
      return { status: res.status, json: (await res.json()) as any };
    };
    const refused = await ask('bitcoin');
    assert.equal(refused.status, 400);
    assert.equal(refused.json.error.code, 'frost_network_mismatch');
    // Its own network passes the check (and is judged by its policy: no testnet rule caps it here).
    const own = await ask('testnet');
    assert.equal(own.status, 200, JSON.stringify(own.json));
  } finally {
    await testnetCarol.close();
  }
  await assert.rejects(startFrostNode({ dir: join(dir, 'alice'), passphrase: passphrase('alice'), cluster, policyText: POLICY, token: tokens.alice, network: 'dogecoin' }), (e: AirlockError) => e.code === 'invalid_request');
});

test('a replay is keyed by the action too: a message charged under one action is evaluated afresh under another', () => {
  const ledger = new NodeLedger(join(dir, 'ledger-replay.db'));
  try {
    const id = 'ab'.repeat(32);
    ledger.decide([], () => ({ atMs: 1, eventId: id, action: 'nostr.event', decision: 'allow', allowedBy: ['x'], violations: [], policy: 'p', writes: [] }));
    assert.equal(ledger.wasCharged(id, 'nostr.event'), true);
    assert.equal(ledger.wasCharged(id, 'nostr.http_auth'), false);
    // The other action can be charged too (no key collision).
    ledger.decide([], () => ({ atMs: 2, eventId: id, action: 'nostr.http_auth', decision: 'allow', allowedBy: ['x'], violations: [], policy: 'p', writes: [] }));
    assert.equal(ledger.wasCharged(id, 'nostr.http_auth'), true);
  } finally {
    ledger.close();
  }
});

/** An x coordinate below p with no point on secp256k1: passes the hex format, fails to decode. */
function offCurve(): string {
  for (let x = 1; ; x++) {
    const hex = '02' + x.toString(16).padStart(64, '0');
    if (!isCurvePoint(hex)) return hex;
  }
}

test("one node's bad round-one commitment gets that node left out; the honest nodes still sign", async () => {
  const aliceUrl = nodes.get('alice')!.url;
  const bobId = (await call('bob', '/v1/frost/commit', {})).json.commitment.identifier as string;
  const mode = { kind: 'dup' as 'dup' | 'outside' | 'offcurve' };
  // A proxy in front of alice that rewrites her round-one commitment.
  const purl = await listen(
    createServer(async (req, res) => {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const up = await fetch(aliceUrl + req.url, { method: req.method!, headers: { authorization: req.headers.authorization! }, ...(chunks.length ? { body: Buffer.concat(chunks) } : {}) });
      const json: any = await up.json();
      if (req.url === '/v1/frost/commit') {
        if (mode.kind === 'dup') json.commitment.identifier = bobId;
        else if (mode.kind === 'outside') json.commitment.binding = '02' + 'ff'.repeat(32);
        else json.commitment.hiding = offCurve();
      }
      res.writeHead(up.status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(json));
    }),
  );
  const c2 = new FrostCoordinator(cluster, NAMES.map((n) => ({ name: n, url: n === 'alice' ? purl : nodes.get(n)!.url, token: tokens[n] })));
  for (const kind of ['dup', 'outside', 'offcurve'] as const) {
    mode.kind = kind;
    const before = await Promise.all(NAMES.map(decisions));
    const signed = await c2.signNostrEvent(note(`hi ${kind}`));
    assert.deepEqual(signed.signers, ['bob', 'carol'], kind);
    const alice = signed.answers.find((a) => a.node === 'alice')!;
    assert.equal(alice.outcome, 'error');
    assert.equal(alice.code, 'invalid_request');
    // alice was never sent round two: her log is unchanged; bob and carol each recorded one allow.
    const after = await Promise.all(NAMES.map(decisions));
    assert.deepEqual(after[0], before[0]);
    for (const k of [1, 2]) assert.deepEqual(after[k]!.slice(before[k]!.length).map((d) => d.decision), ['allow']);
  }
});

test('a node handed a commitment off the curve answers invalid_request and records nothing', async () => {
  const event = { ...note('off curve'), pubkey: groupKey };
  const before = await decisions('bob');
  for (const bad of [offCurve(), '02' + 'ff'.repeat(32)]) {
    for (const field of ['hiding', 'binding'] as const) {
      const b = (await call('bob', '/v1/frost/commit', {})).json;
      const c = (await call('carol', '/v1/frost/commit', {})).json;
      const list: CommitmentJson[] = [b.commitment, { ...c.commitment, [field]: bad }];
      const r = await call('bob', '/v1/frost/sign', { commitmentId: b.commitmentId, commitments: list, request: { action: 'nostr.event', event } });
      assert.equal(r.status, 400, JSON.stringify(r.json));
      assert.equal(r.json.error.code, 'invalid_request');
      // the PSBT path parses its lists the same way
      const b2 = (await call('bob', '/v1/frost/commit', {})).json;
      const r2 = await call('bob', '/v1/frost/sign', { sessions: [{ input: 0, commitmentId: b2.commitmentId, commitments: [b2.commitment, { ...c.commitment, [field]: bad }] }], request: { action: 'bitcoin.taproot_key_path', psbt: mainnetPsbt(1_000n), network: 'bitcoin' } });
      assert.equal(r2.status, 400, JSON.stringify(r2.json));
      assert.equal(r2.json.error.code, 'invalid_request');
    }
  }
  assert.deepEqual(await decisions('bob'), before);
});

test('a node refuses an oversized body as soon as it passes the limit, without waiting for the rest', async () => {
  const url = new URL('/v1/frost/sign', nodes.get('bob')!.url);
  const status = await new Promise<number>((resolve, reject) => {
    const req = httpRequest(url, { method: 'POST', headers: { authorization: `Bearer ${tokens.bob}`, 'content-type': 'application/json' } }, (res) => {
      res.resume();
      resolve(res.statusCode!);
      req.destroy();
    });
    req.on('error', () => undefined);
    const timer = setTimeout(() => { req.destroy(); reject(new Error('the node waited for the whole (endless) body')); }, 5_000);
    timer.unref();
    // 300 KB of a body that never ends (chunked, no Content-Length).
    req.write('{"pad":"' + 'a'.repeat(300 * 1024));
  });
  assert.equal(status, 413);
  // Declared too large: refused from the header alone.
  const declared = await fetch(url, { method: 'POST', headers: { authorization: `Bearer ${tokens.bob}` }, body: JSON.stringify({ pad: 'a'.repeat(300 * 1024) }) });
  assert.equal(declared.status, 413);
  assert.equal(((await declared.json()) as any).error.code, 'body_too_large');
});

test('the coordinator stops reading a node answer past its limit', async () => {
  // A stand-in node that streams an endless answer.
  const endless = await listen(
    createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"pad":"');
      const chunk = 'a'.repeat(64 * 1024);
      const timer = setInterval(() => res.write(chunk), 1);
      res.on('close', () => clearInterval(timer));
    }),
  );
  const c2 = new FrostCoordinator(cluster, NAMES.map((n) => ({ name: n, url: endless, token: tokens[n] })), { timeoutMs: 30_000 });
  const started = Date.now();
  await assert.rejects(c2.groupPublicPackage(), (e: AirlockError) => e.code === 'frost_key_not_ready');
  assert.ok(Date.now() - started < 10_000, `took ${Date.now() - started} ms`);
});
