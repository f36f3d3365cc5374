// Nostr over the real HTTP app: the agent's NIP-06 identity, events signed under policy and verified by
// nostr-tools (an independent implementation), each control attacked and refused with its code, NIP-44 with a peer.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { finalizeEvent, generateSecretKey, getPublicKey, verifyEvent } from 'nostr-tools/pure';
import * as nip19 from 'nostr-tools/nip19';
import { privateKeyFromSeedWords } from 'nostr-tools/nip06';
import * as nip44 from 'nostr-tools/nip44';
import { chacha20 } from '@noble/ciphers/chacha.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, concatBytes } from '@noble/hashes/utils.js';
import { expand } from '@noble/hashes/hkdf.js';
import { privateKeyToAddress } from 'viem/accounts';
import { provisionAgent, startHarness, type Harness, type StoreKind } from './testing/harness.ts';

const NOSTR_ACTIONS = ['nostr.event', 'nostr.http_auth', 'nostr.nip44'];
const FRIEND_SECRET = generateSecretKey();
const FRIEND = getPublicKey(FRIEND_SECRET);
const STRANGER = getPublicKey(generateSecretKey());

function policy(extra: unknown[] = []) {
  return {
    version: 1,
    rules: [
      { type: 'allow', name: 'notes-and-dms', match: { actions: ['nostr.event'], nostr_kinds: [0, 1, 4, 7] } },
      { type: 'allow', name: 'api-auth', match: { actions: ['nostr.http_auth'] } },
      { type: 'allow', name: 'nip44', match: { actions: ['nostr.nip44'] } },
      { type: 'nostr_event', name: 'dm-friends', match: { nostr_kinds: [4] }, p_tags: [FRIEND] },
      { type: 'nostr_event', name: 'fresh', max_past_seconds: 600, max_future_seconds: 60, max_content_bytes: 280 },
      { type: 'rate_limit', name: 'notes-per-minute', max: 3, window: '1m', per_nostr_kind: true, match: { nostr_kinds: [1] } },
      { type: 'approval_tier', name: 'metadata-by-hand', match: { nostr_kinds: [0] } },
      { type: 'nostr_http_auth', name: 'api-only', urls: ['https://api.example.com/**'], methods: ['GET', 'POST'], max_age_seconds: 60 },
      { type: 'nostr_peers', name: 'friends', allow: [FRIEND] },
      ...extra,
    ],
  };
}

const now = () => Math.floor(Date.now() / 1000);
const note = (content: string, over: Record<string, unknown> = {}) => ({ kind: 1, tags: [['t', 'airlock']], content, created_at: now(), ...over });

