// NIP-46 envelopes a relay kept from before a daemon restart, delivered again once the same client key connects
// anew (apps keep their client key across reconnects). The replay caches are in memory, so before the fix such an
// envelope ran: a sign_event the client had been told was refused (policy_denied) was signed, charged and audited
// `allow` after the restart. Now a request a bunker:// client dated before it connected in this process is
// `replayed_request`, and a sign_event delivered again is answered from the store (docs/nostr.md, "What outsiders can
// make it do"; bunker.ts step 6).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { SimplePool } from 'nostr-tools';
import { startTestRelay, type TestRelay } from '../../../../testing/nostr-relay/relay.ts';
import { provisionAgent, startHarness, type Harness } from '../testing/harness.ts';
import { rawNip46Client } from './testing/raw-nip46-client.ts';

const policy = { version: 1, rules: [
  { type: 'allow', name: 'notes', match: { actions: ['nostr.event'], nostr_kinds: [1] } },
  { type: 'rate_limit', name: 'one-note-a-minute', max: 1, window: '1m', match: { nostr_kinds: [1] } },
] };
const nowSeconds = () => Math.floor(Date.now() / 1000);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Waits for the wall clock's next second: envelopes are dated in seconds, a restart takes longer than one. */
async function nextSecond(after: number): Promise<void> {
  while (nowSeconds() <= after) await sleep(20);
}

