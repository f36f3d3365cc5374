// One key, one answer: a sign_event refused agent_frozen (the refusal kept under nip46/<client>/s2 on instance B) and
// sent again with the same request id after the unfreeze to instance A, which holds an approved approval for that
// event in memory, is answered the kept refusal, not the approved event. Found by review: the bunker handed out the
// approved event over the refusal its key kept, so one key got two answers on two instances.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { finalizeEvent, generateSecretKey, getPublicKey, nip44, SimplePool, type Event } from 'nostr-tools';
import { ManualClock } from '@airlock/core';
import { startTestRelay, type TestRelay } from '../../../../testing/nostr-relay/relay.ts';
import { createApp } from '../http/app.ts';
import { AirlockHolder } from '../http/holder.ts';
import { openAirlock, type Airlock } from '../runtime.ts';
import { TEST_PASSPHRASE, TEST_VAULT, provisionAgent, startHarness, type Harness } from '../testing/harness.ts';

type Answer = { id: string; result: string; error?: string };
const policy = { version: 1, rules: [
  { type: 'allow', name: 'profile', match: { actions: ['nostr.event'], nostr_kinds: [0] } },
  { type: 'approval_tier', name: 'profile-by-hand', match: { nostr_kinds: [0] } },
] };
const nowSeconds = () => Math.floor(Date.now() / 1000);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let relay: TestRelay;
let h: Harness;
let b: Airlock;
let adminB: (method: string, path: string, body?: unknown) => Promise<{ status: number; body: any }>;
const pool = new SimplePool();
before(async () => {
  relay = await startTestRelay();
  h = await startHarness({ store: 'postgres', manualClock: true, config: { nostrRelays: [relay.url] } });
  b = await openAirlock(h.config, TEST_PASSPHRASE, { vault: TEST_VAULT, timers: false, clock: new ManualClock(Date.now()) });
  const app = createApp(new AirlockHolder(b), { bodyLimitBytes: h.config.bodyLimitBytes, sessionRate: { perSecond: 0, burst: 0 } });
  adminB = async (method, path, body) => {
    const res = await app.request(path, { method, headers: { authorization: `Bearer ${h.adminToken}`, 'content-type': 'application/json' }, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };
});
after(async () => {
  pool.destroy();
  await b?.close();
  await h?.close();
  await relay?.close();
});

test('a sign_event refused agent_frozen under its key is answered that refusal again by an instance holding an approval for its event', { timeout: 60_000 }, async () => {
  const { agent, session } = await provisionAgent(h, { policy, actions: ['nostr.event'] });
  const issued = await h.admin('POST', `/v1/sessions/${session.id}/nostr-connect`);
  const transport = new URL((issued.body.bunker as string).replace('bunker://', 'http://')).hostname;
  const sk = generateSecretKey();
  const key = nip44.getConversationKey(sk, transport);
  const answers: Answer[] = [];
  pool.subscribe([relay.url], { kinds: [24133], authors: [transport], '#p': [getPublicKey(sk)], limit: 0 }, { onevent: (e: Event) => { answers.push(JSON.parse(nip44.decrypt(e.content, key))); } });
  await sleep(200);
  const envelope = (id: string, method: string, params: string[]) => finalizeEvent({ kind: 24133, tags: [['p', transport]], content: nip44.encrypt(JSON.stringify({ id, method, params }), key), created_at: nowSeconds() }, sk);
  const send = async (e: Event) => { await Promise.any(pool.publish([relay.url], e)); };
  const answerTo = async (id: string, nth = 1): Promise<Answer> => {
    const deadline = Date.now() + 15_000;
    for (;;) {
      const found = answers.filter((a) => a.id === id);
      if (found.length >= nth) return found[nth - 1]!;
      if (Date.now() > deadline) assert.fail(`no answer #${nth} to ${id}`);
      await sleep(20);
    }
  };
  const redeliver = async (e: Event) => {
    relay.careless = true;
    try { await send(e); } finally { relay.careless = false; }
  };
  const profile = JSON.stringify({ kind: 0, content: '{"name":"bot"}', tags: [], created_at: nowSeconds() });
  const uri = `nostrconnect://${getPublicKey(sk)}?relay=${encodeURIComponent(relay.url)}&secret=s3cr3t`;
  const audit = async (type: string) =>
    ((await adminB('GET', `/v1/audit?agent=${agent.name}&type=${type}&limit=100`)).body.entries as { decision: string }[]).map((e) => e.decision);

  // A accepts the app; s1 is held; the operator approves (A remembers the hold in memory).
  assert.equal((await h.admin('POST', `/v1/sessions/${session.id}/nostr-connect`, { nostrconnect: uri })).status, 201);
  await send(envelope('s1', 'sign_event', [profile]));
  const held = await answerTo('s1');
  const approvalId = /\(approval (apr_[0-9a-f]+)\)/.exec(held.error ?? '')?.[1];
  assert.ok(approvalId, JSON.stringify(held));
  assert.equal((await h.admin('POST', `/v1/approvals/${approvalId}/approve`)).status, 200);
  // The app logs out of A and is accepted on B. The agent is frozen; s2 (same event) is refused on B and kept.
  await send(envelope('lo', 'logout', []));
  await answerTo('lo');
  assert.equal((await adminB('POST', `/v1/sessions/${session.id}/nostr-connect`, { nostrconnect: uri })).status, 201);
  assert.equal((await h.admin('POST', `/v1/agents/${agent.id}/freeze`, {})).status, 200);
  await send(envelope('s2', 'sign_event', [profile]));
  const deadline = Date.now() + 15_000;
  while (!answers.some((a) => a.id === 's2' && /agent_frozen/.test(a.error ?? ''))) {
    if (Date.now() > deadline) assert.fail(`no agent_frozen answer to s2: ${JSON.stringify(answers)}`);
    await sleep(20);
  }
  // Unfreeze; B goes away; A accepts the app again; the app sends s2 again (same id, same event).
  assert.equal((await h.admin('POST', `/v1/agents/${agent.id}/unfreeze`, {})).status, 200);
  b.bunker!.close();
  assert.equal((await h.admin('POST', `/v1/sessions/${session.id}/nostr-connect`, { nostrconnect: uri })).status, 201);
  const before = answers.filter((a) => a.id === 's2').length;
  await send(envelope('s2', 'sign_event', [profile]));
  const again = await answerTo('s2', before + 1);
  // On the old code: the approved event, signed, under a key whose kept answer is agent_frozen.
  assert.equal(again.result, '', JSON.stringify(again));
  assert.match(again.error ?? '', /^agent_frozen/, JSON.stringify(again));
  const all = (await h.admin('GET', `/v1/audit?agent=${agent.id}&limit=100`)).body.entries as { type: string; decision?: string; data?: { errorCode?: string } }[];
  assert.deepEqual(all.filter((e) => e.type === 'sign.replay').map((e) => e.decision), ['deny'], 'answered from the kept refusal');
});
