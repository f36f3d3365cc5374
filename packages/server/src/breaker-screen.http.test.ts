// Circuit breakers on the operations that release no signature, over HTTP on SQLite and PostgreSQL (found by
// review: NIP-44 and a Lightning dry-run were judged by policy alone, so a tripped breaker let them through).
// A breaker that binds the agent refuses NIP-44 with its rule (a freeze as for signatures: policy_denied and
// breaker_open; a require_approval hold, which NIP-44 cannot wait in, with breaker_holds_agent), the refusal
// counting nothing; NIP-44 requests themselves trip a detector; and a Lightning dry-run says what paying would do.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { generateSecretKey, getPublicKey } from 'nostr-tools/pure';
import * as nip44 from 'nostr-tools/nip44';
import { BITCOIN_CHAINS, bitcoinAsset } from '@airlock/core';
import { LightningNetwork, SimulatedBackend } from '../../../testing/lightning-network.ts';
import { provisionAgent, startHarness, type Harness, type StoreKind } from './testing/harness.ts';

const FRIEND_SECRET = generateSecretKey();
const FRIEND = getPublicKey(FRIEND_SECRET);
const NOSTR_ACTIONS = ['nostr.event', 'nostr.nip44'];

/** Notes and NIP-44 with FRIEND, one request_burst detector (min_count 3), and optionally a rate limit. */
function nostrPolicy(action: 'freeze' | 'require_approval', extra: unknown[] = []) {
  return {
    version: 1,
    rules: [
      { type: 'allow', name: 'notes', match: { actions: ['nostr.event'], nostr_kinds: [1] } },
      { type: 'allow', name: 'nip44', match: { actions: ['nostr.nip44'] } },
      { type: 'nostr_peers', name: 'friends', allow: [FRIEND] },
      ...extra,
    ],
    detectors: [{ name: 'burst', type: 'request_burst', window: '1m', baseline: '1h', min_count: 3, action }],
  };
}

const note = (content: string) => ({ kind: 1, tags: [], content, created_at: Math.floor(Date.now() / 1000) });
const codes = (res: { body: any }) => (res.body.error?.violations ?? res.body.violations ?? []).map((v: any) => `${v.rule}:${v.code}`);

