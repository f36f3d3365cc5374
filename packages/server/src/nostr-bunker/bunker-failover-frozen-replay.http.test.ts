// Two instances behind one PostgreSQL store run the bunker. A nostrconnect:// app asks instance A to sign while the
// agent is frozen: refused `agent_frozen`. Found by review: a refusal of the credential check was not kept under the
// request's key (nip46/<client>/<request id>), so once the operator unfroze the agent, the same envelope delivered
// again on instance B was signed and charged, its client told it was refused. It is kept (the signing transaction
// stores a bunker key's credential refusal): B answers the same refusal, audited `sign.replay` deny, nothing signed.
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
  { type: 'allow', name: 'notes', match: { actions: ['nostr.event'], nostr_kinds: [1] } },
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

test('a sign_event refused agent_frozen on instance A, delivered again on instance B after the unfreeze, gets the same refusal and is not signed (postgres)', { timeout: 60_000 }, async () => {
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
  const note = JSON.stringify({ kind: 1, content: 'sent while frozen', tags: [], created_at: nowSeconds() });
  const uri = `nostrconnect://${getPublicKey(sk)}?relay=${encodeURIComponent(relay.url)}&secret=s3cr3t`;
  const audit = async (type: string) =>
    ((await adminB('GET', `/v1/audit?agent=${agent.name}&type=${type}&limit=100`)).body.entries as { decision: string }[]).map((e) => e.decision);

  assert.equal((await h.admin('POST', `/v1/sessions/${session.id}/nostr-connect`, { nostrconnect: uri })).status, 201);
  assert.equal((await h.admin('POST', `/v1/agents/${agent.id}/freeze`, {})).status, 200);
  const s1 = envelope('s1', 'sign_event', [note]);
  await send(s1);
  const refused = await answerTo('s1');
  assert.match(refused.error ?? '', /agent_frozen/, JSON.stringify(refused));

  // The incident is handled; the operator unfreezes. A goes away, the app is accepted on B, the relay delivers s1 again.
  assert.equal((await h.admin('POST', `/v1/agents/${agent.id}/unfreeze`, {})).status, 200);
  h.airlock.bunker!.close();
  assert.equal((await adminB('POST', `/v1/sessions/${session.id}/nostr-connect`, { nostrconnect: uri })).status, 201);
  await redeliver(s1);
  const again = await answerTo('s1', 2);

  assert.deepEqual(again, refused, 'B answers the refusal A gave');
  assert.match(again.error ?? '', /^agent_frozen: /);
  assert.deepEqual(await audit('sign.request'), ['error'], 'no decision to sign the refused request id');
  assert.deepEqual(await audit('sign.replay'), ['deny'], 'answered from the store');

  // The app is served on B as before: a new request (new id) signs.
  const fresh = envelope('s2', 'sign_event', [note]);
  await send(fresh);
  const signed = await answerTo('s2');
  assert.equal(signed.error, undefined, JSON.stringify(signed));
  assert.equal(JSON.parse(signed.result).content, 'sent while frozen');
});