// Both stores: the per-kind rate limit and the audit entries live in the store.
for (const store of ['sqlite', 'postgres'] as StoreKind[]) describe(`nostr over HTTP (${store})`, () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ store });
  });
  after(async () => h.close());

  test('the identity is the NIP-06 key of the vault mnemonic at the agent account, shown as hex and npub', async () => {
    const { agent, token } = await provisionAgent(h, { policy: policy(), actions: NOSTR_ACTIONS });
    const res = await h.call('GET', '/v1/nostr/identity', { token });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const expected = getPublicKey(privateKeyFromSeedWords(h.mnemonic, undefined, agent.accountIndex));
    assert.equal(res.body.pubkey, expected);
    assert.equal(res.body.npub, nip19.npubEncode(expected));
    assert.equal(res.body.agentId, agent.id);
    // The same key beside the agent: GET /v1/session (the agent) and GET /v1/agents/:id (the operator).
    const session = await h.call('GET', '/v1/session', { token });
    assert.deepEqual(session.body.agent.nostr, { pubkey: expected, npub: nip19.npubEncode(expected) });
    const shown = await h.admin('GET', `/v1/agents/${agent.name}`);
    assert.deepEqual(shown.body.nostr, { pubkey: expected, npub: nip19.npubEncode(expected) });
  });

  test('an allowed note is signed, verifies with nostr-tools, and its audit entry carries the event id', async () => {
    const { agent, token } = await provisionAgent(h, { policy: policy(), actions: NOSTR_ACTIONS });
    const res = await h.call('POST', '/v1/sign/nostr-event', { token, body: note('hello from an agent') });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const event = res.body.event;
    assert.ok(verifyEvent(event), 'nostr-tools verifies the event');
    assert.equal(event.content, 'hello from an agent');
    assert.equal(event.sig, res.body.signature);
    assert.equal(event.pubkey, (await h.call('GET', '/v1/nostr/identity', { token })).body.pubkey);
    const audit = await h.admin('GET', `/v1/audit?agent=${agent.name}&type=sign.request`);
    const entry = audit.body.entries.at(-1);
    assert.equal(entry.seq, res.body.auditSeq);
    assert.equal(entry.data.digest, event.id);
    assert.equal(entry.data.intent.nostr.eventId, event.id);
  });

  test('attacks on each control are refused with their code and nothing is signed', async () => {
    const { token } = await provisionAgent(h, { policy: policy(), actions: NOSTR_ACTIONS });
    const refused = async (path: string, body: unknown) => {
      const res = await h.call('POST', path, { token, body });
      assert.equal(res.status, 403, JSON.stringify(res.body));
      assert.equal(res.body.event, undefined);
      return res.body.error.violations.map((v: any) => `${v.rule}:${v.code}`);
    };
    // A kind outside policy (a deletion).
    assert.deepEqual(await refused('/v1/sign/nostr-event', note('', { kind: 5, tags: [['e', 'a'.repeat(64)]] })), ['agent/default:nostr_kind_not_allowed']);
    // A DM to a pubkey not listed.
    assert.deepEqual(await refused('/v1/sign/nostr-event', note('secret', { kind: 4, tags: [['p', STRANGER]] })), ['agent/dm-friends:nostr_tag_not_allowed']);
    // A NIP-57 zap split naming a stranger: the note's zaps would be paid to them; judged as a p tag (found by review).
    assert.deepEqual(await refused('/v1/sign/nostr-event', note('pay me', { kind: 4, tags: [['zap', STRANGER, 'wss://relay.example', '1']] })), ['agent/dm-friends:nostr_tag_not_allowed']);
    // created_at far in the past, and in the future.
    assert.deepEqual(await refused('/v1/sign/nostr-event', note('old', { created_at: now() - 86_400 })), ['agent/fresh:nostr_created_at_out_of_window']);
    assert.deepEqual(await refused('/v1/sign/nostr-event', note('future', { created_at: now() + 3_600 })), ['agent/fresh:nostr_created_at_out_of_window']);
    // Content over the size limit.
    assert.deepEqual(await refused('/v1/sign/nostr-event', note('x'.repeat(281))), ['agent/fresh:nostr_content_too_large']);
    // NIP-98 auth for another URL, and with a method not listed.
    const auth = (u: string, method = 'GET') => ({ kind: 27235, tags: [['u', u], ['method', method]], content: '', created_at: now() });
    assert.deepEqual(await refused('/v1/sign/nostr-http-auth', auth('https://evil.example.net/login')), ['agent/api-only:nostr_http_url_not_allowed']);
    assert.deepEqual(await refused('/v1/sign/nostr-http-auth', auth('https://api.example.com/v1/x', 'DELETE')), ['agent/api-only:nostr_http_method_not_allowed']);
    // A u tag that means another URL once normalised (dot segments, encoded or behind backslashes or a tab): the
    // policy would judge one URL and the event sign another, which a server may read as written.
    // A second review: `..;/` (servlet containers drop the ;params before resolving ..), an encoded slash or
    // backslash (decoding proxies, Windows servers) and double encoding (servers that decode twice).
    for (const u of [
      'https://api.example.com/v1/%2e%2e/admin', 'https://api.example.com/v1\\..\\admin', 'https://api.example.com/ad\tmin/../v1/x', 'https://api.example.com/v1/./x',
      'https://api.example.com/v1/..;/admin/users', 'https://api.example.com/v1/..%2Fadmin/users', 'https://api.example.com/v1/..%5Cadmin/users', 'https://api.example.com/v1/%252e%252e/admin/users',
    ]) {
      const res = await h.call('POST', '/v1/sign/nostr-http-auth', { token, body: auth(u) });
      assert.equal(res.status, 400, `${JSON.stringify(u)}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.error.code, 'invalid_request');
      assert.match(res.body.error.message, /dot segments/);
    }
    // Written otherwise but meaning the same URL everywhere (as nostr-tools' getToken copies a URL it is given): signed as written, judged normalised.
    const same = await h.call('POST', '/v1/sign/nostr-http-auth', { token, body: auth('HTTPS://API.example.com:443/v1/x') });
    assert.equal(same.status, 200, JSON.stringify(same.body));
    assert.equal(same.body.intent.nostr.http.url, 'https://api.example.com/v1/x');
    assert.deepEqual(same.body.event.tags[0], ['u', 'HTTPS://API.example.com:443/v1/x']);
    // NIP-98 through the event route is refused outright (its own action, its own rules).
    const viaEvent = await h.call('POST', '/v1/sign/nostr-event', { token, body: auth('https://api.example.com/v1/x') });
    assert.equal(viaEvent.status, 400);
    assert.equal(viaEvent.body.error.code, 'invalid_request');
    // A DM to a listed friend is fine.
    const dm = await h.call('POST', '/v1/sign/nostr-event', { token, body: note('hi', { kind: 4, tags: [['p', FRIEND]] }) });
    assert.equal(dm.status, 200, JSON.stringify(dm.body));
    assert.ok(verifyEvent(dm.body.event));
    // An allowed NIP-98 event verifies and names the URL.
    const ok = await h.call('POST', '/v1/sign/nostr-http-auth', { token, body: auth('https://api.example.com/v1/items?page=2', 'POST') });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.ok(verifyEvent(ok.body.event));
    assert.equal(ok.body.intent.nostr.http.url, 'https://api.example.com/v1/items?page=2');
  });

  test('a flood of notes stops at the per-kind rate limit; other kinds are not counted', async () => {
    const { token } = await provisionAgent(h, { policy: policy(), actions: NOSTR_ACTIONS });
    for (let i = 0; i < 3; i++) assert.equal((await h.call('POST', '/v1/sign/nostr-event', { token, body: note(`n${i}`) })).status, 200);
    const fourth = await h.call('POST', '/v1/sign/nostr-event', { token, body: note('n3') });
    assert.equal(fourth.status, 403);
    const v = fourth.body.error.violations[0];
    assert.deepEqual([v.rule, v.code, v.limit, v.used], ['agent/notes-per-minute', 'rate_limit_exceeded', '3', '3']);
    const reaction = await h.call('POST', '/v1/sign/nostr-event', { token, body: note('+', { kind: 7, tags: [['e', 'b'.repeat(64)], ['p', FRIEND]] }) });
    assert.equal(reaction.status, 200, JSON.stringify(reaction.body));
  });

  test('metadata (kind 0) waits for a human; once approved the signed event verifies', async () => {
    const { token } = await provisionAgent(h, { policy: policy(), actions: NOSTR_ACTIONS });
    const res = await h.call('POST', '/v1/sign/nostr-event', { token, body: note('{"name":"bot"}', { kind: 0, tags: [] }) });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    assert.equal(res.body.violations[0].code, 'approval_required');
    // What the human reads before approving is the event itself, content and tags, not only its summary.
    const held = await h.admin('GET', `/v1/approvals/${res.body.approvalId}`);
    assert.equal(held.body.request.content, '{"name":"bot"}');
    assert.deepEqual(held.body.request.tags, []);
    assert.equal(held.body.request.kind, 0);
    const approved = await h.admin('POST', `/v1/approvals/${res.body.approvalId}/approve`);
    assert.equal(approved.status, 200, JSON.stringify(approved.body));
    assert.ok(verifyEvent(approved.body.result.event));
  });

  test('idempotency and dry-run work as for EVM', async () => {
    const { token } = await provisionAgent(h, { policy: policy(), actions: NOSTR_ACTIONS });
    const body = note('once');
    const first = await h.call('POST', '/v1/sign/nostr-event', { token, body, headers: { 'idempotency-key': 'note-1' } });
    const again = await h.call('POST', '/v1/sign/nostr-event', { token, body, headers: { 'idempotency-key': 'note-1' } });
    assert.equal(again.status, 200);
    assert.equal(again.body.replayed, true);
    assert.equal(again.body.event.id, first.body.event.id);
    // The backend re-signs a replay (it says deterministic): BIP-340 with aux from the digest gives the same bytes.
    assert.equal(again.body.signature, first.body.signature, 'a replay is byte-identical');
    assert.deepEqual(again.body.event, first.body.event);
    const dry = await h.call('POST', '/v1/dry-run', { token, body: { action: 'nostr.event', payload: note('', { kind: 5 }) } });
    assert.equal(dry.status, 200);
    assert.equal(dry.body.decision.violations[0].code, 'nostr_kind_not_allowed');
  });

  test('a session not scoped to nostr.event cannot sign events', async () => {
    const { token } = await provisionAgent(h, { policy: policy(), actions: ['nostr.nip44'] });
    const res = await h.call('POST', '/v1/sign/nostr-event', { token, body: note('hi') });
    assert.equal(res.status, 403);
    assert.ok(res.body.error.violations.some((v: any) => v.code === 'action_not_allowed'));
  });

  test('NIP-44: round trip with a listed peer (nostr-tools on the other side), unlisted peers refused, plaintext never audited', async () => {
    const { agent, token } = await provisionAgent(h, { policy: policy(), actions: NOSTR_ACTIONS });
    const me = (await h.call('GET', '/v1/nostr/identity', { token })).body.pubkey;
    const enc = await h.call('POST', '/v1/nostr/nip44/encrypt', { token, body: { peer: FRIEND, plaintext: 'meet at noon' } });
    assert.equal(enc.status, 200, JSON.stringify(enc.body));
    const friendKey = nip44.getConversationKey(FRIEND_SECRET, me);
    assert.equal(nip44.decrypt(enc.body.ciphertext, friendKey), 'meet at noon');
    const reply = nip44.encrypt('see you there', friendKey);
    const dec = await h.call('POST', '/v1/nostr/nip44/decrypt', { token, body: { peer: FRIEND, ciphertext: reply } });
    assert.equal(dec.status, 200, JSON.stringify(dec.body));
    assert.equal(dec.body.plaintext, 'see you there');
    const stranger = await h.call('POST', '/v1/nostr/nip44/encrypt', { token, body: { peer: STRANGER, plaintext: 'leak' } });
    assert.equal(stranger.status, 403);
    assert.deepEqual(stranger.body.error.violations.map((v: any) => `${v.rule}:${v.code}`), ['agent/friends:nostr_peer_not_allowed']);
    const audit = await h.admin('GET', `/v1/audit?agent=${agent.name}&type=nostr.nip44`);
    assert.deepEqual(audit.body.entries.map((e: any) => e.decision), ['allow', 'allow', 'deny']);
    const text = JSON.stringify(audit.body);
    for (const secret of ['meet at noon', 'see you there', 'leak']) assert.ok(!text.includes(secret), `no plaintext in the audit log: ${secret}`);
  });

  test('NIP-44: nostr_peers with ops [encrypt] reads a gift wrap from a fresh key and still refuses sending to strangers; ops [] is refused', async () => {
    const rules = policy().rules.filter((r: any) => r.type !== 'nostr_peers');
    const sendOnly = { version: 1, rules: [...rules, { type: 'nostr_peers', name: 'send-to-friends', allow: [FRIEND], ops: ['encrypt'] }] };
    const { agent, token } = await provisionAgent(h, { policy: sendOnly, actions: NOSTR_ACTIONS });
    const me = (await h.call('GET', '/v1/nostr/identity', { token })).body.pubkey;
    // A NIP-17 gift wrap: sealed by a key made for this one message, which no allow list can name.
    const ephemeral = generateSecretKey();
    const wrap = nip44.encrypt('a sealed rumor', nip44.getConversationKey(ephemeral, me));
    const read = await h.call('POST', '/v1/nostr/nip44/decrypt', { token, body: { peer: getPublicKey(ephemeral), ciphertext: wrap } });
    assert.equal(read.status, 200, JSON.stringify(read.body));
    assert.equal(read.body.plaintext, 'a sealed rumor');
    const leak = await h.call('POST', '/v1/nostr/nip44/encrypt', { token, body: { peer: getPublicKey(ephemeral), plaintext: 'the vault words' } });
    assert.equal(leak.status, 403);
    assert.deepEqual(leak.body.error.violations.map((v: any) => `${v.rule}:${v.code}`), ['agent/send-to-friends:nostr_peer_not_allowed']);
    assert.equal((await h.call('POST', '/v1/nostr/nip44/encrypt', { token, body: { peer: FRIEND, plaintext: 'hi' } })).status, 200);
    const audit = await h.admin('GET', `/v1/audit?agent=${agent.name}&type=nostr.nip44`);
    assert.deepEqual(audit.body.entries.map((e: any) => e.decision), ['allow', 'deny', 'allow']);

    // The default (no ops) limits both directions, as before; an empty ops list limits nothing and is refused.
    const both = await provisionAgent(h, { policy: policy(), actions: NOSTR_ACTIONS });
    const bothMe = (await h.call('GET', '/v1/nostr/identity', { token: both.token })).body.pubkey;
    const wrap2 = nip44.encrypt('a sealed rumor', nip44.getConversationKey(ephemeral, bothMe));
    const refused = await h.call('POST', '/v1/nostr/nip44/decrypt', { token: both.token, body: { peer: getPublicKey(ephemeral), ciphertext: wrap2 } });
    assert.equal(refused.status, 403);
    assert.deepEqual(refused.body.error.violations.map((v: any) => v.code), ['nostr_peer_not_allowed']);
    const empty = await h.admin('PUT', `/v1/policies/${agent.name}`, { document: { version: 1, rules: [...rules, { type: 'nostr_peers', name: 'none', allow: [FRIEND], ops: [] }] } });
    assert.equal(empty.status, 400, JSON.stringify(empty.body));
    assert.equal(empty.body.error.code, 'invalid_policy');
    assert.match(empty.body.error.message, /ops/);
  });

  test('a lone surrogate in an event (held or not) is bad input at the edge: 400, nothing held or audited (PostgreSQL answered 500)', async () => {
    const { agent, token } = await provisionAgent(h, { policy: policy(), actions: NOSTR_ACTIONS });
    for (const body of [note('a\ud800b', { kind: 0, tags: [] }), note('hi', { tags: [['t', '\udc00']] }), { ...note('hi'), ['k\ud800']: 1 }]) {
      const res = await h.call('POST', '/v1/sign/nostr-event', { token, body });
      assert.equal(res.status, 400, JSON.stringify(res.body));
      assert.equal(res.body.error.code, 'invalid_request');
      assert.match(res.body.error.message, /well-formed Unicode/);
    }
    assert.deepEqual((await h.admin('GET', `/v1/audit?agent=${agent.name}`)).body.entries.filter((e: any) => e.actor === 'agent' && e.data.errorCode !== 'invalid_request'), [], 'only the rejections at the edge');
    assert.deepEqual((await h.admin('GET', '/v1/approvals?state=pending')).body.approvals.filter((a: any) => a.agentId === agent.id), []);
  });

  test('content rules see the tags too: a forbidden pattern or a payload in rendered tags is refused', async () => {
    const { token } = await provisionAgent(h, {
      policy: policy([{ type: 'nostr_event', name: 'clean', deny_content_pattern: 'buy now|https?://', max_tag_bytes: 1_000 }]),
      actions: NOSTR_ACTIONS,
    });
    const refused = async (tags: string[][]) => {
      const res = await h.call('POST', '/v1/sign/nostr-event', { token, body: note('hi', { tags }) });
      assert.equal(res.status, 403, JSON.stringify(res.body).slice(0, 300));
      assert.equal(res.body.event, undefined);
      return res.body.error.violations.map((v: any) => `${v.rule}:${v.code}`);
    };
    assert.deepEqual(await refused([['subject', 'buy now']]), ['agent/clean:nostr_content_not_allowed']);
    assert.deepEqual(await refused([['imeta', 'url https://scam.example/x.png']]), ['agent/clean:nostr_content_not_allowed']);
    assert.deepEqual(await refused([['content-warning', 'x'.repeat(1_001)]]), ['agent/clean:nostr_tag_not_allowed']);
    // A tag within the limits signs; tagBytes counts names with values ('t' + 'airlock' + 'content-warning' + 900).
    const ok = await h.call('POST', '/v1/sign/nostr-event', { token, body: note('hi', { tags: [['t', 'airlock'], ['content-warning', 'x'.repeat(900)]] }) });
    assert.equal(ok.status, 200, JSON.stringify(ok.body).slice(0, 300));
    assert.equal(ok.body.intent.nostr.tagBytes, 923);
    assert.equal(ok.body.intent.nostr.tagText, undefined, 'tag values are judged, not echoed in the intent');
  });

  test('NIP-44 input that is bad without the key is refused before it is authorized: no audit entry, no rate count', async () => {
    const { agent, token } = await provisionAgent(h, {
      policy: policy([{ type: 'rate_limit', name: 'two-crypto-per-hour', max: 2, window: '1h', match: { actions: ['nostr.nip44'] } }]),
      actions: NOSTR_ACTIONS,
    });
    const bad: [string, object][] = [
      ['/v1/nostr/nip44/decrypt', { peer: FRIEND, ciphertext: 'A'.repeat(200) }], // base64 of the right size, version byte 0
      ['/v1/nostr/nip44/decrypt', { peer: FRIEND, ciphertext: '#future-encoding' }],
      ['/v1/nostr/nip44/encrypt', { peer: FRIEND, plaintext: '€'.repeat(30_000) }], // 90,000 UTF-8 bytes > 65,535
      ['/v1/nostr/nip44/encrypt', { peer: FRIEND, plaintext: '' }],
      ['/v1/nostr/nip44/encrypt', { peer: 'ff'.repeat(32), plaintext: 'x' }], // not an x coordinate on the curve
    ];
    for (const [path, body] of bad) {
      const res = await h.call('POST', path, { token, body });
      assert.equal(res.status, 400, `${path} ${JSON.stringify(body).slice(0, 80)}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.error.code, 'invalid_request');
    }
    const audit = await h.admin('GET', `/v1/audit?agent=${agent.name}&type=nostr.nip44`);
    assert.deepEqual(audit.body.entries, [], 'nothing was authorized');
    // The rate limit (two an hour) is whole: both good requests go through.
    for (const plaintext of ['one', 'two']) assert.equal((await h.call('POST', '/v1/nostr/nip44/encrypt', { token, body: { peer: FRIEND, plaintext } })).status, 200);
  });

  test('NIP-44: a peer who MACs bytes that are not UTF-8 gets the agent a 400, not a 500', async () => {
    const { token } = await provisionAgent(h, { policy: policy(), actions: NOSTR_ACTIONS });
    const me = (await h.call('GET', '/v1/nostr/identity', { token })).body.pubkey;
    // NIP-44 v2's message keys, written out from the spec (not our implementation): HKDF-expand to 76 bytes.
    const keys = expand(sha256, nip44.getConversationKey(FRIEND_SECRET, me), new Uint8Array(32).fill(7), 76);
    const [chachaKey, chachaNonce, hmacKey] = [keys.subarray(0, 32), keys.subarray(32, 44), keys.subarray(44, 76)];
    const padded = new Uint8Array(2 + 32);
    padded.set([0, 2, 0xff, 0xfe]); // length 2, then two bytes that are not UTF-8
    const ciphertext = chacha20(chachaKey, chachaNonce, padded);
    const nonce = new Uint8Array(32).fill(7);
    const payload = Buffer.from(concatBytes(Uint8Array.of(2), nonce, ciphertext, hmac(sha256, hmacKey, concatBytes(nonce, ciphertext)))).toString('base64');
    const res = await h.call('POST', '/v1/nostr/nip44/decrypt', { token, body: { peer: FRIEND, ciphertext: payload } });
    assert.equal(res.status, 400, JSON.stringify(res.body));
    assert.equal(res.body.error.code, 'invalid_request');
    assert.match(res.body.error.message, /not UTF-8/);
  });

  test('NIP-44: the audit entry of an encryption cannot be used to test guesses of the plaintext', async () => {
    const { agent, token } = await provisionAgent(h, { policy: policy(), actions: NOSTR_ACTIONS });
    const me = (await h.call('GET', '/v1/nostr/identity', { token })).body.pubkey;
    for (let i = 0; i < 2; i++) assert.equal((await h.call('POST', '/v1/nostr/nip44/encrypt', { token, body: { peer: FRIEND, plaintext: 'your login code is 145044' } })).status, 200);
    const entries = (await h.admin('GET', `/v1/audit?agent=${agent.name}&type=nostr.nip44`)).body.entries;
    assert.equal(entries.length, 2);
    // What an unsalted digest would be (the form before the fix): a guess that matches it confirms the plaintext.
    const guess = bytesToHex(sha256(new TextEncoder().encode(`nip44-v2|encrypt|${me}|${FRIEND}|${bytesToHex(sha256(new TextEncoder().encode('your login code is 145044')))}`)));
    for (const e of entries) assert.notEqual(e.data.digest, guess);
    assert.notEqual(entries[0].data.digest, entries[1].data.digest, 'the same plaintext twice gives two unrelated digests');
  });

  test('the Nostr key is not the funds key: its EVM address is not the agent address', async () => {
    const { agent } = await provisionAgent(h, { policy: policy(), actions: NOSTR_ACTIONS });
    const nostrSecret = privateKeyFromSeedWords(h.mnemonic, undefined, agent.accountIndex);
    assert.notEqual(privateKeyToAddress(`0x${Buffer.from(nostrSecret).toString('hex')}`).toLowerCase(), agent.address);
    assert.ok(verifyEvent(finalizeEvent({ kind: 1, tags: [], content: '', created_at: 0 }, nostrSecret)));
  });
});
