// A decrypt whose payload does not open (NIP-44: wrong MAC, padding or UTF-8; NIP-04: bad padding) is refused
// `400 invalid_request` before it is charged: no `allow` entry, no rate count, one `error` entry (found by review:
// junk anyone can put in front of the agent, such as a forged NIP-17 gift wrap, was audited as an allowed
// decryption and used up the agent's rate limit). Policy is asked first, so a refused request never learns whether
// a payload authenticates. NIP-44 over HTTP; NIP-04 (no HTTP route) through nostr-tools' BunkerSigner.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateSecretKey, getPublicKey, nip04, nip44, SimplePool } from 'nostr-tools';
import { BunkerSigner, parseBunkerInput } from 'nostr-tools/nip46';
import { chacha20 } from '@noble/ciphers/chacha.js';
import { expand } from '@noble/hashes/hkdf.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { concatBytes } from '@noble/hashes/utils.js';
import { startTestRelay, type TestRelay } from '../../../testing/nostr-relay/relay.ts';
import { provisionAgent, startHarness, type Harness, type StoreKind } from './testing/harness.ts';

const FRIEND_SECRET = generateSecretKey();
const FRIEND = getPublicKey(FRIEND_SECRET);

/** Two requests a minute of `action`, with FRIEND only. */
function policy(action: 'nostr.nip44' | 'nostr.nip04') {
  return { version: 1, rules: [
    { type: 'allow', name: 'dms', match: { actions: [action] } },
    { type: 'nostr_peers', name: 'friends', allow: [FRIEND] },
    { type: 'rate_limit', name: 'two-per-minute', max: 2, window: '1m', match: { actions: [action] } },
  ] };
}

/** A well-formed NIP-44 payload the agent cannot open: MACed under a conversation between two strangers. */
function forgedNip44(): string {
  return nip44.encrypt('not for you', nip44.getConversationKey(generateSecretKey(), getPublicKey(generateSecretKey())));
}

/** A payload FRIEND really MACs for the agent whose padded plaintext is not UTF-8 (NIP-44 v2's steps written out). */
function authenticButNotText(agentPubkey: string): string {
  const nonce = new Uint8Array(32).fill(9);
  const keys = expand(sha256, nip44.getConversationKey(FRIEND_SECRET, agentPubkey), nonce, 76);
  const padded = new Uint8Array(2 + 32);
  padded.set([0, 2, 0xff, 0xfe]);
  const ciphertext = chacha20(keys.subarray(0, 32), keys.subarray(32, 44), padded);
  return Buffer.from(concatBytes(Uint8Array.of(2), nonce, ciphertext, hmac(sha256, keys.subarray(44, 76), concatBytes(nonce, ciphertext)))).toString('base64');
}

type Entry = { decision: string; action?: string; data: { errorCode?: string } };

async function entries(h: Harness, agentName: string, type: string): Promise<Entry[]> {
  const res = await h.admin('GET', `/v1/audit?agent=${agentName}&type=${type}`);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body.entries;
}

