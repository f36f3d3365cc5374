// An agent whose Nostr key is a 2-of-3 FROST cluster's group key, signing through the daemon's normal Nostr route:
// three `airlock frost node` processes and `airlock start`, the operator binding the agent with
// `airlock agent nostr-threshold`, the agent signing over plain HTTP and with the SDK's Nostr signer. Events are
// checked with nostr-tools' verifyEvent under the group key. Then what must hold: the daemon's policy refuses first
// (no node is asked: their decision logs stay as they were), two refusing nodes refuse the event with their rules
// named and nothing released, one node down still signs, an idempotent retry returns the same bytes without asking
// the nodes again (FROST signatures are not deterministic), and the nodes' tokens appear in no output or audit entry.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { generateSecretKey, verifyEvent } from 'nostr-tools/pure';
import { SimplePool } from 'nostr-tools/pool';
import { BunkerSigner, parseBunkerInput } from 'nostr-tools/nip46';
import { startTestRelay, type TestRelay } from '../../../testing/nostr-relay/relay.ts';
import * as nip19 from 'nostr-tools/nip19';
import { AirlockPolicyError } from '@airlock/sdk';
import { airlockNostrSigner } from '@airlock/sdk/nostr';
import { adminClient, httpJson, prepareDaemonData, readWholeAudit, type DaemonData } from '../../server/src/testing/processes.ts';
import { cliEnv, runCli, startDaemon, transcript, type Daemon } from './testing/cli-process.ts';
import { frostTestCluster } from './testing/frost-cluster.ts';

const dir = mkdtempSync(join(tmpdir(), 'airlock-frost-daemon-'));
const env = cliEnv();
type Name = 'alice' | 'bob' | 'carol';

// Every node signs notes (kind 1); bob and carol never one that says "node-forbidden" (alice does: she is lax).
const NODE_POLICIES: Record<Name, string> = {
  alice: 'version: 1\nrules:\n  - { name: notes, type: allow, match: { nostr_kinds: [1] } }\n',
  bob: 'version: 1\nrules:\n  - { name: notes, type: allow, match: { nostr_kinds: [1] } }\n  - { name: clean, type: nostr_event, deny_content_pattern: "node-forbidden" }\n',
  carol: 'version: 1\nrules:\n  - { name: notes, type: allow, match: { nostr_kinds: [1] } }\n  - { name: clean, type: nostr_event, deny_content_pattern: "node-forbidden" }\n',
};
// The daemon's own policy for the agent: notes only (a reaction, kind 7, is refused here before any node).
const DAEMON_POLICY = { version: 1, rules: [{ type: 'allow', name: 'notes', match: { actions: ['nostr.event'], nostr_kinds: [1] } }] };

const cluster = frostTestCluster<Name>(dir, env, NODE_POLICIES);
let data: DaemonData;
let daemon: Daemon;
let admin: ReturnType<typeof adminClient>;
let groupKey = '';
let sessionToken = '';
let sessionId = '';
let relay: TestRelay;
const pool = new SimplePool();

const note = (content: string, kind = 1) => ({ kind, tags: [['t', 'frost']], content, created_at: Math.floor(Date.now() / 1000) });
const signHttp = (event: unknown, headers: Record<string, string> = {}) => httpJson(daemon.url, 'POST', '/v1/sign/nostr-event', { token: sessionToken, body: event, headers });

/** How many decisions each node has recorded (a node asked to sign records one, allowed or refused). */
async function nodeDecisionCounts(): Promise<Record<Name, number>> {
  const counts = await Promise.all(cluster.names.map(async (n) => (await cluster.call(n, '/v1/frost/decisions')).json.decisions.length as number));
  return Object.fromEntries(cluster.names.map((n, i) => [n, counts[i]!])) as Record<Name, number>;
}

