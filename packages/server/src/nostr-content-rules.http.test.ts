// The nostr_event rule against an agent that writes its events to get past it (found by review), over HTTP on both
// stores:
// - `p_tags` judges every tag that names a pubkey, not only `p`: NIP-22 `P`, NIP-18 `q` (its author hint, or the author in the address it quotes), NIP-10 and
//   NIP-22 `e`/`E` (their author), `a`/`A` coordinates (the pubkey after the first colon, however the kind is
//   written: clients parseInt it), NIP-26 `delegation`, NIP-57 `zap`. Relays index these tags
//   and clients surface or notify what they name, so each had carried an event to a stranger past the list.
// - Content patterns run over at most MAX_PATTERN_INPUT characters, and never over content the size cap refused:
//   the operator's pattern runs on the event loop, and a quadratic one over a 250 KB note stalled the daemon for
//   seconds. Checked here by what the refusal names (no timing): a pattern that would match is not reported once
//   the size refused the content, and an event past the bound is refused for its size.
// - The documented secret filter is written case-insensitively: bech32 is, and `NSEC1…` decodes to the same key.
// - `deny_content_pattern` and `max_tag_bytes` judge every element of a tag, its name too: relays store and publish
//   a tag whole, and an nsec written as a tag name (or a 10,000-byte name) passed both when they judged values only.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateSecretKey, getPublicKey, verifyEvent } from 'nostr-tools/pure';
import { nip19 } from 'nostr-tools';
import { provisionAgent, startHarness, type Harness, type StoreKind } from './testing/harness.ts';

const FRIEND = getPublicKey(generateSecretKey());
const STRANGER = getPublicKey(generateSecretKey());
const now = () => Math.floor(Date.now() / 1000);
const codes = (res: { body: any }) => (res.body.error?.violations ?? []).map((v: { code: string }) => v.code);