// Both stores: the rate counts and the audit entries live in the store.
for (const store of ['sqlite', 'postgres'] as StoreKind[]) describe(`decrypts that do not open are refused uncharged (${store})`, { timeout: 120_000 }, () => {
  let relay: TestRelay;
  let h: Harness;
  const pool = new SimplePool();
  const signers: BunkerSigner[] = [];
  before(async () => {
    relay = await startTestRelay();
    h = await startHarness({ store, config: { nostrRelays: [relay.url] } });
  });
  after(async () => {
    for (const s of signers) await s.close();
    pool.destroy();
    await h?.close();
    await relay?.close();
  });

  test('NIP-44: a forged payload and one that is not UTF-8 are 400 invalid_request, audited as errors, and leave the rate limit whole', async () => {
    const { agent, token } = await provisionAgent(h, { policy: policy('nostr.nip44'), actions: ['nostr.nip44'] });
    const me = (await h.call('GET', '/v1/nostr/identity', { token })).body.pubkey as string;
    for (const [ciphertext, message] of [[forgedNip44(), /MAC/], [forgedNip44(), /MAC/], [authenticButNotText(me), /not UTF-8/]] as const) {
      const res = await h.call('POST', '/v1/nostr/nip44/decrypt', { token, body: { peer: FRIEND, ciphertext } });
      assert.equal(res.status, 400, JSON.stringify(res.body));
      assert.equal(res.body.error.code, 'invalid_request');
      assert.match(res.body.error.message, message);
    }
    assert.deepEqual(await entries(h, agent.name, 'nostr.nip44'), [], 'no decryption is on the record as allowed');
    const errors = (await entries(h, agent.name, 'sign.request')).map((e) => [e.action, e.decision, e.data.errorCode]);
    assert.deepEqual(errors, Array(3).fill(['nostr.nip44', 'error', 'invalid_request']), 'each refusal is on the record');
    // The limit (two a minute) is whole: the agent's real exchange with its friend goes through, and is charged.
    const sent = await h.call('POST', '/v1/nostr/nip44/encrypt', { token, body: { peer: FRIEND, plaintext: 'hello' } });
    assert.equal(sent.status, 200, JSON.stringify(sent.body));
    const reply = nip44.encrypt('hi back', nip44.getConversationKey(FRIEND_SECRET, me));
    const read = await h.call('POST', '/v1/nostr/nip44/decrypt', { token, body: { peer: FRIEND, ciphertext: reply } });
    assert.equal(read.status, 200, JSON.stringify(read.body));
    assert.equal(read.body.plaintext, 'hi back');
    assert.deepEqual((await entries(h, agent.name, 'nostr.nip44')).map((e) => e.decision), ['allow', 'allow']);
    const third = await h.call('POST', '/v1/nostr/nip44/decrypt', { token, body: { peer: FRIEND, ciphertext: reply } });
    assert.equal(third.status, 403, JSON.stringify(third.body));
    assert.equal(third.body.error.violations[0].code, 'rate_limit_exceeded');
  });

  test('NIP-44: policy is asked before the payload is opened: a refused peer gets the same answer for junk and for a real message', async () => {
    const { token } = await provisionAgent(h, { policy: policy('nostr.nip44'), actions: ['nostr.nip44'] });
    const me = (await h.call('GET', '/v1/nostr/identity', { token })).body.pubkey as string;
    const strangerSecret = generateSecretKey();
    const real = nip44.encrypt('a real message', nip44.getConversationKey(strangerSecret, me));
    for (const ciphertext of [forgedNip44(), real]) {
      const res = await h.call('POST', '/v1/nostr/nip44/decrypt', { token, body: { peer: getPublicKey(strangerSecret), ciphertext } });
      assert.equal(res.status, 403, JSON.stringify(res.body));
      assert.equal(res.body.error.violations[0].code, 'nostr_peer_not_allowed');
    }
  });

  test('NIP-04 through the bunker: a payload that does not decrypt (bad padding) is refused invalid_request and leaves the rate limit whole', async () => {
    const { agent, session } = await provisionAgent(h, { policy: policy('nostr.nip04'), actions: ['nostr.nip04'] });
    const issued = await h.admin('POST', `/v1/sessions/${session.id}/nostr-connect`);
    assert.equal(issued.status, 201, JSON.stringify(issued.body));
    const bp = await parseBunkerInput(issued.body.bunker);
    assert.ok(bp);
    const signer = BunkerSigner.fromBunker(generateSecretKey(), bp, { pool });
    signers.push(signer);
    await signer.connect();
    const me = await signer.getPublicKey();
    // A stranger's message, presented as FRIEND's: under the agent's key with FRIEND its padding does not check.
    for (let i = 0; i < 2; i++) {
      const junk = nip04.encrypt(generateSecretKey(), me, `not from your friend ${i}`);
      await assert.rejects(signer.nip04Decrypt(FRIEND, junk), (e: unknown) => /^invalid_request: /.test(String((e as Error).message ?? e)));
    }
    assert.deepEqual(await entries(h, agent.name, 'nostr.nip04'), []);
    const errors = (await entries(h, agent.name, 'sign.request')).map((e) => [e.action, e.decision, e.data.errorCode]);
    assert.deepEqual(errors, Array(2).fill(['nostr.nip04', 'error', 'invalid_request']));
    assert.equal(await signer.nip04Decrypt(FRIEND, nip04.encrypt(FRIEND_SECRET, me, 'one')), 'one');
    assert.equal(await signer.nip04Decrypt(FRIEND, nip04.encrypt(FRIEND_SECRET, me, 'two')), 'two');
    assert.deepEqual((await entries(h, agent.name, 'nostr.nip04')).map((e) => e.decision), ['allow', 'allow']);
  });
});
