// The audit log keeps no tag value of a Nostr event: rules judge them (the documented secret filter,
// `deny_content_pattern: "(?i:nsec1|ncryptsec1)"`, tests every tag value), the entry carries the pubkeys the tags
// name, the tag count and the event id (found by review: the entry of a refused event stored the nsec its `t` tag
// carried, in the append-only log the filter was meant to keep it out of).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateSecretKey, getPublicKey, nip19 } from 'nostr-tools';
import { provisionAgent, startHarness, type Harness, type StoreKind } from './testing/harness.ts';

const FRIEND = getPublicKey(generateSecretKey());

const POLICY = { version: 1, rules: [
  { type: 'allow', name: 'notes-and-dms', match: { actions: ['nostr.event'], nostr_kinds: [1, 4] } },
  { type: 'nostr_event', name: 'no-secrets', deny_content_pattern: '(?i:nsec1|ncryptsec1)' },
  { type: 'nostr_event', name: 'dm-friends', match: { nostr_kinds: [4] }, p_tags: [FRIEND] },
] };

const now = () => Math.floor(Date.now() / 1000);

/** Whether `text` holds the secret (whole, upper-cased, or its first 12 characters as a refusal message would cut it). */
function holds(text: string, secret: string): boolean {
  const lower = text.toLowerCase();
  return lower.includes(secret.slice(5)) || lower.includes(secret.slice(0, 12));
}

for (const store of ['sqlite', 'postgres'] as StoreKind[]) describe(`Nostr tag values stay out of the audit log (${store})`, () => {
  let h: Harness;
  before(async () => { h = await startHarness({ store }); });
  after(async () => h.close());

  test('an nsec in any tag is refused nostr_content_not_allowed, and neither the answer nor the audit entry keeps it', async () => {
    const { agent, token } = await provisionAgent(h, { policy: POLICY, actions: ['nostr.event'] });
    const cases: string[][][] = [[['t', '']], [['p', '']], [['r', '']], [['relay', '']], [['e', '']], [['subject', '']], [['t', 'ok'], ['p', FRIEND], ['e', '']]];
    for (const shape of cases) {
      const nsec = nip19.nsecEncode(generateSecretKey());
      const tags = shape.map(([name, value]) => [name!, value || (name === 't' ? nsec.toUpperCase() : nsec)]);
      const res = await h.call('POST', '/v1/sign/nostr-event', { token, body: { kind: 1, tags, content: 'hi', created_at: now() } });
      assert.equal(res.status, 403, JSON.stringify(res.body));
      assert.deepEqual(res.body.error.violations.map((v: { code: string }) => v.code), ['nostr_content_not_allowed']);
      assert.ok(!holds(JSON.stringify(res.body), nsec), `${shape[0]![0]}: the refusal echoes the secret`);
      const entries = (await h.admin('GET', `/v1/audit?agent=${agent.name}&type=sign.request&order=newest&limit=1`)).body.entries;
      assert.equal(entries[0].decision, 'deny');
      assert.ok(!holds(JSON.stringify(entries[0]), nsec), `${shape[0]![0]}: the audit entry keeps the secret`);
      assert.equal(entries[0].data.intent.nostr.tags.count, tags.length);
    }
  });

  test('a p tag that names no pubkey is refused by p_tags without its value reaching the refusal or the log', async () => {
    const { agent, token } = await provisionAgent(h, { policy: POLICY, actions: ['nostr.event'] });
    // Not an nsec, so only p_tags refuses it: the value is still free text (a key in another encoding, a password).
    const secret = nip19.nsecEncode(generateSecretKey()).slice(5);
    const res = await h.call('POST', '/v1/sign/nostr-event', { token, body: { kind: 4, tags: [['p', FRIEND], ['p', secret]], content: 'x', created_at: now() } });
    assert.equal(res.status, 403, JSON.stringify(res.body));
    assert.deepEqual(res.body.error.violations.map((v: { code: string }) => v.code), ['nostr_tag_not_allowed']);
    const entry = (await h.admin('GET', `/v1/audit?agent=${agent.name}&type=sign.request&order=newest&limit=1`)).body.entries[0];
    for (const text of [JSON.stringify(res.body), JSON.stringify(entry)]) assert.ok(!text.includes(secret.slice(0, 12)), text);
    assert.deepEqual(entry.data.intent.nostr.tags.p, [FRIEND, 'not-a-pubkey']);
  });

  test('an allowed event: the entry names the pubkeys and counts the tags, the event carries its tags as signed', async () => {
    const { agent, token } = await provisionAgent(h, { policy: POLICY, actions: ['nostr.event'] });
    const tags = [['p', FRIEND], ['t', 'my-private-hashtag'], ['r', 'wss://my.private.relay']];
    const res = await h.call('POST', '/v1/sign/nostr-event', { token, body: { kind: 4, tags, content: 'x', created_at: now() } });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(res.body.event.tags, tags);
    assert.deepEqual(res.body.intent.nostr.tags, { p: [FRIEND], count: 3 });
    const entry = (await h.admin('GET', `/v1/audit?agent=${agent.name}&type=sign.request&order=newest&limit=1`)).body.entries[0];
    assert.equal(entry.decision, 'allow');
    assert.deepEqual(entry.data.intent.nostr.tags, { p: [FRIEND], count: 3 });
    assert.equal(entry.data.intent.nostr.eventId, res.body.event.id, 'the event id commits to every tag');
    assert.ok(!JSON.stringify(entry).includes('my-private'));
  });
});