for (const store of ['sqlite', 'postgres'] as const) {
  describe(`bunker envelopes from before a restart (${store})`, { timeout: 120_000 }, () => {
    let relay: TestRelay;
    let h: Harness;
    const pool = new SimplePool();
    before(async () => {
      relay = await startTestRelay();
      h = await startHarness({ store, manualClock: true, config: { nostrRelays: [relay.url] } });
    });
    after(async () => {
      pool.destroy();
      await h?.close();
      await relay?.close();
    });

    /** A NIP-46 client whose key survives reconnects; it dates envelopes `now + skewSeconds` (its own clock). */
    async function appClient(transport: string, skewSeconds = 0) {
      const client = await rawNip46Client(pool, relay, transport, skewSeconds);
      const { envelope, send, answerTo } = client;
      return { ...client, request: async (id: string, method: string, params: string[]) => { await send(envelope(id, method, params)); return answerTo(id); } };
    }

    async function issue(sessionId: string): Promise<{ transport: string; secret: string }> {
      const res = await h.admin('POST', `/v1/sessions/${sessionId}/nostr-connect`);
      assert.equal(res.status, 201, JSON.stringify(res.body));
      const u = new URL((res.body.bunker as string).replace('bunker://', 'http://'));
      return { transport: u.hostname, secret: u.searchParams.get('secret')! };
    }

    const note = (content: string) => JSON.stringify({ kind: 1, content, tags: [], created_at: nowSeconds() });
    const decisions = async (agentName: string) =>
      ((await h.admin('GET', `/v1/audit?agent=${agentName}&type=sign.request&limit=100`)).body.entries as { decision: string }[]).map((e) => e.decision);

    test('bunker://: a sign_event refused before a restart, delivered again after the client reconnects, is replayed_request and not signed', async () => {
      const { agent, session } = await provisionAgent(h, { policy, actions: ['nostr.event'] });
      const first = await issue(session.id);
      const client = await appClient(first.transport);
      assert.equal((await client.request('c1', 'connect', [first.transport, first.secret])).result, 'ack');
      assert.equal(JSON.parse((await client.request('s1', 'sign_event', [note('first')])).result).content, 'first');
      const kept = client.envelope('s2', 'sign_event', [note('second')]);
      await client.send(kept);
      assert.match((await client.answerTo('s2')).error ?? '', /^policy_denied: .*rate_limit_exceeded/, 'the client is told this request was refused');

      await nextSecond(kept.created_at);
      await h.restart();
      h.clock!.advance(61_000); // the rate limit alone would let the replayed note through now
      const second = await issue(session.id);
      assert.equal((await client.request('c2', 'connect', [second.transport, second.secret])).result, 'ack');

      await client.redeliver(kept);
      const replayed = await client.answerTo('s2', 2);
      assert.match(replayed.error ?? '', /^replayed_request: /, JSON.stringify(replayed));
      assert.equal(replayed.result, '');
      assert.deepEqual(await decisions(agent.name), ['allow', 'deny'], 'nothing signed or charged for the replay');
      // The reconnected client is served as before: a new request (new id) signs.
      assert.equal(JSON.parse((await client.request('s3', 'sign_event', [note('third')])).result).content, 'third');
      assert.deepEqual(await decisions(agent.name), ['allow', 'deny', 'allow']);
    });

    test('bunker://: a client whose clock runs 9 minutes behind is served right after a restart', async () => {
      await h.restart();
      const { session } = await provisionAgent(h, { policy, actions: ['nostr.event'] });
      const { transport, secret } = await issue(session.id);
      const client = await appClient(transport, -9 * 60);
      assert.equal((await client.request('c1', 'connect', [transport, secret])).result, 'ack');
      const signed = await client.request('s1', 'sign_event', [note('behind')]);
      assert.equal(signed.error, undefined, JSON.stringify(signed));
      assert.equal(JSON.parse(signed.result).content, 'behind');
    });

    // A `nostrconnect://` client sent no `connect` to date its connection by, so no date cuts off its envelopes (the
    // daemon's start, by the server's clock, refused the fresh requests of a client running behind and let the old
    // ones of a client running ahead through: found by review). A `sign_event` is kept in the store under its client
    // and request id: delivered again, it is answered the refusal it got, not signed nor charged.
    for (const skew of [0, 120]) {
      test(`nostrconnect://: a sign_event refused before a restart, delivered again once the operator accepts the client anew, is answered the same refusal and not signed (client clock ${skew}s ahead)`, async () => {
        const { agent, session } = await provisionAgent(h, { policy, actions: ['nostr.event'] });
        const { transport } = await issue(session.id); // only to learn the transport key; its secret stays unused
        const client = await appClient(transport, skew);
        const accept = async () => {
          const uri = client.nostrconnectUri('s3cr3t');
          const res = await h.admin('POST', `/v1/sessions/${session.id}/nostr-connect`, { nostrconnect: uri });
          assert.equal(res.status, 201, JSON.stringify(res.body));
        };
        await accept();
        assert.equal(JSON.parse((await client.request('s1', 'sign_event', [note('first')])).result).content, 'first');
        const kept = client.envelope('s2', 'sign_event', [note('second')]);
        await client.send(kept);
        const refused = await client.answerTo('s2');
        assert.match(refused.error ?? '', /^policy_denied: .*rate_limit_exceeded/);

        await nextSecond(nowSeconds());
        await h.restart();
        h.clock!.advance(61_000); // the rate limit alone would let the replayed note through now
        await accept();
        await client.redeliver(kept);
        const replayed = await client.answerTo('s2', 2);
        assert.deepEqual(replayed, refused, 'answered the stored refusal');
        assert.deepEqual(await decisions(agent.name), ['allow', 'deny'], 'nothing signed or charged for the replay');
        const replays = (await h.admin('GET', `/v1/audit?agent=${agent.name}&type=sign.replay&limit=100`)).body.entries as { decision: string }[];
        assert.deepEqual(replays.map((e) => e.decision), ['deny']);
        assert.equal(JSON.parse((await client.request('s3', 'sign_event', [note('third')])).result).content, 'third');
      });
    }

    test('nostrconnect://: a client whose clock runs 2 minutes behind, accepted right after a restart, is served', async () => {
      await h.restart();
      const { session } = await provisionAgent(h, { policy, actions: ['nostr.event'] });
      const { transport } = await issue(session.id);
      const client = await appClient(transport, -120);
      const uri = client.nostrconnectUri('s3cr3t');
      assert.equal((await h.admin('POST', `/v1/sessions/${session.id}/nostr-connect`, { nostrconnect: uri })).status, 201);
      const pong = await client.request('p1', 'ping', []);
      assert.equal(pong.error, undefined, JSON.stringify(pong));
      assert.equal(pong.result, 'pong');
      const signed = await client.request('s1', 'sign_event', [note('behind')]);
      assert.equal(signed.error, undefined, JSON.stringify(signed));
      assert.equal(JSON.parse(signed.result).content, 'behind');
    });
  });
}
