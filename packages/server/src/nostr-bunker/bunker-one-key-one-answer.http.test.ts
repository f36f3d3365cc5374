// One key, one answer: a sign_event refused agent_frozen (the refusal kept under nip46/<client>/s2 on instance B) and
// sent again with the same request id after the unfreeze to instance A, which holds an approved approval for that
// event in memory, is answered the kept refusal, not the approved event. Found by review: the bunker handed out the
// approved event over the refusal its key kept, so one key got two answers on two instances.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { provisionAgent } from '../testing/harness.ts';
import { bunkerPair, rawNip46Client } from './testing/raw-nip46-client.ts';

const policy = { version: 1, rules: [
  { type: 'allow', name: 'profile', match: { actions: ['nostr.event'], nostr_kinds: [0] } },
  { type: 'approval_tier', name: 'profile-by-hand', match: { nostr_kinds: [0] } },
] };
const nowSeconds = () => Math.floor(Date.now() / 1000);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const pair = bunkerPair();

test('a sign_event refused agent_frozen under its key is answered that refusal again by an instance holding an approval for its event', { timeout: 60_000 }, async () => {
  const { relay, h, b, adminB, pool } = pair;
  const { agent, session } = await provisionAgent(h, { policy, actions: ['nostr.event'] });
  const issued = await h.admin('POST', `/v1/sessions/${session.id}/nostr-connect`);
  const transport = new URL((issued.body.bunker as string).replace('bunker://', 'http://')).hostname;
  const client = await rawNip46Client(pool, relay, transport);
  const { answers, envelope, send, answerTo } = client;
  const profile = JSON.stringify({ kind: 0, content: '{"name":"bot"}', tags: [], created_at: nowSeconds() });
  const uri = client.nostrconnectUri('s3cr3t');
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
