// Two instances behind one PostgreSQL store each run the bunker. Instance A serves a nostrconnect:// app and goes
// away; the operator accepts the same app (same URI: apps keep their key) on instance B. A relay delivering A's
// envelopes again reaches B, whose replay caches (in memory) never saw them. Found by review: B signed and charged a
// sign_event the client had been told A refused. A sign_event is kept in the store under its client and request id,
// so B answers what A answered: the same refusal, or the same signature, nothing charged again (bunker.ts, askToSign).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '@airlock/core';
import { provisionAgent } from '../testing/harness.ts';
import { bunkerPair, rawNip46Client } from './testing/raw-nip46-client.ts';

const policy = { version: 1, rules: [
  { type: 'allow', name: 'notes', match: { actions: ['nostr.event'], nostr_kinds: [1] } },
  { type: 'rate_limit', name: 'one-note-a-minute', max: 1, window: '1m', match: { nostr_kinds: [1] } },
] };
const nowSeconds = () => Math.floor(Date.now() / 1000);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// Instance B: same vault and store, its own bunker, started before A's envelopes are dated; its policy clock a
// minute on (the rate limit alone would let the refused note through on B).
const clockB = new ManualClock(Date.now() + 61_000);
const pair = bunkerPair(clockB);

test('nostrconnect://: envelopes instance A answered, delivered again once the app is accepted on instance B, get the same answers from B and are not charged again (postgres)', { timeout: 60_000 }, async () => {
  const { relay, h, adminB, pool } = pair;
  const started = nowSeconds();
  while (nowSeconds() <= started) await sleep(20);

  const { agent, session } = await provisionAgent(h, { policy, actions: ['nostr.event'] });
  const issued = await h.admin('POST', `/v1/sessions/${session.id}/nostr-connect`);
  const transport = new URL((issued.body.bunker as string).replace('bunker://', 'http://')).hostname;
  const client = await rawNip46Client(pool, relay, transport);
  const { envelope, send, answerTo, redeliver } = client;
  const note = (content: string) => JSON.stringify({ kind: 1, content, tags: [], created_at: nowSeconds() });
  const uri = client.nostrconnectUri('s3cr3t');
  const audit = async (type: string) =>
    ((await adminB('GET', `/v1/audit?agent=${agent.name}&type=${type}&limit=100`)).body.entries as { decision: string }[]).map((e) => e.decision);

  // On instance A: s1 signed, s2 refused by the rate limit.
  assert.equal((await h.admin('POST', `/v1/sessions/${session.id}/nostr-connect`, { nostrconnect: uri })).status, 201);
  const signedEnvelope = envelope('s1', 'sign_event', [note('first')]);
  await send(signedEnvelope);
  const signed = await answerTo('s1');
  assert.equal(JSON.parse(signed.result).content, 'first');
  const refusedEnvelope = envelope('s2', 'sign_event', [note('second')]);
  await send(refusedEnvelope);
  const refused = await answerTo('s2');
  assert.match(refused.error ?? '', /^policy_denied: .*rate_limit_exceeded/, 'the client is told s2 was refused');

  // A fails (its bunker goes away); the operator accepts the same app on B.
  h.airlock.bunker!.close();
  const accepted = await adminB('POST', `/v1/sessions/${session.id}/nostr-connect`, { nostrconnect: uri });
  assert.equal(accepted.status, 201, JSON.stringify(accepted.body));

  await redeliver(refusedEnvelope);
  assert.deepEqual(await answerTo('s2', 2), refused, 'B answers the refusal A gave, and signs nothing');
  await redeliver(signedEnvelope);
  assert.deepEqual(await answerTo('s1', 2), signed, 'B answers the signature A made, byte for byte');
  assert.deepEqual(await audit('sign.request'), ['allow', 'deny'], 'nothing charged again');
  assert.deepEqual((await audit('sign.replay')).sort(), ['allow', 'deny']);

  // The app is served on B as before: a new request (new id) signs (once the minute the replayed signature counts in
  // for the rate limit has passed: a replay counts as a request released, as an HTTP retry does).
  clockB.advance(61_000);
  await send(envelope('s3', 'sign_event', [note('third')]));
  const third = await answerTo('s3');
  assert.equal(third.error, undefined, JSON.stringify(third));
  assert.equal(JSON.parse(third.result).content, 'third');
  assert.deepEqual(await audit('sign.request'), ['allow', 'deny', 'allow']);
});
