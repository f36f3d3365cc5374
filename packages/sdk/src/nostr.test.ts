// The SDK's Nostr signer against a real Airlock daemon over HTTP; nostr-tools (an independent implementation)
// is the relay-side verifier, the NIP-98 client and validator, and the NIP-44 peer.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { finalizeEvent, generateSecretKey, getPublicKey, verifyEvent } from 'nostr-tools/pure';
import * as nip19 from 'nostr-tools/nip19';
import * as nip44 from 'nostr-tools/nip44';
import * as nip98 from 'nostr-tools/nip98';
import { initAirlock, loadConfig, serveAirlock, type RunningServer } from '@airlock/server';
import { airlockNostrSigner, type AirlockNostrSignerOptions } from './nostr.ts';
import { AirlockApiError, AirlockApprovalRequiredError, AirlockPolicyError, createAirlockHttp, type AirlockHttp } from './http.ts';
// The harness's fast-KDF vault options: test-only, so imported by path rather than from the package.
import { TEST_PASSPHRASE, TEST_VAULT, uniqueName } from '../../server/src/testing/harness.ts';
import { waitForNewApprovals } from './testing/approvals.ts';

const FRIEND_SECRET = generateSecretKey();
const FRIEND = getPublicKey(FRIEND_SECRET);
const STRANGER = getPublicKey(generateSecretKey());

const POLICY = {
  version: 1,
  rules: [
    { type: 'allow', name: 'notes-and-dms', match: { actions: ['nostr.event'], nostr_kinds: [0, 1, 4] } },
    { type: 'allow', name: 'api-auth', match: { actions: ['nostr.http_auth'] } },
    { type: 'allow', name: 'nip44', match: { actions: ['nostr.nip44'] } },
    { type: 'nostr_event', name: 'dm-friends', match: { nostr_kinds: [4] }, p_tags: [FRIEND] },
    { type: 'approval_tier', name: 'metadata-by-hand', match: { nostr_kinds: [0] } },
    { type: 'nostr_http_auth', name: 'api-only', urls: ['https://api.example.com/**'], methods: ['GET', 'POST'], max_age_seconds: 60 },
    { type: 'nostr_peers', name: 'friends', allow: [FRIEND] },
  ],
};

const now = () => Math.floor(Date.now() / 1000);

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => assert.fail('the request was granted'),
    (e: unknown) => e,
  );
}

