// A decrypt's payload is opened before it is charged (nostr-service.ts `openBeforeCharge`), and only for a credential
// still usable: found by review, the policy dry run before the opening judged the credential as this instance had
// cached it, so on a second instance sharing PostgreSQL an agent frozen (or a session revoked) through the first had
// its key open every payload sent, a forged one answered `400 invalid_request` and a genuine one `403 agent_frozen`,
// and the stale cache entry was never dropped. Now both are refused as `authorize` refuses them, with no ECDH.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateSecretKey, getPublicKey, nip44 } from 'nostr-tools';
import { ManualClock } from '@airlock/core';
import { createApp } from './http/app.ts';
import { AirlockHolder } from './http/holder.ts';
import { openAirlock, type Airlock } from './runtime.ts';
import { TEST_PASSPHRASE, TEST_VAULT, provisionAgent, startHarness, type Harness } from './testing/harness.ts';

type Provisioned = Awaited<ReturnType<typeof provisionAgent>>;

const FRIEND_SECRET = generateSecretKey();
const FRIEND = getPublicKey(FRIEND_SECRET);
const POLICY = { version: 1, rules: [{ type: 'allow', name: 'dms', match: { actions: ['nostr.nip44'] } }, { type: 'nostr_peers', name: 'friends', allow: [FRIEND] }] };
/** A payload MACed under another conversation: what anyone can put in front of the agent. */
const forged = () => nip44.encrypt('not for you', nip44.getConversationKey(generateSecretKey(), getPublicKey(generateSecretKey())));

describe('two instances on one PostgreSQL: a decrypt with a credential frozen or revoked elsewhere is refused for that, whatever the payload', { timeout: 120_000 }, () => {
  let h: Harness;
  let second: Airlock;
  let callSecond: Harness['call'];
  /** ECDHs the second instance's key backend computed (NIP-44 conversation keys). */
  let ecdhs = 0;
  before(async () => {
    h = await startHarness({ store: 'postgres' });
    // The second instance: its own runtime (and so its own credential cache) on the same vault and store.
    second = await openAirlock(h.config, TEST_PASSPHRASE, { vault: TEST_VAULT, timers: false, clock: new ManualClock(Date.now()) });
    const keys = second.deps.keys;
    const conversationKey = keys.nip44ConversationKey.bind(keys);
    keys.nip44ConversationKey = (path, peer) => (ecdhs++, conversationKey(path, peer));
    const app = createApp(new AirlockHolder(second), { bodyLimitBytes: h.config.bodyLimitBytes });
    callSecond = async (method, path, o = {}) => {
      const headers: Record<string, string> = { 'content-type': 'application/json', ...(o.token ? { authorization: `Bearer ${o.token}` } : {}) };
      const res = await app.request(path, { method, headers, ...(o.body !== undefined ? { body: JSON.stringify(o.body) } : {}) });
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : undefined, headers: res.headers };
    };
  });
  after(async () => {
    await second?.close();
    await h?.close();
  });

  for (const [what, land, code, status] of [
    ['frozen', (p: Provisioned) => h.admin('POST', `/v1/agents/${p.agent.name}/freeze`), 'agent_frozen', 403],
    ['revoked', (p: Provisioned) => h.admin('POST', `/v1/sessions/${p.session.id}/revoke`), 'session_revoked', 401],
  ] as const) {
    for (const first of ['forged', 'genuine'] as const) {
      test(`${what} through the first instance: the second refuses a ${first} payload ${status} ${code}, then every payload, with no ECDH`, async () => {
        const p = await provisionAgent(h, { policy: POLICY, actions: ['nostr.nip44'] });
        const me = (await h.call('GET', '/v1/nostr/identity', { token: p.token })).body.pubkey as string;
        const genuine = nip44.encrypt('hello', nip44.getConversationKey(FRIEND_SECRET, me));
        // The second instance authenticates (and caches) the credential.
        const ok = await callSecond('POST', '/v1/nostr/nip44/decrypt', { token: p.token, body: { peer: FRIEND, ciphertext: genuine } });
        assert.equal(ok.status, 200, JSON.stringify(ok.body));
        assert.equal((await land(p)).status, 200);

        const before = ecdhs;
        const payloads = first === 'forged' ? [forged(), genuine, forged()] : [genuine, forged(), genuine];
        for (const ciphertext of payloads) {
          const res = await callSecond('POST', '/v1/nostr/nip44/decrypt', { token: p.token, body: { peer: FRIEND, ciphertext } });
          assert.equal(res.status, status, JSON.stringify(res.body));
          assert.equal(res.body.error.code, code);
          assert.equal(res.body.plaintext, undefined);
        }
        assert.equal(ecdhs, before, "the refused credential's key computed nothing");
        // The first refusal came from the re-read (the credential was cached), which dropped the cache entry: the
        // next were refused at authentication. Nothing was opened, so nothing is recorded as invalid_request.
        const entries = ((await h.admin('GET', `/v1/audit?agent=${p.agent.name}&limit=1000`)).body.entries as { type: string; decision: string; sessionId?: string; data: { errorCode?: string } }[])
          .filter((e) => e.sessionId === p.session.id && e.decision === 'error');
        assert.deepEqual(entries.map((e) => [e.type, e.data.errorCode]), [['sign.request', code], ['auth.refused', code], ['auth.refused', code]]);
      });
    }
  }
});
