// Review scratch (delete before finishing): NIP-46 bunker probes.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { finalizeEvent, generateSecretKey, getPublicKey, nip44, verifyEvent, SimplePool, type Event } from 'nostr-tools';
import { parseBunkerInput } from 'nostr-tools/nip46';
import { startTestRelay, type TestRelay } from '../../../testing/nostr-relay/relay.ts';
import { provisionAgent, startHarness, type Harness } from './testing/harness.ts';

const POLICY = {
  version: 1,
  rules: [
    { type: 'allow', name: 'notes', match: { actions: ['nostr.event'], nostr_kinds: [1, 7] } },
    { type: 'allow', name: 'nip44', match: { actions: ['nostr.nip44'] } },
  ],
};
const note = (content: string, kind = 1) => ({ kind, content, tags: [], created_at: Math.floor(Date.now() / 1000) });

function rawClient(relayUrl: string, bunkerPubkey: string, pool: SimplePool, sk = generateSecretKey()) {
  const pubkey = getPublicKey(sk);
  const key = nip44.getConversationKey(sk, bunkerPubkey);
  const waiting = new Map<string, (r: { id: string; result: string; error?: string }) => void>();
  const sub = pool.subscribe([relayUrl], { kinds: [24133], authors: [bunkerPubkey], '#p': [pubkey], limit: 0 }, {
    onevent: (e: Event) => {
      const r = JSON.parse(nip44.decrypt(e.content, key));
      waiting.get(r.id)?.(r);
      waiting.delete(r.id);
    },
  });
  const envelope = (id: string, method: string, params: string[]) =>
    finalizeEvent({ kind: 24133, tags: [['p', bunkerPubkey]], content: nip44.encrypt(JSON.stringify({ id, method, params }), key), created_at: Math.floor(Date.now() / 1000) }, sk);
  return {
    pubkey,
    envelope,
    async send(e: Event) { await Promise.any(pool.publish([relayUrl], e)); },
    request(id: string, method: string, params: string[] = [], ms = 10_000): Promise<{ id: string; result: string; error?: string } | undefined> {
      const answered = new Promise<{ id: string; result: string; error?: string } | undefined>((resolve) => {
        waiting.set(id, resolve);
        setTimeout(() => resolve(undefined), ms);
      });
      return this.send(envelope(id, method, params)).then(() => answered);
    },
    close: () => sub.close(),
  };
}

async function bunkerUri(h: Harness, sessionId: string): Promise<string> {
  const res = await h.admin('POST', `/v1/sessions/${sessionId}/nostr-connect`);
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body.bunker as string;
}

describe('review: bunker', { timeout: 300_000 }, () => {
  let relay: TestRelay;
  let h: Harness;
  const pool = new SimplePool();
  before(async () => {
    relay = await startTestRelay();
    h = await startHarness({ manualClock: true, config: { nostrRelays: [relay.url], nostrBunkerRate: { perSecond: 1, burst: 20 } } });
  });
  after(async () => {
    pool.destroy();
    await h?.close();
    await relay?.close();
  });

  test('connect with a new secret for another (narrower) session from an already connected key', async () => {
    const { agent, session: broad, token } = await provisionAgent(h, { policy: POLICY, actions: ['nostr.event', 'nostr.nip44'] });
    const narrow = await h.admin('POST', `/v1/agents/${agent.name}/sessions`, { actions: ['nostr.nip44'], ttl: '1h' });
    assert.equal(narrow.status, 201, JSON.stringify(narrow.body));
    const narrowId = narrow.body.session.id;
    void token;
    const bpA = (await parseBunkerInput(await bunkerUri(h, broad.id)))!;
    const bpB = (await parseBunkerInput(await bunkerUri(h, narrowId)))!;
    const sk = generateSecretKey();
    const x = rawClient(relay.url, bpA.pubkey, pool, sk);
    assert.equal((await x.request('c1', 'connect', [bpA.pubkey, bpA.secret!]))!.result, 'ack');
    // The operator moves this client to the narrow session: it connects with B's secret.
    const moved = await x.request('c2', 'connect', [bpB.pubkey, bpB.secret!]);
    console.log('connect with B secret:', JSON.stringify(moved));
    const signed = await x.request('s1', 'sign_event', [JSON.stringify(note('signed under which session?'))]);
    console.log('sign_event after moving to the nip44-only session:', signed?.error ?? (verifyEvent(JSON.parse(signed!.result)) ? 'SIGNED' : '?'));
    // B's secret is still live for another key.
    const y = rawClient(relay.url, bpA.pubkey, pool);
    console.log('another key redeems B secret:', JSON.stringify(await y.request('c1', 'connect', [bpB.pubkey, bpB.secret!])));
    const audit = (await h.admin('GET', `/v1/audit?agent=${agent.name}&type=sign.request`)).body.entries;
    console.log('sign.request sessions:', audit.map((e: any) => `${e.sessionId === broad.id ? 'broad' : e.sessionId === narrowId ? 'narrow' : e.sessionId} ${e.decision}`));
    x.close();
    y.close();
  });

  test('revoke-all, logout then reconnect, secrets in answers', async () => {
    const { agent, session } = await provisionAgent(h, { policy: POLICY, actions: ['nostr.event', 'nostr.nip44'] });
    const uri = await bunkerUri(h, session.id);
    const spare = await bunkerUri(h, session.id);
    const bp = (await parseBunkerInput(uri))!;
    const bpSpare = (await parseBunkerInput(spare))!;
    const x = rawClient(relay.url, bp.pubkey, pool);
    assert.equal((await x.request('c1', 'connect', [bp.pubkey, bp.secret!]))!.result, 'ack');
    assert.ok(verifyEvent(JSON.parse((await x.request('s1', 'sign_event', [JSON.stringify(note('before'))]))!.result)));
    const ra = await h.admin('POST', `/v1/agents/${agent.id}/revoke-all`, {});
    console.log('revoke-all status', ra.status, JSON.stringify(ra.body).slice(0, 200));
    console.log('after revoke-all:', JSON.stringify(await x.request('s2', 'sign_event', [JSON.stringify(note('after'))])));
    console.log('nip44 after revoke-all:', JSON.stringify(await x.request('s3', 'nip44_encrypt', [getPublicKey(generateSecretKey()), 'hi'])));
    await h.admin('POST', `/v1/agents/${agent.id}/unfreeze`);
    console.log('after unfreeze:', JSON.stringify(await x.request('s4', 'sign_event', [JSON.stringify(note('after unfreeze'))])));
    const y = rawClient(relay.url, bp.pubkey, pool);
    console.log('spare secret after revoke-all+unfreeze:', JSON.stringify(await y.request('c1', 'connect', [bpSpare.pubkey, bpSpare.secret!])));
    const all = JSON.stringify((await h.admin('GET', '/v1/audit?limit=1000')).body);
    console.log('secrets in audit?', all.includes(bp.secret!), all.includes(bpSpare.secret!));
    x.close();
    y.close();
  });
});