describe('airlockNostrSigner against a real Airlock over HTTP, checked with nostr-tools', () => {
  let server: RunningServer | undefined;
  let dataDir: string | undefined;
  let admin: AirlockHttp;

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'airlock-sdk-nostr-'));
    const config = loadConfig({ dataDir, host: '127.0.0.1', port: 0 }, {});
    const adminToken = (await initAirlock(config, TEST_PASSPHRASE, TEST_VAULT)).adminToken;
    server = await serveAirlock(config, TEST_PASSPHRASE, { vault: TEST_VAULT });
    admin = createAirlockHttp({ url: server.url, token: adminToken });
  });

  after(async () => {
    await server?.close().catch(() => {});
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  /** Operator steps over HTTP: an agent, the policy, a session scoped to Nostr. */
  async function provision(extra: Partial<AirlockNostrSignerOptions> = {}) {
    const created = await admin.request<{ agents: { name: string }[] }>('POST', '/v1/agents', { names: [uniqueName('nostr')] });
    const agent = created.body.agents[0]!;
    await admin.request('PUT', `/v1/policies/${agent.name}`, { document: POLICY });
    const issued = await admin.request<{ token: string }>('POST', `/v1/agents/${agent.name}/sessions`, { ttl: '1h', actions: ['nostr.event', 'nostr.http_auth', 'nostr.nip44'] });
    const options = { url: server!.url, token: issued.body.token, ...extra };
    return { agent, options, signer: await airlockNostrSigner(options) };
  }

  test('signEvent: nostr-tools verifies the event, which has the shape finalizeEvent produces, under the agent identity', async () => {
    const { signer, options } = await provision();
    const pubkey = await signer.getPublicKey();
    const identity = await createAirlockHttp(options).request<{ pubkey: string; npub: string }>('GET', '/v1/nostr/identity');
    assert.equal(pubkey, identity.body.pubkey);
    assert.equal(signer.npub, nip19.npubEncode(pubkey));

    const template = { kind: 1, tags: [['t', 'airlock']], content: 'gm from an agent', created_at: now() };
    const event = await signer.signEvent(template);
    assert.ok(verifyEvent(event), 'nostr-tools verifies the event');
    assert.equal(event.pubkey, pubkey);
    assert.deepEqual({ kind: event.kind, tags: event.tags, content: event.content, created_at: event.created_at }, template);
    // Same fields as a locally finalized event, so code written for nostr-tools' Signer takes it unchanged.
    const local = finalizeEvent({ ...template }, generateSecretKey());
    assert.deepEqual(Object.keys(event).sort(), Object.keys(local).sort());
    // A changed byte no longer verifies: the check above can fail. (Built field by field: verifyEvent caches its
    // verdict on the object under a symbol, which a spread copy would carry along.)
    const { id, sig, kind, tags, created_at } = event;
    assert.equal(verifyEvent({ id, pubkey, sig, kind, tags, created_at, content: 'gm from someone else' }), false);
  });

  // NIP-98 puts the method in the tag as given; Airlock requires it upper-case (as HTTP spells methods), so pass 'POST'.
  test('NIP-98: nostr-tools getToken with the signer yields a token nostr-tools validates; another URL is refused', async () => {
    const { signer } = await provision();
    const url = 'https://api.example.com/v1/items';
    const token = await nip98.getToken(url, 'POST', (e) => signer.signEvent(e), true);
    assert.match(token, /^Nostr /);
    assert.equal(await nip98.validateToken(token, url, 'POST'), true);
    const e = await rejection(nip98.getToken('https://evil.example.net/login', 'GET', (t) => signer.signEvent(t)));
    assert.ok(e instanceof AirlockPolicyError, String(e));
    assert.deepEqual(e.violations.map((v) => [v.rule, v.code]), [['agent/api-only', 'nostr_http_url_not_allowed']]);
  });

  test('NIP-44: a round trip with nostr-tools as the peer; an unlisted peer is refused', async () => {
    const { signer } = await provision();
    const conversation = nip44.getConversationKey(FRIEND_SECRET, await signer.getPublicKey());
    const ciphertext = await signer.nip44.encrypt(FRIEND, 'meet at noon');
    assert.equal(nip44.decrypt(ciphertext, conversation), 'meet at noon');
    assert.equal(await signer.nip44.decrypt(FRIEND, nip44.encrypt('see you there', conversation)), 'see you there');
    const e = await rejection(signer.nip44.encrypt(STRANGER, 'leak'));
    assert.ok(e instanceof AirlockPolicyError, String(e));
    assert.deepEqual(e.violations.map((v) => [v.rule, v.code]), [['agent/friends', 'nostr_peer_not_allowed']]);
  });

  test('refusals throw AirlockPolicyError with the rule and code: a kind outside policy, a DM to an unlisted pubkey', async () => {
    const { signer } = await provision();
    const deletion = await rejection(signer.signEvent({ kind: 5, tags: [['e', 'a'.repeat(64)]], content: '', created_at: now() }));
    assert.ok(deletion instanceof AirlockPolicyError, String(deletion));
    assert.equal(deletion.code, 'policy_denied');
    assert.deepEqual(deletion.violations.map((v) => [v.rule, v.code]), [['agent/default', 'nostr_kind_not_allowed']]);
    assert.equal(typeof deletion.auditSeq, 'number', 'the refusal is on the audit record');
    const dm = await rejection(signer.signEvent({ kind: 4, tags: [['p', STRANGER]], content: 'secret', created_at: now() }));
    assert.ok(dm instanceof AirlockPolicyError, String(dm));
    assert.deepEqual(dm.violations.map((v) => [v.rule, v.code]), [['agent/dm-friends', 'nostr_tag_not_allowed']]);
  });

  test('approval: throws AirlockApprovalRequiredError at once; with a wait, an operator approval returns the verified event', async () => {
    const { agent, signer, options } = await provision();
    const metadata = { kind: 0, tags: [], content: '{"name":"bot"}', created_at: now() };
    const held = await rejection(signer.signEvent(metadata));
    assert.ok(held instanceof AirlockApprovalRequiredError, String(held));
    assert.equal(held.violations[0]?.code, 'approval_required');

    const patient = await airlockNostrSigner({ ...options, approvalWaitMs: 10_000 });
    const operator = (async () => {
      const fresh = await waitForNewApprovals(admin, agent.name, [held.approvalId]);
      assert.equal(fresh.length, 1, 'exactly one new pending approval');
      await admin.request('POST', `/v1/approvals/${fresh[0]!.id}/approve`);
    })();
    const [event] = await Promise.all([patient.signEvent(metadata), operator]);
    assert.ok(verifyEvent(event));
    assert.equal(event.content, '{"name":"bot"}');
  });

  test('an answer that is not the event asked for (tampered in transit) is refused by the signer', async () => {
    // A fetch that changes one hex digit of the signature Airlock returns: only the BIP-340 check notices.
    const tampering: typeof fetch = async (input, init) => {
      const res = await fetch(input, init);
      if (!String(input).endsWith('/v1/sign/nostr-event')) return res;
      const body = (await res.json()) as { event: { sig: string } };
      const last = body.event.sig.at(-1) === '0' ? '1' : '0';
      body.event.sig = body.event.sig.slice(0, -1) + last;
      return new Response(JSON.stringify(body), { status: res.status, headers: res.headers });
    };
    const { signer } = await provision({ fetch: tampering });
    const e = await rejection(signer.signEvent({ kind: 1, tags: [], content: 'original', created_at: now() }));
    assert.ok(e instanceof AirlockApiError && !(e instanceof AirlockPolicyError), String(e));
    assert.equal(e.code, 'invalid_response');
  });
});
