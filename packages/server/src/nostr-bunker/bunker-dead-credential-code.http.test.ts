// A dead credential's sign_event is refused for the credential, whatever the payload, as over HTTP. Found by review:
// sent to the signing service (so its refusal is kept under its key), a malformed event from a frozen agent's client
// was answered invalid_request, the payload decoded before the credential was read again.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { SimplePool } from 'nostr-tools';
import { startTestRelay, type TestRelay } from '../../../../testing/nostr-relay/relay.ts';
import { provisionAgent, startHarness, type Harness } from '../testing/harness.ts';
import { rawNip46Client } from './testing/raw-nip46-client.ts';

const policy = { version: 1, rules: [{ type: 'allow', name: 'notes', match: { actions: ['nostr.event'], nostr_kinds: [1] } }] };
const nowSeconds = () => Math.floor(Date.now() / 1000);

let relay: TestRelay;
let h: Harness;
const pool = new SimplePool();
before(async () => {
  relay = await startTestRelay();
  h = await startHarness({ manualClock: true, config: { nostrRelays: [relay.url] } });
});
after(async () => {
  pool.destroy();
  await h?.close();
  await relay?.close();
});

test('a frozen agent\'s bunker client sending a malformed sign_event is told agent_frozen, as over HTTP', { timeout: 30_000 }, async () => {
  const { agent, session, token } = await provisionAgent(h, { policy, actions: ['nostr.event'] });
  const issued = await h.admin('POST', `/v1/sessions/${session.id}/nostr-connect`);
  const transport = new URL((issued.body.bunker as string).replace('bunker://', 'http://')).hostname;
  const { nostrconnectUri, envelope, send, answerTo } = await rawNip46Client(pool, relay, transport);
  const uri = nostrconnectUri('s3cr3t');
  assert.equal((await h.admin('POST', `/v1/sessions/${session.id}/nostr-connect`, { nostrconnect: uri })).status, 201);
  assert.equal((await h.admin('POST', `/v1/agents/${agent.id}/freeze`, {})).status, 200);

  // A well-formed event: agent_frozen (as intended).
  await send(envelope('ok', 'sign_event', [JSON.stringify({ kind: 1, content: 'x', tags: [], created_at: nowSeconds() })]));
  assert.match((await answerTo('ok')).error ?? '', /^agent_frozen/);

  // A malformed one (kind out of range): the refusal names the input, not the dead credential.
  await send(envelope('bad', 'sign_event', [JSON.stringify({ kind: 70000, content: 'x', tags: [], created_at: nowSeconds() })]));
  const bad = await answerTo('bad');
  // On the old code: invalid_request.
  assert.match(bad.error ?? '', /^agent_frozen/, JSON.stringify(bad));

  // HTTP for comparison: the same malformed event from the same frozen agent is refused agent_frozen.
  const http = await h.call('POST', '/v1/sign/nostr-event', { token, body: { kind: 70000, content: 'x', tags: [], created_at: nowSeconds() } });
  assert.match(JSON.stringify(http.body), /agent_frozen/, `HTTP names the dead credential: ${JSON.stringify(http.body)}`);
});