for (const store of ['sqlite', 'postgres'] as StoreKind[]) {
  describe(`nostr_event rules against events written to pass them (${store})`, () => {
    let h: Harness;
    before(async () => {
      h = await startHarness({ store });
    });
    after(async () => h.close());
    const sign = (token: string, kind: number, tags: readonly (readonly string[])[], content = 'hi') =>
      h.call('POST', '/v1/sign/nostr-event', { token, body: { kind, tags, content, created_at: now() } });

    test('p_tags: every tag naming an unlisted pubkey is refused; the same tags naming a listed one are signed', async () => {
      const policy = { version: 1, rules: [{ type: 'allow', name: 'social', match: { actions: ['nostr.event'], nostr_kinds: [1, 4, 7, 1111] } }, { type: 'nostr_event', name: 'only-friends', p_tags: [FRIEND] }] };
      const { token } = await provisionAgent(h, { policy, actions: ['nostr.event'] });
      const cases: [string, number, (who: string) => string[][]][] = [
        ['p', 1, (who) => [['p', who]]],
        ['NIP-22 comment: P (root author), E and e with the author', 1111, (who) => [['E', 'a'.repeat(64), '', who], ['K', '1'], ['P', who], ['e', 'a'.repeat(64), '', who], ['k', '1']]],
        ['NIP-18 quote: q with the author', 1, (who) => [['q', 'b'.repeat(64), 'wss://r.example', who]]],
        ['NIP-10 marked e with the author', 1, (who) => [['e', 'c'.repeat(64), 'wss://r.example', 'reply', who]]],
        ['a coordinate of their addressable event', 1, (who) => [['a', `30023:${who}:post`]]],
        ['NIP-18 quote of their addressable event: q with its address', 1, (who) => [['q', `30023:${who}:post`, 'wss://r.example']]],
        ...['+30023', ' 30023', '30023x'].map((k): [string, number, (who: string) => string[][]] => [`NIP-22 comment on their article, kind written ${JSON.stringify(k)} (clients parseInt it)`, 1111, (who) => [['A', `${k}:${who}:post`], ['K', '30023'], ['a', `${k}:${who}:post`], ['k', '30023']]]),
        ['NIP-26 delegation naming them as delegator', 1, (who) => [['delegation', who, 'kind=1', 'f'.repeat(128)]]],
        ['NIP-57 zap split to them', 1, (who) => [['zap', who, 'wss://r.example', '1']]],
        ['a DM addressed by uppercase P', 4, (who) => [['P', who]]],
      ];
      for (const [label, kind, tags] of cases) {
        const refused = await sign(token, kind, tags(STRANGER));
        assert.equal(refused.status, 403, `${label}: ${JSON.stringify(refused.body).slice(0, 300)}`);
        assert.deepEqual(codes(refused), ['nostr_tag_not_allowed'], label);
        const signed = await sign(token, kind, tags(FRIEND));
        assert.equal(signed.status, 200, `${label}: ${JSON.stringify(signed.body).slice(0, 300)}`);
        assert.ok(verifyEvent(signed.body.event));
      }
      // Tags that name no pubkey are not judged by it: an e tag with a marker only, a hashtag.
      assert.equal((await sign(token, 1, [['e', 'd'.repeat(64), '', 'root'], ['t', 'airlock']])).status, 200);
    });

    test('content patterns: never run over content the size cap refused, and refuse what is past their bound', async () => {
      const capped = { version: 1, rules: [{ type: 'allow', name: 'notes', match: { actions: ['nostr.event'], nostr_kinds: [1] } }, { type: 'nostr_event', name: 'no-links', max_content_bytes: 280, deny_content_pattern: 'https?://' }] };
      const a = await provisionAgent(h, { policy: capped, actions: ['nostr.event'] });
      const big = await sign(a.token, 1, [], 'http://'.repeat(100));
      assert.equal(big.status, 403);
      assert.deepEqual(codes(big), ['nostr_content_too_large'], 'the pattern would match, but did not run');
      assert.deepEqual(codes(await sign(a.token, 1, [], 'see http://x')), ['nostr_content_not_allowed']);

      const unbounded = { version: 1, rules: [{ type: 'allow', name: 'notes', match: { actions: ['nostr.event'], nostr_kinds: [1] } }, { type: 'nostr_event', name: 'no-malware', deny_content_pattern: 'https?://\\S*\\.(exe|apk)' }] };
      const b = await provisionAgent(h, { policy: unbounded, actions: ['nostr.event'] });
      const past = await sign(b.token, 1, [], 'http://'.repeat(3_000));
      assert.equal(past.status, 403, JSON.stringify(past.body).slice(0, 300));
      assert.deepEqual(past.body.error.violations.map((v: { code: string; limit?: string }) => [v.code, v.limit]), [['nostr_content_too_large', '16384']]);
      // Tag values count toward the bound with the content.
      assert.deepEqual(codes(await sign(b.token, 1, [['alt', 'x'.repeat(10_000)], ['subject', 'y'.repeat(7_000)]], 'short')), ['nostr_content_too_large']);
      assert.equal((await sign(b.token, 1, [], 'a note with https://example.com/page')).status, 200);
      assert.deepEqual(codes(await sign(b.token, 1, [], 'get https://evil.example/app.apk')), ['nostr_content_not_allowed']);
    });

    test('the documented secret filter refuses an nsec in any case, in the content or a tag', async () => {
      const policy = { version: 1, rules: [{ type: 'allow', name: 'notes', match: { actions: ['nostr.event'], nostr_kinds: [1] } }, { type: 'nostr_event', name: 'no-secrets', deny_content_pattern: '(?i:nsec1|ncryptsec1)' }] };
      const { token } = await provisionAgent(h, { policy, actions: ['nostr.event'] });
      const nsec = nip19.nsecEncode(generateSecretKey());
      assert.deepEqual(nip19.decode(nsec.toUpperCase() as `nsec1${string}`).type, 'nsec', 'upper case is the same key to a client');
      for (const text of [nsec, nsec.toUpperCase(), `nostr:${nsec.toUpperCase()}`]) {
        assert.deepEqual(codes(await sign(token, 1, [], `my key ${text}`)), ['nostr_content_not_allowed'], text.slice(0, 12));
        assert.deepEqual(codes(await sign(token, 1, [['alt', text]], 'see alt')), ['nostr_content_not_allowed'], text.slice(0, 12));
        // As a tag's name, alone or with values: relays publish the name as they publish the values.
        for (const tags of [[[text]], [[text, 'v']], [['t', 'ok'], [text, '', 'x']]]) {
          const res = await sign(token, 1, tags, 'x');
          assert.equal(res.status, 403, `${text.slice(0, 12)} as a tag name: ${JSON.stringify(res.body).slice(0, 300)}`);
          assert.deepEqual(codes(res), ['nostr_content_not_allowed'], text.slice(0, 12));
          assert.equal(res.body.event, undefined);
          assert.ok(!JSON.stringify(res.body).toLowerCase().includes(nsec.slice(5)), 'the refusal does not echo the name');
        }
      }
      assert.equal((await sign(token, 1, [], 'an ordinary note')).status, 200);
      assert.equal((await sign(token, 1, [['t', 'airlock'], ['client', 'x']], 'an ordinary note')).status, 200, 'ordinary tag names pass');
    });

    test('max_tag_bytes counts tag names with the values: a payload in a name is refused', async () => {
      const policy = { version: 1, rules: [{ type: 'allow', name: 'notes', match: { actions: ['nostr.event'], nostr_kinds: [1] } }, { type: 'nostr_event', name: 'small-tags', max_tag_bytes: 16 }] };
      const { token } = await provisionAgent(h, { policy, actions: ['nostr.event'] });
      const limits = (res: { body: any }) => (res.body.error?.violations ?? []).map((v: { code: string; limit?: string; requested?: string }) => [v.code, v.limit, v.requested]);
      assert.deepEqual(limits(await sign(token, 1, [['y'.repeat(10_000), 'v']], 'x')), [['nostr_tag_not_allowed', '16', '10001']]);
      assert.deepEqual(limits(await sign(token, 1, [['y'.repeat(10_000)]], 'x')), [['nostr_tag_not_allowed', '16', '10000']]);
      // Names and values together, UTF-8 bytes: 'subject' (7) + 'é'.repeat(5) (10) = 17.
      assert.deepEqual(limits(await sign(token, 1, [['subject', 'é'.repeat(5)]], 'x')), [['nostr_tag_not_allowed', '16', '17']]);
      const ok = await sign(token, 1, [['subject', 'é'.repeat(4)], ['t']], 'x');
      assert.equal(ok.status, 200, JSON.stringify(ok.body).slice(0, 300));
      assert.equal(ok.body.intent.nostr.tagBytes, 16);
      assert.ok(verifyEvent(ok.body.event));
    });
  });
}