before(async () => {
  await cluster.init();
  await Promise.all(cluster.names.map((n) => cluster.startNode(n)));
  const [key, prepared, started] = await Promise.all([cluster.generateKey(), prepareDaemonData('sqlite'), startTestRelay()]);
  groupKey = key;
  data = prepared;
  relay = started;
  // With a relay, the daemon runs its NIP-46 bunker too.
  daemon = await startDaemon(cliEnv({ AIRLOCK_DATA_DIR: data.dataDir, AIRLOCK_STORE: data.storeUrl, AIRLOCK_PASSPHRASE: data.passphrase, AIRLOCK_NOSTR_RELAYS: relay.url }));
  admin = adminClient(daemon.url, data.adminToken);
  assert.equal((await admin('POST', '/v1/agents', { names: ['frost-bot'] })).status, 201);
  assert.equal((await admin('PUT', '/v1/policies/frost-bot', { document: DAEMON_POLICY })).status, 200);
  const issued = await admin('POST', '/v1/agents/frost-bot/sessions', { ttl: '1h', actions: ['nostr.event', 'nostr.nip44'] });
  assert.equal(issued.status, 201, JSON.stringify(issued.body));
  sessionToken = issued.body.token;
  sessionId = issued.body.session.id;
});

after(async () => {
  pool.destroy();
  await daemon?.stop();
  await relay?.close();
  await cluster.stopAll();
  await data?.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

test('the operator binds the agent to the cluster: its Nostr pubkey is the group key everywhere; no token is shown or audited', async (t) => {
  const vaultKey = (await httpJson(daemon.url, 'GET', '/v1/nostr/identity', { token: sessionToken })).body.pubkey;
  assert.notEqual(vaultKey, groupKey);

  const cliEnvAdmin = cliEnv({ AIRLOCK_URL: daemon.url, AIRLOCK_ADMIN_TOKEN: data.adminToken });
  // A wrong expected group key is refused and binds nothing.
  const wrong = await runCli(['agent', 'nostr-threshold', 'frost-bot', '--cluster', cluster.clusterFile, '--coordinator-config', cluster.writeNodesFile('nodes.json'), '--group-key', vaultKey], cliEnvAdmin);
  assert.equal(wrong.code, 1);
  assert.match(wrong.stderr, /frost_dkg_failed/);
  assert.equal((await admin('GET', '/v1/agents/frost-bot/nostr/threshold')).status, 404);

  const bound = await runCli(['agent', 'nostr-threshold', 'frost-bot', '--json', '--cluster', cluster.clusterFile, '--coordinator-config', join(dir, 'nodes.json'), '--group-key', groupKey], cliEnvAdmin);
  assert.equal(bound.code, 0, bound.stderr);
  t.diagnostic(`airlock agent nostr-threshold: ${wrong.ms.toFixed(0)} ms refused, ${bound.ms.toFixed(0)} ms bound (process start included)`);
  const binding = JSON.parse(bound.stdout);
  assert.equal(binding.groupKey, groupKey);
  assert.equal(binding.threshold, 2);
  assert.deepEqual(binding.nodes.map((n: { name: string }) => n.name), ['alice', 'bob', 'carol']);

  const session = (await httpJson(daemon.url, 'GET', '/v1/session', { token: sessionToken })).body;
  assert.equal(session.agent.nostr.pubkey, groupKey);
  assert.equal(session.agent.nostr.npub, nip19.npubEncode(groupKey));
  assert.equal((await httpJson(daemon.url, 'GET', '/v1/nostr/identity', { token: sessionToken })).body.pubkey, groupKey);
  assert.equal((await admin('GET', '/v1/agents/frost-bot')).body.nostr.pubkey, groupKey);

  // No whole key exists for the identity: the offline export refuses (and prints nothing secret).
  const exported = await runCli(['agent', 'nostr-export', 'frost-bot'], cliEnv({ AIRLOCK_DATA_DIR: data.dataDir, AIRLOCK_STORE: data.storeUrl }));
  assert.equal(exported.code, 1);
  assert.match(exported.stderr, /threshold cluster/);
  assert.doesNotMatch(exported.stdout, /ncryptsec/);

  const [entry] = await readWholeAudit(daemon.url, data.adminToken, 'type=agent.threshold_bound');
  assert.equal(entry.data.groupKey, groupKey);
  assert.equal(entry.data.nodes.length, 3);
  const audit = JSON.stringify(await readWholeAudit(daemon.url, data.adminToken));
  const shown = JSON.stringify(await admin('GET', '/v1/agents/frost-bot/nostr/threshold'));
  for (const token of Object.values(cluster.tokens)) {
    assert.ok(!audit.includes(token), 'a node token is in the audit log');
    assert.ok(!shown.includes(token), 'a node token is shown by GET');
    assert.ok(!bound.stdout.includes(token) && !bound.stderr.includes(token), 'a node token is printed by the CLI');
  }
});

test('the agent signs a note over HTTP and with the SDK signer; nostr-tools verifies it under the group key', async (t) => {
  const before = await nodeDecisionCounts();
  const r = await signHttp(note('hello from a threshold key'));
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.event.pubkey, groupKey);
  assert.equal(verifyEvent({ ...r.body.event }), true, 'nostr-tools verifyEvent');
  const after = await nodeDecisionCounts();
  // Exactly two nodes (the threshold) were asked, each recorded its decision.
  assert.equal(Object.values(after).reduce((a, b) => a + b, 0) - Object.values(before).reduce((a, b) => a + b, 0), 2);

  const signer = await airlockNostrSigner({ url: daemon.url, token: sessionToken });
  assert.equal(await signer.getPublicKey(), groupKey);
  const viaSdk = await signer.signEvent(note('and through the SDK'));
  assert.equal(viaSdk.pubkey, groupKey);
  assert.equal(verifyEvent({ ...viaSdk }), true);

  // Latency as the agent sees it: the daemon's decision and commit, both FROST rounds with two node processes.
  const times: number[] = [];
  for (let i = 0; i < 10; i++) {
    const started = performance.now();
    const r = await signHttp(note(`latency ${i}`));
    times.push(performance.now() - started);
    assert.equal(r.status, 200);
  }
  times.sort((a, b) => a - b);
  t.diagnostic(`threshold-signed note through POST /v1/sign/nostr-event: median ${times[5]!.toFixed(1)} ms, max ${times[9]!.toFixed(1)} ms over 10`);
});

test('NIP-46: a bunker client (nostr-tools BunkerSigner) gets the group key and a threshold-signed event', async () => {
  const connect = await admin('POST', `/v1/sessions/${sessionId}/nostr-connect`);
  assert.equal(connect.status, 201, JSON.stringify(connect.body));
  const pointer = await parseBunkerInput(connect.body.bunker);
  assert.ok(pointer);
  const signer = BunkerSigner.fromBunker(generateSecretKey(), pointer, { pool });
  try {
    await signer.connect();
    assert.equal(await signer.getPublicKey(), groupKey);
    const signed = await signer.signEvent(note('signed over NIP-46 by a cluster'));
    assert.equal(signed.pubkey, groupKey);
    assert.equal(verifyEvent(signed), true);
  } finally {
    await signer.close();
  }
});

test("the daemon's policy refuses first: no node is asked", async () => {
  const before = await nodeDecisionCounts();
  const r = await signHttp(note('+', 7));
  assert.equal(r.status, 403);
  assert.equal(r.body.error.code, 'policy_denied');
  assert.match(r.body.error.violations[0].rule, /^agent\//);
  assert.deepEqual(await nodeDecisionCounts(), before, 'a node recorded a decision for a request the daemon refused');
});

test('two nodes refuse: the agent gets policy_denied naming their rules, nothing is released, the failure is audited', async () => {
  const r = await signHttp(note('this is node-forbidden content'));
  assert.equal(r.status, 403, JSON.stringify(r.body));
  assert.equal(r.body.error.code, 'policy_denied');
  assert.equal(r.body.event, undefined);
  const rules = r.body.error.violations.map((v: { rule: string }) => v.rule).sort();
  assert.deepEqual(rules, ['bob:agent/clean', 'carol:agent/clean']);
  assert.ok(r.body.error.violations.every((v: { code: string }) => v.code === 'nostr_content_not_allowed'));
  // The daemon allowed and recorded it first, then recorded the failure with the nodes' rules.
  const failed = (await readWholeAudit(daemon.url, data.adminToken, 'type=sign.failed')).at(-1);
  assert.equal(failed.data.errorCode, 'policy_denied');
  assert.deepEqual(failed.data.violations.map((v: { rule: string }) => v.rule).sort(), rules);

  // Through the SDK: a policy error with the same rules.
  const signer = await airlockNostrSigner({ url: daemon.url, token: sessionToken });
  await assert.rejects(signer.signEvent(note('more node-forbidden content')), (e: unknown) => e instanceof AirlockPolicyError && e.violations.some((v) => v.rule === 'bob:agent/clean'));
});

test('an idempotent retry returns the same bytes without asking the nodes again', async () => {
  const event = note('say it once');
  const first = await signHttp(event, { 'idempotency-key': 'frost-once' });
  assert.equal(first.status, 200, JSON.stringify(first.body));
  const counts = await nodeDecisionCounts();
  const again = await signHttp(event, { 'idempotency-key': 'frost-once' });
  assert.equal(again.status, 200);
  assert.equal(again.body.replayed, true);
  assert.deepEqual(again.body.event, first.body.event, 'a replay is byte-identical');
  assert.equal(verifyEvent({ ...again.body.event }), true);
  assert.deepEqual(await nodeDecisionCounts(), counts, 'the replay asked the nodes for a second signature');
});

test('one node down: the other two sign; NIP-44 is refused for a threshold key', async () => {
  await cluster.stopNode('bob');
  try {
    const r = await signHttp(note('bob is down'));
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(verifyEvent({ ...r.body.event }), true);
  } finally {
    await cluster.startNode('bob');
  }
  const nip44 = await httpJson(daemon.url, 'POST', '/v1/nostr/nip44/encrypt', { token: sessionToken, body: { peer: groupKey, plaintext: 'hi' } });
  assert.equal(nip44.status, 400);
  assert.equal(nip44.body.error.code, 'unsupported_action');
});

test('a note held for a human is signed by the cluster when the operator approves it', async () => {
  const held = { version: 1, rules: [...DAEMON_POLICY.rules, { type: 'approval_tier', name: 'by-hand', match: { nostr_kinds: [1] } }] };
  assert.equal((await admin('PUT', '/v1/policies/frost-bot', { document: held })).status, 200);
  try {
    const r = await signHttp(note('approved by a human, signed by two nodes'));
    assert.equal(r.status, 202, JSON.stringify(r.body));
    const approved = await admin('POST', `/v1/approvals/${r.body.approvalId}/approve`);
    assert.equal(approved.status, 200, JSON.stringify(approved.body));
    assert.equal(approved.body.result.event.pubkey, groupKey);
    assert.equal(approved.body.result.event.content, 'approved by a human, signed by two nodes');
    assert.equal(verifyEvent({ ...approved.body.result.event }), true);
  } finally {
    assert.equal((await admin('PUT', '/v1/policies/frost-bot', { document: DAEMON_POLICY })).status, 200);
  }
});

test('unbinding gives the agent its vault key back; no node token ever reached a terminal', async () => {
  const removed = await admin('DELETE', '/v1/agents/frost-bot/nostr/threshold');
  assert.equal(removed.status, 200);
  const identity = (await httpJson(daemon.url, 'GET', '/v1/nostr/identity', { token: sessionToken })).body.pubkey;
  assert.notEqual(identity, groupKey);
  const r = await signHttp(note('back on the vault key'));
  assert.equal(r.status, 200);
  assert.equal(r.body.event.pubkey, identity);
  const printed = transcript.join('\n') + daemon.output();
  for (const token of Object.values(cluster.tokens)) assert.ok(!printed.includes(token), 'a node token was printed');
});
