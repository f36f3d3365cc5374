// A NIP-46 `sign_event` is judged by the same nostr_event rules as POST /v1/sign/nostr-event: the secret filter
// (`deny_content_pattern: "(?i:nsec1|ncryptsec1)"`) and `max_tag_bytes` see every element of a tag, its name too
// (found by review: an nsec written as a tag name, or a 10,000-byte name, passed both when they judged values only).
// nostr-tools' BunkerSigner over a loopback relay; nothing refused is signed, held or kept in the audit log.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateSecretKey, nip19, verifyEvent, SimplePool } from 'nostr-tools';
import { BunkerSigner, parseBunkerInput } from 'nostr-tools/nip46';
import { startTestRelay, type TestRelay } from '../../../../testing/nostr-relay/relay.ts';
import { provisionAgent, startHarness, type Harness } from '../testing/harness.ts';

const POLICY = { version: 1, rules: [
  { type: 'allow', name: 'notes', match: { actions: ['nostr.event'], nostr_kinds: [1] } },
  { type: 'nostr_event', name: 'no-secrets', deny_content_pattern: '(?i:nsec1|ncryptsec1)', max_tag_bytes: 64 },
] };

const now = () => Math.floor(Date.now() / 1000);

describe('NIP-46 sign_event: tag names are judged as over HTTP', { timeout: 120_000 }, () => {
  let relay: TestRelay;
  let h: Harness;
  const pool = new SimplePool();
  const signers: BunkerSigner[] = [];

  before(async () => {
    relay = await startTestRelay();
    h = await startHarness({ config: { nostrRelays: [relay.url] } });
  });
  after(async () => {
    for (const s of signers) await s.close();
    pool.destroy();
    await h?.close();
    await relay?.close();
  });

  test('an nsec or a payload as a tag name is refused; ordinary tags are signed', async () => {
    const { agent, session } = await provisionAgent(h, { policy: POLICY, actions: ['nostr.event'] });
    const issued = await h.admin('POST', `/v1/sessions/${session.id}/nostr-connect`);
    assert.equal(issued.status, 201, JSON.stringify(issued.body));
    const bp = await parseBunkerInput(issued.body.bunker);
    assert.ok(bp);
    const signer = BunkerSigner.fromBunker(generateSecretKey(), bp, { pool });
    signers.push(signer);
    await signer.connect();

    const nsec = nip19.nsecEncode(generateSecretKey());
    const outcome = (tags: string[][]) => signer.signEvent({ kind: 1, tags, content: 'x', created_at: now() }).then((e) => `signed ${e.id}`, (e: unknown) => String(e));
    for (const tags of [[[nsec]], [[nsec.toUpperCase(), 'v']]]) {
      const refused = await outcome(tags);
      assert.match(refused, /^policy_denied: .*agent\/no-secrets: nostr_content_not_allowed/, refused);
      assert.ok(!refused.toLowerCase().includes(nsec.slice(5)), 'the refusal does not echo the name');
    }
    const big = await outcome([['y'.repeat(10_000), 'v']]);
    assert.match(big, /^policy_denied: .*agent\/no-secrets: nostr_tag_not_allowed/, big);

    const signed = await signer.signEvent({ kind: 1, tags: [['t', 'airlock']], content: 'x', created_at: now() });
    assert.ok(verifyEvent(signed));

    const entries = (await h.admin('GET', `/v1/audit?agent=${agent.name}&type=sign.request&limit=1000`)).body.entries;
    assert.deepEqual(entries.map((e: { decision: string }) => e.decision), ['deny', 'deny', 'deny', 'allow']);
    assert.ok(!JSON.stringify(entries).toLowerCase().includes(nsec.slice(5)), 'the audit log does not keep the name');
    assert.deepEqual((await h.admin('GET', `/v1/approvals?agent=${agent.id}`)).body.approvals, []);
  });
});
