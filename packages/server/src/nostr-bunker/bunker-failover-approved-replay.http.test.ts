// Two instances behind one PostgreSQL store run the bunker. A nostrconnect:// app asks instance A to sign an event a
// policy holds for approval (s1); the operator approves; the app asks again with the same event under a new request id
// (s2) and A answers it from the approval (held-events.ts). Found by review: that answer was not kept under s2's key
// (nip46/<client>/<request id>), so s2 delivered again on instance B ran as a new request and opened a second
// approval for an event already approved and signed. It is kept (SigningService.rememberApprovedAnswer): B answers
// the same signed event, bound to the approval, audited `sign.replay`, with no new decision and no new approval.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { provisionAgent } from '../testing/harness.ts';
import { bunkerPair, rawNip46Client } from './testing/raw-nip46-client.ts';

const policy = { version: 1, rules: [
  { type: 'allow', name: 'profile', match: { actions: ['nostr.event'], nostr_kinds: [0] } },
  { type: 'approval_tier', name: 'profile-by-hand', match: { nostr_kinds: [0] } },
] };
const nowSeconds = () => Math.floor(Date.now() / 1000);

const pair = bunkerPair();

test('a sign_event answered from an approved hold on instance A, delivered again on instance B, gets the same signed event and opens no second approval (postgres)', { timeout: 60_000 }, async () => {
  const { relay, h, adminB, pool } = pair;
  const { agent, session } = await provisionAgent(h, { policy, actions: ['nostr.event'] });
  const issued = await h.admin('POST', `/v1/sessions/${session.id}/nostr-connect`);
  const transport = new URL((issued.body.bunker as string).replace('bunker://', 'http://')).hostname;
  const client = await rawNip46Client(pool, relay, transport);
  const { envelope, send, answerTo, redeliver } = client;
  const profile = JSON.stringify({ kind: 0, content: '{"name":"bot"}', tags: [], created_at: nowSeconds() });
  const uri = client.nostrconnectUri('s3cr3t');
  const audit = async (type: string) =>
    ((await adminB('GET', `/v1/audit?agent=${agent.name}&type=${type}&limit=100`)).body.entries as { decision: string }[]).map((e) => e.decision);

  assert.equal((await h.admin('POST', `/v1/sessions/${session.id}/nostr-connect`, { nostrconnect: uri })).status, 201);
  // s1: held. The operator approves. s2 (same event, new id, as the client is told to do): the signature.
  await send(envelope('s1', 'sign_event', [profile]));
  const held = await answerTo('s1');
  const approvalId = /\(approval (apr_[0-9a-f]+)\)/.exec(held.error ?? '')?.[1];
  assert.ok(approvalId, JSON.stringify(held));
  assert.equal((await h.admin('POST', `/v1/approvals/${approvalId}/approve`)).status, 200);
  const s2 = envelope('s2', 'sign_event', [profile]);
  await send(s2);
  const signed = await answerTo('s2');
  assert.equal(signed.error, undefined, JSON.stringify(signed));
  assert.equal(JSON.parse(signed.result).content, '{"name":"bot"}');
  assert.deepEqual(await audit('sign.request'), ['require_approval']);

  // A goes away; the operator accepts the same app on B; the relay delivers s2 again.
  h.airlock.bunker!.close();
  assert.equal((await adminB('POST', `/v1/sessions/${session.id}/nostr-connect`, { nostrconnect: uri })).status, 201);
  await redeliver(s2);
  const again = await answerTo('s2', 2);

  // The same signed event (its fields in another order: A handed out the approval's stored copy).
  assert.equal(again.error, undefined, JSON.stringify(again));
  assert.deepEqual(JSON.parse(again.result), JSON.parse(signed.result), 'B answers the signed event s2 was first answered');
  assert.deepEqual(await audit('sign.request'), ['require_approval'], 'no second decision for the same event');
  assert.deepEqual(await audit('sign.replay'), ['allow'], 'answered from the store, bound to the approval');
  const approvals = (await adminB('GET', `/v1/approvals?agent=${agent.id}&state=all`)).body.approvals as { id: string; state: string }[];
  assert.deepEqual(approvals.map((a) => [a.id, a.state]), [[approvalId, 'approved']], 'no second approval');
});
