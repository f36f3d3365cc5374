// Signer nodes in process (real HTTP on loopback, port 0), driven by the real coordinator: what the node refuses
// and how it records it. The separate-process version of the cluster is cli/src/frost-cluster.process.test.ts.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { DatabaseSync } from 'node:sqlite';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { randomBytes } from 'node:crypto';
import { AirlockError } from '@airlock/core';
import { createNodeState, openNodeState, type CommitmentJson } from '@airlock/keys';
import { FrostCoordinator } from './coordinator.ts';
import { NODE_LEDGER_FILE, NODE_STATE_FILE, startFrostNode, type RunningFrostNode } from './serve-node.ts';

const dir = mkdtempSync(join(tmpdir(), 'airlock-frost-node-'));
const NAMES = ['alice', 'bob', 'carol'] as const;
type Name = (typeof NAMES)[number];
const WEAK = { kdf: { memoryKiB: 64, passes: 1, parallelism: 1 }, allowWeakKdf: true };
const tokens = Object.fromEntries(NAMES.map((n) => [n, randomBytes(16).toString('hex')])) as Record<Name, string>;
const POLICIES: Record<Name, string> = {
  alice: 'version: 1\nrules:\n  - { name: notes, type: allow, match: { nostr_kinds: [1, 7] } }\n',
  // bob: one note a minute; reactions (kind 7) need a human, which a node does not have.
  bob: 'version: 1\nrules:\n  - { name: notes, type: allow, match: { nostr_kinds: [1, 7] } }\n  - { name: one-a-minute, type: rate_limit, max: 1, window: 1m }\n  - { name: reactions-by-hand, type: approval_tier, match: { nostr_kinds: [7] } }\n',
  carol: 'version: 1\nrules:\n  - { name: notes, type: allow, match: { nostr_kinds: [1] } }\n',
};
const nodes = new Map<Name, RunningFrostNode>();
let cluster: { threshold: number; nodes: { name: string; identifier: number; identityKey: string }[] };
let coordinator: FrostCoordinator;
let groupKey: string;

const passphrase = (n: Name) => `passphrase of ${n} node`;

async function start(n: Name): Promise<RunningFrostNode> {
  const node = await startFrostNode({ dir: join(dir, n), passphrase: passphrase(n), cluster, policyText: POLICIES[n], token: tokens[n] });
  nodes.set(n, node);
  return node;
}