for (const store of ['sqlite', 'postgres'] as StoreKind[]) describe(`circuit breakers on NIP-44 and Lightning dry-runs (${store})`, () => {
  let h: Harness;
  let ln: LightningNetwork;
  before(async () => {
    ln = new LightningNetwork();
    h = await startHarness({ store, manualClock: true, lightningBackend: new SimulatedBackend(ln), config: { lightning: { backend: 'lnd', network: 'regtest', payTimeoutSeconds: 2, notFoundGraceSeconds: 60, defaultFeePercent: 1 } } });
  });
  after(async () => h.close());

  const step = () => h.clock!.advance(1000);
  const encrypt = (token: string, plaintext = 'hello') => (step(), h.call('POST', '/v1/nostr/nip44/encrypt', { token, body: { peer: FRIEND, plaintext } }));
  const decrypt = (token: string, me: string, plaintext = 'hi back') =>
    (step(), h.call('POST', '/v1/nostr/nip44/decrypt', { token, body: { peer: FRIEND, ciphertext: nip44.encrypt(plaintext, nip44.getConversationKey(FRIEND_SECRET, me)) } }));
  const sign = (token: string, content: string) => (step(), h.call('POST', '/v1/sign/nostr-event', { token, body: note(content) }));
  const nip44Audit = async (name: string) => (await h.admin('GET', `/v1/audit?agent=${name}&type=nostr.nip44`)).body.entries.map((e: any) => e.decision);

  test('a require_approval breaker: NIP-44 both ways is refused breaker_holds_agent naming the breaker, counted nowhere; after the reset it works', async () => {
    const rate = { type: 'rate_limit', name: 'six-an-hour', max: 6, window: '1h' };
    const { agent, token } = await provisionAgent(h, { policy: nostrPolicy('require_approval', [rate]), actions: NOSTR_ACTIONS });
    const me = (await h.call('GET', '/v1/nostr/identity', { token })).body.pubkey;
    // No breaker tripped: NIP-44 works both ways.
    assert.equal((await encrypt(token)).status, 200);
    const dec = await decrypt(token, me);
    assert.equal(dec.status, 200, JSON.stringify(dec.body));
    assert.equal(dec.body.plaintext, 'hi back');
    // A burst of notes trips the breaker: the note is held, as is every later request.
    assert.equal((await sign(token, 'one')).status, 200);
    const held = await sign(token, 'two');
    assert.equal(held.status, 202, JSON.stringify(held.body));
    assert.deepEqual(codes(held), ['detector/agent/burst:breaker_tripped']);
    const [breaker] = (await h.admin('GET', '/v1/breakers')).body.breakers.filter((b: any) => b.agentId === agent.id);
    assert.equal(breaker.action, 'require_approval');

    // NIP-44 cannot wait for a human: refused, with the breaker's rule and id, in both directions.
    for (const res of [await encrypt(token, 'meet at noon'), await decrypt(token, me, 'see you')]) {
      assert.equal(res.status, 403, JSON.stringify(res.body));
      assert.equal(res.body.error.code, 'breaker_holds_agent');
      assert.deepEqual(codes(res), ['detector/agent/burst:breaker_open']);
      assert.equal(res.body.error.details.rule, 'detector/agent/burst');
      assert.equal(res.body.error.details.breakerId, breaker.id);
      assert.ok(res.body.error.message.includes(breaker.id), res.body.error.message);
      assert.equal(res.body.ciphertext, undefined);
      assert.equal(res.body.plaintext, undefined);
    }
    // Each refusal is its one audit entry (no breaker tripped again, no alert), and nothing is held for approval.
    assert.deepEqual(await nip44Audit(agent.name), ['allow', 'allow', 'deny', 'deny']);
    assert.deepEqual((await h.admin('GET', `/v1/audit?agent=${agent.name}&type=breaker.tripped`)).body.entries.length, 1);
    assert.equal((await h.admin('GET', '/v1/approvals?state=pending')).body.approvals.filter((a: any) => a.agentId === agent.id).length, 1, 'only the held note');

    // Reset, past the burst window: the refusals were not counted by the rate limit (6 an hour, 4 used: two left).
    assert.equal((await h.admin('POST', `/v1/breakers/${breaker.id}/reset`)).status, 200);
    h.clock!.advance(10 * 60_000);
    assert.equal((await encrypt(token)).status, 200, 'the fifth request of the hour');
    assert.equal((await decrypt(token, me)).status, 200, 'the sixth request of the hour');
    const seventh = await encrypt(token);
    assert.equal(seventh.status, 403);
    assert.deepEqual(codes(seventh), ['agent/six-an-hour:rate_limit_exceeded']);
  });

  test('a freeze breaker still tripped after an operator unfroze the agent: NIP-44 is refused like a signature (policy_denied, breaker_open)', async () => {
    const { agent, token } = await provisionAgent(h, { policy: nostrPolicy('freeze'), actions: NOSTR_ACTIONS });
    const me = (await h.call('GET', '/v1/nostr/identity', { token })).body.pubkey;
    for (const content of ['one', 'two', 'three']) assert.equal((await sign(token, content)).status, 200);
    const trip = await sign(token, 'four');
    assert.equal(trip.status, 403);
    assert.deepEqual(codes(trip), ['detector/agent/burst:breaker_tripped']);
    assert.equal((await encrypt(token)).body.error.code, 'agent_frozen');
    // The operator unfreezes the agent but leaves the breaker tripped: the breaker still refuses signatures...
    assert.equal((await h.admin('POST', `/v1/agents/${agent.name}/unfreeze`)).status, 200);
    h.clock!.advance(10 * 60_000);
    const signed = await sign(token, 'five');
    assert.equal(signed.status, 403);
    assert.equal(signed.body.error.code, 'policy_denied');
    assert.deepEqual(codes(signed), ['detector/agent/burst:breaker_open']);
    // ...and NIP-44 the same way, both directions.
    for (const res of [await encrypt(token), await decrypt(token, me)]) {
      assert.equal(res.status, 403, JSON.stringify(res.body));
      assert.equal(res.body.error.code, 'policy_denied');
      assert.deepEqual(codes(res), ['detector/agent/burst:breaker_open']);
      assert.match(res.body.error.message, /^Denied by detector\/agent\/burst: breaker brk_/);
    }
    assert.deepEqual(await nip44Audit(agent.name), ['deny', 'deny'], 'agent_frozen is refused before an entry of this type; the breaker refusals are one entry each');
    const [breaker] = (await h.admin('GET', '/v1/breakers')).body.breakers.filter((b: any) => b.agentId === agent.id);
    assert.equal((await h.admin('POST', `/v1/breakers/${breaker.id}/reset`)).status, 200);
    assert.equal((await encrypt(token)).status, 200);
    assert.equal((await decrypt(token, me)).status, 200);
  });

  test('NIP-44 requests are screened by the detectors too: a burst of them trips the freeze breaker, and the tripping one is refused', async () => {
    const { agent, token } = await provisionAgent(h, { policy: nostrPolicy('freeze'), actions: NOSTR_ACTIONS });
    for (let i = 0; i < 3; i++) assert.equal((await encrypt(token)).status, 200);
    const trip = await encrypt(token);
    assert.equal(trip.status, 403, JSON.stringify(trip.body));
    assert.equal(trip.body.error.code, 'policy_denied');
    assert.deepEqual(codes(trip), ['detector/agent/burst:breaker_tripped']);
    const [entry] = (await h.admin('GET', `/v1/audit?agent=${agent.name}&type=breaker.tripped`)).body.entries;
    assert.equal(entry.data.detector, 'detector/agent/burst');
    assert.equal((await h.admin('GET', `/v1/agents/${agent.name}`)).body.status, 'frozen');
    assert.equal((await sign(token, 'after')).body.error.code, 'agent_frozen');
  });

  test('a NIP-44 request that trips a require_approval breaker is refused breaker_holds_agent (breaker_tripped), naming the breaker it tripped', async () => {
    const { agent, token } = await provisionAgent(h, { policy: nostrPolicy('require_approval'), actions: NOSTR_ACTIONS });
    for (let i = 0; i < 3; i++) assert.equal((await encrypt(token)).status, 200);
    const trip = await encrypt(token);
    assert.equal(trip.status, 403, JSON.stringify(trip.body));
    assert.equal(trip.body.error.code, 'breaker_holds_agent');
    assert.deepEqual(codes(trip), ['detector/agent/burst:breaker_tripped']);
    const [breaker] = (await h.admin('GET', '/v1/breakers')).body.breakers.filter((b: any) => b.agentId === agent.id);
    assert.equal(breaker.action, 'require_approval');
    assert.equal(trip.body.error.details.breakerId, breaker.id);
    assert.equal((await h.admin('GET', `/v1/agents/${agent.name}`)).body.status, 'active');
    assert.equal((await h.admin('GET', '/v1/approvals?state=pending')).body.approvals.filter((a: any) => a.agentId === agent.id).length, 0, 'nothing held');
    // Signatures are held from now on.
    assert.equal((await sign(token, 'held')).status, 202);
  });

  test('a Lightning dry-run reports the breaker that would hold the payment (breaker_open), as paying does', async () => {
    const shop = ln.payee();
    const stranger = ln.payee();
    const BTC = bitcoinAsset(BITCOIN_CHAINS.regtest);
    const { agent, token } = await provisionAgent(h, {
      policy: {
        version: 1,
        rules: [
          { type: 'allow', name: 'pay-shop', match: { actions: ['lightning.pay'] } },
          { type: 'destinations', name: 'only-shop', allow: [shop.node.nodeId], match: { actions: ['lightning.pay'] } },
          { type: 'max_amount', name: 'per-payment', asset: BTC, max: '120000' },
        ],
        detectors: [{ name: 'probing', type: 'refusal_run', max: 2, action: 'require_approval' }],
      },
      actions: ['lightning.pay'],
    });
    const pay = (invoice: string) => (h.clock!.set(Date.now()), h.call('POST', '/v1/lightning/pay', { token, body: { invoice } }));
    const dryRun = (invoice: string) => (h.clock!.set(Date.now()), h.call('POST', '/v1/dry-run', { token, body: { action: 'lightning.pay', payload: { invoice } } }));
    // No breaker: the dry-run of a payment to the shop allows it.
    const before = await dryRun(shop.invoice({ amountMsat: 50_000n }).invoice);
    assert.equal(before.status, 200, JSON.stringify(before.body));
    assert.equal(before.body.decision.decision, 'allow');
    assert.equal((await pay(stranger.invoice({ amountMsat: 50_000n }).invoice)).status, 403);
    // The second refusal trips the breaker (refused, as policy refused it).
    assert.equal((await pay(stranger.invoice({ amountMsat: 50_000n }).invoice)).status, 403);
    const [breaker] = (await h.admin('GET', '/v1/breakers')).body.breakers.filter((b: any) => b.agentId === agent.id);
    assert.equal(breaker?.action, 'require_approval');
    // The breaker holds the agent now: the dry-run says so (and holds, pays, trips nothing) ...
    const dry = await dryRun(shop.invoice({ amountMsat: 50_000n }).invoice);
    assert.equal(dry.status, 200, JSON.stringify(dry.body));
    assert.equal(dry.body.decision.decision, 'require_approval');
    assert.deepEqual(dry.body.decision.violations.map((v: any) => `${v.rule}:${v.code}`), ['detector/agent/probing:breaker_open']);
    // ... which is what paying does.
    const held = await pay(shop.invoice({ amountMsat: 50_000n }).invoice);
    assert.equal(held.status, 202, JSON.stringify(held.body));
    assert.deepEqual(codes(held), ['detector/agent/probing:breaker_open']);
  });
});
