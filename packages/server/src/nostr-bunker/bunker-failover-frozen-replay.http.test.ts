// Two instances behind one PostgreSQL store run the bunker. A nostrconnect:// app asks instance A to sign while the
// agent is frozen: refused `agent_frozen`. Found by review: a refusal of the credential check was not kept under the
// request's key (nip46/<client>/<request id>), so once the operator unfroze the agent, the same envelope delivered
// again on instance B was signed and charged, its client told it was refused. It is kept (the signing transaction
// stores a bunker key's credential refusal): B answers the same refusal, audited `sign.replay` deny, nothing signed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { provisionAgent } from '../testing/harness.ts';
import { bunkerPair, rawNip46Client } from './testing/raw-nip46-client.ts';

const policy = { version: 1, rules: [
  { type: 'allow', name: 'notes', match: { actions: ['nostr.event'], nostr_kinds: [1] } },
] };
const nowSeconds = () => Math.floor(Date.now() / 1000);

const pair = bunkerPair();

test('a sign_event refused agent_frozen on instance A, delivered again on instance B after the unfreeze, gets the same refusal and is not signed (postgres)', { timeout: 60_000 }, async () => {
  const { relay, h, adminB, pool } = pair;
  const { agent, session } = await provisionAgent(h, { policy, actions: ['nostr.event'] });
  const issued = await h.admin('POST', `/v1/sessions/${session.id}/nostr-connect`);
  const transport = new URL((issued.body.bunker as string).replace('bunker://', 'http://')).hostname;
  const client = await rawNip46Client(pool, relay, transport);
  const { envelope, send, answerTo, redeliver } = client;
  const note = JSON.stringify({ kind: 1, content: 'sent while frozen', tags: [], created_at: nowSeconds() });
  const uri = client.nostrconnectUri('s3cr3t');
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