async function call(n: Name, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(`${nodes.get(n)!.url}${path}`, { method: body === undefined ? 'GET' : 'POST', headers: { authorization: `Bearer ${tokens[n]}` }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  return { status: res.status, json: await res.json() };
}

const note = (content: string, kind = 1) => ({ kind, tags: [], content, created_at: Math.floor(Date.now() / 1000) });

before(async () => {
  const keys = await Promise.all(
    NAMES.map((n) => {
      mkdirSync(join(dir, n));
      return createNodeState(join(dir, n, NODE_STATE_FILE), n, passphrase(n), WEAK);
    }),
  );
  cluster = { threshold: 2, nodes: NAMES.map((name, i) => ({ name, identifier: i + 1, identityKey: keys[i]! })) };
  await Promise.all(NAMES.map(start));
  coordinator = new FrostCoordinator(cluster, NAMES.map((n) => ({ name: n, url: nodes.get(n)!.url, token: tokens[n] })));
  groupKey = (await coordinator.generateKey()).groupKey;
});

after(async () => {
  await Promise.all([...nodes.values()].map((n) => n.close()));
  rmSync(dir, { recursive: true, force: true });
});

test('the sealed node file: a wrong passphrase or an edited header opens nothing; a node outside the cluster does not start', async () => {
  const path = join(dir, 'alice', NODE_STATE_FILE);
  await assert.rejects(openNodeState(path, 'not the passphrase at all'), (e: AirlockError) => e.code === 'vault_wrong_passphrase');
  const edited = join(dir, 'edited.json');
  writeFileSync(edited, readFileSync(path, 'utf8').replace('"name": "alice"', '"name": "mallory"'));
  await assert.rejects(openNodeState(edited, passphrase('alice')), (e: AirlockError) => e.code === 'vault_wrong_passphrase');
  // A damaged file is vault_corrupt, whichever field is missing or malformed (a TypeError before, an internal error).
  const good = JSON.parse(readFileSync(path, 'utf8')) as Record<string, any>;
  const damaged: Record<string, unknown>[] = [
    { ...good, kdf: undefined },
    { ...good, kdf: null },
    { ...good, kdf: { ...good.kdf, salt: 'not hex' } },
    { ...good, kdf: { ...good.kdf, salt: '00' } },
    { ...good, cipher: undefined },
    { ...good, cipher: { ...good.cipher, nonce: 7 } },
    { ...good, ciphertext: 'zz' },
    { ...good, name: 1 },
  ];
  for (const [i, file] of damaged.entries()) {
    writeFileSync(edited, JSON.stringify(file));
    await assert.rejects(openNodeState(edited, passphrase('alice')), (e: AirlockError) => e.code === 'vault_corrupt', `damaged file ${i}`);
  }
  mkdirSync(join(dir, 'dave'));
  await createNodeState(join(dir, 'dave', NODE_STATE_FILE), 'dave', 'passphrase of dave node', WEAK);
  await assert.rejects(startFrostNode({ dir: join(dir, 'dave'), passphrase: 'passphrase of dave node', cluster, policyText: POLICIES.carol, token: randomBytes(16).toString('hex') }), (e: AirlockError) => e.code === 'invalid_request' && /does not list this node/.test(e.message));
  await assert.rejects(createNodeState(path, 'alice', passphrase('alice'), WEAK), (e: AirlockError) => e.code === 'invalid_request');
});

test('an approval tier on a node refuses; with carol refusing the kind too, nothing is signed', async () => {
  await assert.rejects(coordinator.signNostrEvent(note('+', 7)), (e: AirlockError) => {
    assert.equal(e.code, 'policy_denied');
    const rules = (e.violations ?? []).map((v) => `${v.rule} ${v.code}`);
    assert.ok(rules.includes('bob:agent/reactions-by-hand approval_required'), rules.join('; '));
    assert.ok(rules.includes('carol:agent/default nostr_kind_not_allowed'), rules.join('; '));
    return true;
  });
});

test('a retry of an event a node already approved is not charged twice; a new event over its limit is refused', async () => {
  const first = note('the one note bob allows this minute');
  const signed = await coordinator.signNostrEvent(first);
  assert.deepEqual(signed.signers, ['alice', 'bob']);
  // The same event again (a coordinator retry): bob contributes without a second charge.
  const again = await coordinator.signNostrEvent(first);
  assert.deepEqual(again.signers, ['alice', 'bob']);
  const log = (await call('bob', '/v1/frost/decisions')).json.decisions;
  assert.deepEqual(log.slice(-2).map((d: { decision: string }) => d.decision), ['allow', 'replay']);
  // Another note: bob's own ledger says one this minute; he refuses, carol signs instead.
  const other = await coordinator.signNostrEvent(note('a second note'));
  assert.deepEqual(other.signers, ['alice', 'carol']);
  assert.equal(other.answers.find((a) => a.node === 'bob')?.code, 'policy_denied');
  const last = (await call('bob', '/v1/frost/decisions')).json.decisions.at(-1);
  assert.equal(last.decision, 'deny');
  assert.equal(last.violations[0].rule, 'agent/one-a-minute');
});

test('round two: malformed requests are refused and still spend the nonces', async () => {
  const a = (await call('alice', '/v1/frost/commit', {})).json;
  const c = (await call('carol', '/v1/frost/commit', {})).json;
  const list: CommitmentJson[] = [a.commitment, c.commitment];
  const event = { ...note('x'), pubkey: groupKey };
  const cases: [unknown, string][] = [
    [{ commitmentId: c.commitmentId, commitments: list, request: { action: 'nostr.event', event }, extra: 1 }, 'invalid_request'],
  ];
  for (const [body, code] of cases) {
    const r = await call('carol', '/v1/frost/sign', body);
    assert.equal(r.json.error.code, code);
  }
  // The refused request spent carol's commitment.
  const retry = await call('carol', '/v1/frost/sign', { commitmentId: c.commitmentId, commitments: list, request: { action: 'nostr.event', event } });
  assert.equal(retry.status, 409);
  assert.equal(retry.json.error.code, 'frost_commitment_unknown');

  const decisionsBefore = (await call('carol', '/v1/frost/decisions')).json.decisions.length;
  const refusals: ((c2: { commitmentId: string; commitment: CommitmentJson }) => unknown)[] = [
    // a commitment list naming a node outside the cluster
    (c2) => ({ commitmentId: c2.commitmentId, commitments: [{ ...a.commitment, identifier: 'ff'.repeat(32) }, c2.commitment], request: { action: 'nostr.event', event } }),
    // carol alone (below the threshold)
    (c2) => ({ commitmentId: c2.commitmentId, commitments: [c2.commitment], request: { action: 'nostr.event', event } }),
    // carol's entry replaced by another commitment
    (c2) => ({ commitmentId: c2.commitmentId, commitments: [a.commitment, { ...c2.commitment, hiding: a.commitment.hiding }], request: { action: 'nostr.event', event } }),
    // an event that names another pubkey
    (c2) => ({ commitmentId: c2.commitmentId, commitments: [a.commitment, c2.commitment], request: { action: 'nostr.event', event: { ...event, pubkey: 'ab'.repeat(32) } } }),
    // an event with a field NIP-01 does not have
    (c2) => ({ commitmentId: c2.commitmentId, commitments: [a.commitment, c2.commitment], request: { action: 'nostr.event', event: { ...event, id: 'ab'.repeat(32) } } }),
  ];
  for (const make of refusals) {
    const c2 = (await call('carol', '/v1/frost/commit', {})).json;
    const r = await call('carol', '/v1/frost/sign', make(c2));
    assert.equal(r.status, 400, JSON.stringify(r.json));
    assert.equal(r.json.error.code, 'invalid_request');
  }
  // None of them was recorded or charged: they never reached policy.
  assert.equal((await call('carol', '/v1/frost/decisions')).json.decisions.length, decisionsBefore);
});

test('an edited decision log is detected when read', async () => {
  const before = (await call('carol', '/v1/frost/decisions')).json.decisions;
  assert.ok(before.length > 0);
  const db = new DatabaseSync(join(dir, 'carol', NODE_LEDGER_FILE));
  // Flip the first decision (allow <-> deny), as someone hiding a refusal or an approval would.
  db.prepare(`UPDATE decisions SET entry = CASE WHEN instr(entry, '"deny"') > 0 THEN replace(entry, '"deny"', '"allow"') ELSE replace(entry, '"allow"', '"deny"') END WHERE seq = 1`).run();
  db.close();
  const after = await call('carol', '/v1/frost/decisions');
  assert.equal(after.status, 500);
  assert.equal(after.json.error.code, 'internal');
});
