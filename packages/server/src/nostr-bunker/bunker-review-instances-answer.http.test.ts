// Two instances behind one PostgreSQL store each run the bunker, and both listen on an agent's transport key: the
// operator issued a connection string for one session on A and one for another session of the same agent on B.
// An app connects with A's secret and signs. Found by review: B, which holds neither that secret nor that client,
// answered `unauthorized` to each envelope, usually before A (no store read); nostr-tools' BunkerSigner takes the
// first answer per request id, so the app was told signatures A had made and charged were refused, retried, and was
// charged again. An instance now drops, unanswered, what it does not hold (bunker.ts, dropUnknown).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { verifyEvent, type Event } from 'nostr-tools';
import { provisionAgent } from '../testing/harness.ts';
import { bunkerPair, rawNip46Client } from './testing/raw-nip46-client.ts';

const policy = { version: 1, rules: [{ type: 'allow', name: 'notes', match: { actions: ['nostr.event'], nostr_kinds: [1] } }] };
const nowSeconds = () => Math.floor(Date.now() / 1000);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const pair = bunkerPair();

test('a client connected through instance A gets only A\'s answers, none from B listening on the same key, and each event is charged once (postgres)', { timeout: 60_000 }, async () => {
  const { relay, h, b, adminB, pool } = pair;
  const { agent, session } = await provisionAgent(h, { policy, actions: ['nostr.event'] });
  const other = await h.admin('POST', `/v1/agents/${agent.name}/sessions`, { actions: ['nostr.event'], ttl: '1h' });
  assert.equal(other.status, 201, JSON.stringify(other.body));
  // B holds a secret of the agent's other session, so it listens on the transport key too.
  assert.equal((await adminB('POST', `/v1/sessions/${other.body.session.id}/nostr-connect`)).status, 201);
  const issued = await h.admin('POST', `/v1/sessions/${session.id}/nostr-connect`);
  assert.equal(issued.status, 201, JSON.stringify(issued.body));
  const bunker = new URL((issued.body.bunker as string).replace('bunker://', 'http://'));
  const transport = bunker.hostname;
  const secret = bunker.searchParams.get('secret')!;

  const { answers, envelope, send, answerTo } = await rawNip46Client(pool, relay, transport);
  const note = (content: string) => JSON.stringify({ kind: 1, content, tags: [], created_at: nowSeconds() });
  const bStats = b.bunker!.stats;
  const bBefore = { ...bStats };

  await send(envelope('c1', 'connect', [transport, secret]));
  assert.equal((await answerTo('c1')).result, 'ack');
  await send(envelope('s1', 'sign_event', [note('first')]));
  const first = await answerTo('s1');
  await send(envelope('s2', 'sign_event', [note('second')]));
  const second = await answerTo('s2');
  for (const [answer, content] of [[first, 'first'], [second, 'second']] as const) {
    assert.equal(answer.error, undefined, JSON.stringify(answer));
    const event = JSON.parse(answer.result) as Event;
    assert.equal(event.content, content);
    assert.equal(verifyEvent(event), true);
  }

  // B saw and judged all three envelopes (dropped: it holds neither the secret nor the client); before the fix it
  // answered each `unauthorized`, a second answer per request id.
  const deadline = Date.now() + 15_000;
  while ((bStats.droppedUnknown ?? 0) - (bBefore.droppedUnknown ?? 0) < 3 && answers.length <= 3) {
    if (Date.now() > deadline) assert.fail(`B did not judge the envelopes: ${JSON.stringify(bStats)}`);
    await sleep(20);
  }
  await sleep(200);
  assert.deepEqual(answers.map((a) => [a.id, a.error ?? 'ok']), [['c1', 'ok'], ['s1', 'ok'], ['s2', 'ok']], 'one answer per request, all from A');
  assert.deepEqual([bStats.refused, bStats.answered], [bBefore.refused, bBefore.answered], 'B answered nothing');

  // Charged once per event: two allowed signatures, no replay.
  const entries = (await h.admin('GET', `/v1/audit?agent=${agent.name}&limit=100`)).body.entries as { type: string; decision?: string }[];
  assert.deepEqual(entries.filter((e) => e.type === 'sign.request').map((e) => e.decision), ['allow', 'allow']);
  assert.equal(entries.filter((e) => e.type === 'sign.replay').length, 0);
  // B's refusals are on the record all the same, as one tally for keys not connected there.
  await b.bunker!.flushRefusals(true);
  const failures = ((await adminB('GET', '/v1/audit?type=auth.failures&limit=100')).body.entries as { data: { source: string; codes: Record<string, number> } }[])
    .filter((e) => e.data.source === `nostr:unconnected:${transport}`);
  assert.deepEqual(failures.map((e) => e.data.codes), [{ unauthorized: 3 }]);
});
