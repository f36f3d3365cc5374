// NIP-46 sign_events answered before a daemon restart, delivered again once the operator accepts the same
// nostrconnect:// app anew (on SQLite and PostgreSQL; bunker-failover-approved-replay and
// bunker-failover-frozen-replay cover a second instance). Found by review: an answer taken from an approval (the
// in-memory hold) and a refusal of the credential check (agent frozen) were not kept under the request's key
// (nip46/<client>/<request id>): after the restart the first opened a second approval for an event already approved
// and signed, the second was signed and charged though its client had been told it was refused.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { SimplePool } from 'nostr-tools';
import { startTestRelay, type TestRelay } from '../../../../testing/nostr-relay/relay.ts';
import { provisionAgent, startHarness, type Harness } from '../testing/harness.ts';
import { rawNip46Client } from './testing/raw-nip46-client.ts';

const nowSeconds = () => Math.floor(Date.now() / 1000);

for (const store of ['sqlite', 'postgres'] as const) {
  describe(`bunker: approved and frozen sign_events from before a restart (${store})`, { timeout: 120_000 }, () => {
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

    /** A nostrconnect:// app accepted for `sessionId` (again by `accept` after a restart). */
    async function app(sessionId: string) {
      const issued = await h.admin('POST', `/v1/sessions/${sessionId}/nostr-connect`);
      const transport = new URL((issued.body.bunker as string).replace('bunker://', 'http://')).hostname;
      const { nostrconnectUri, envelope, send, answerTo, redeliver } = await rawNip46Client(pool, relay, transport);
      const accept = async () => {
        const uri = nostrconnectUri('s3cr3t');
        const res = await h.admin('POST', `/v1/sessions/${sessionId}/nostr-connect`, { nostrconnect: uri });
        assert.equal(res.status, 201, JSON.stringify(res.body));
      };
      await accept();
      return { envelope, send, answerTo, redeliver, accept };
    }
    const audit = async (agentName: string, type: string) =>
      ((await h.admin('GET', `/v1/audit?agent=${agentName}&type=${type}&limit=100`)).body.entries as { decision: string }[]).map((e) => e.decision);

    test('a sign_event answered from an approved hold is answered the same signed event after a restart, with no second approval', async () => {
      const policy = { version: 1, rules: [
        { type: 'allow', name: 'profile', match: { actions: ['nostr.event'], nostr_kinds: [0] } },
        { type: 'approval_tier', name: 'profile-by-hand', match: { nostr_kinds: [0] } },
      ] };
      const { agent, session } = await provisionAgent(h, { policy, actions: ['nostr.event'] });
      const client = await app(session.id);
      const profile = JSON.stringify({ kind: 0, content: '{"name":"bot"}', tags: [], created_at: nowSeconds() });
      await client.send(client.envelope('s1', 'sign_event', [profile]));
      const held = await client.answerTo('s1');
      const approvalId = /\(approval (apr_[0-9a-f]+)\)/.exec(held.error ?? '')?.[1];
      assert.ok(approvalId, JSON.stringify(held));
      assert.equal((await h.admin('POST', `/v1/approvals/${approvalId}/approve`)).status, 200);
      const s2 = client.envelope('s2', 'sign_event', [profile]);
      await client.send(s2);
      const signed = await client.answerTo('s2');
      assert.equal(signed.error, undefined, JSON.stringify(signed));

      await h.restart();
      await client.accept();
      await client.redeliver(s2);
      const again = await client.answerTo('s2', 2);
      assert.equal(again.error, undefined, JSON.stringify(again));
      assert.deepEqual(JSON.parse(again.result), JSON.parse(signed.result), 'the signed event s2 was first answered');
      assert.deepEqual(await audit(agent.name, 'sign.request'), ['require_approval'], 'no second decision');
      assert.deepEqual(await audit(agent.name, 'sign.replay'), ['allow']);
      const approvals = (await h.admin('GET', `/v1/approvals?agent=${agent.id}&state=all`)).body.approvals as { id: string }[];
      assert.deepEqual(approvals.map((a) => a.id), [approvalId], 'no second approval');
    });

    test('a sign_event refused agent_frozen is answered the same refusal after a restart and an unfreeze, and not signed', async () => {
      const policy = { version: 1, rules: [{ type: 'allow', name: 'notes', match: { actions: ['nostr.event'], nostr_kinds: [1] } }] };
      const { agent, session } = await provisionAgent(h, { policy, actions: ['nostr.event'] });
      const client = await app(session.id);
      const note = JSON.stringify({ kind: 1, content: 'sent while frozen', tags: [], created_at: nowSeconds() });
      assert.equal((await h.admin('POST', `/v1/agents/${agent.id}/freeze`, {})).status, 200);
      const s1 = client.envelope('s1', 'sign_event', [note]);
      await client.send(s1);
      const refused = await client.answerTo('s1');
      assert.match(refused.error ?? '', /^agent_frozen: /, JSON.stringify(refused));

      assert.equal((await h.admin('POST', `/v1/agents/${agent.id}/unfreeze`, {})).status, 200);
      await h.restart();
      await client.accept();
      await client.redeliver(s1);
      assert.deepEqual(await client.answerTo('s1', 2), refused, 'answered the stored refusal');
      assert.deepEqual(await audit(agent.name, 'sign.request'), ['error'], 'nothing signed or charged');
      assert.deepEqual(await audit(agent.name, 'sign.replay'), ['deny']);
    });
  });
}
