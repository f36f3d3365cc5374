// A relay URL in AIRLOCK_NOSTR_RELAYS may carry an access token in its query. Clients connect to the relays
// themselves, so the whole URL, token included, is handed to every app given a connection string (the bunker://
// string, the route's `relays`, the `switch_relays` answer): a relay credential there is shared with them
// (docs/nostr.md, "Configure relays"; docs/operations.md). The audit log never records it (relayLabel elsewhere).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateSecretKey, SimplePool, verifyEvent } from 'nostr-tools';
import { BunkerSigner, parseBunkerInput } from 'nostr-tools/nip46';
import { startTestRelay, type TestRelay } from '../../../../testing/nostr-relay/relay.ts';
import { provisionAgent, startHarness, type Harness } from '../testing/harness.ts';

const TOKEN = 'relay-access-token-5f1c9a';
let relay: TestRelay;
let h: Harness;
let relayUrl: string;
const pool = new SimplePool();
before(async () => {
  relay = await startTestRelay();
  relayUrl = `${relay.url}/?auth=${TOKEN}`;
  h = await startHarness({ config: { nostrRelays: [relayUrl] } });
});
after(async () => {
  pool.destroy();
  await h?.close();
  await relay?.close();
});

test('the whole relay URL, access token included, is handed to the app that connects (it needs it to reach the relay); the audit log never has it', { timeout: 60_000 }, async () => {
  const { session } = await provisionAgent(h, { policy: { version: 1, rules: [{ type: 'allow', name: 'notes', match: { actions: ['nostr.event'], nostr_kinds: [1] } }] }, actions: ['nostr.event'] });
  const res = await h.admin('POST', `/v1/sessions/${session.id}/nostr-connect`);
  assert.equal(res.status, 201, JSON.stringify(res.body));
  assert.deepEqual(res.body.relays, [relayUrl]);
  const bp = await parseBunkerInput(res.body.bunker);
  assert.ok(bp);
  assert.deepEqual(bp.relays, [relayUrl], 'the bunker:// string names the relay as configured');

  // The app reaches the relay through the URL it was given, and is served.
  const signer = BunkerSigner.fromBunker(generateSecretKey(), bp, { pool });
  try {
    await signer.connect();
    assert.equal(verifyEvent(await signer.signEvent({ kind: 1, content: 'via a token-gated relay', tags: [], created_at: Math.floor(Date.now() / 1000) })), true);
    assert.deepEqual(JSON.parse(await signer.sendRequest('switch_relays', [])), [relayUrl], 'switch_relays answers the configured URLs too');
  } finally {
    await signer.close();
  }

  const audit = await h.admin('GET', '/v1/audit?limit=1000');
  assert.equal(audit.status, 200);
  assert.ok(audit.body.entries.some((e: { type: string }) => e.type === 'nostr.connection_issued'));
  assert.ok(!JSON.stringify(audit.body).includes(TOKEN), 'the relay token is in no audit entry');
});
