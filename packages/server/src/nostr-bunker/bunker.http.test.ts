// The NIP-46 bunker as apps meet it: nostr-tools' BunkerSigner (and, for the attacks, hand-built envelopes)
// over a NIP-01 relay on loopback, against a real Airlock runtime whose admin API issues the connection strings.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { finalizeEvent, generateSecretKey, getPublicKey, nip04, nip44, verifyEvent, SimplePool, type Event } from 'nostr-tools';
import { BunkerSigner, createNostrConnectURI, parseBunkerInput } from 'nostr-tools/nip46';
import { startTestRelay, type TestRelay } from '../../../../testing/nostr-relay/relay.ts';
import { provisionAgent, startHarness, type Harness } from '../testing/harness.ts';

const BURST = 8;

/** The agent's policy: notes and reactions (kinds 1 and 7) and NIP-44 with anyone; every other kind is refused. */
const POLICY = {
  version: 1,
  rules: [
    { type: 'allow', name: 'notes-and-reactions', match: { actions: ['nostr.event'], nostr_kinds: [1, 7] } },
    { type: 'allow', name: 'nip44', match: { actions: ['nostr.nip44'] } },
  ],
};

/** An agent and a session allowed `nostr.event` and `nostr.nip44`, issued through the admin API. */
async function nostrSession(h: Harness, ttl = '1h'): Promise<{ sessionId: string; agentId: string; agentName: string }> {
  const { agent, session } = await provisionAgent(h, { policy: POLICY, actions: ['nostr.event', 'nostr.nip44'], ttl });
  return { sessionId: session.id, agentId: agent.id, agentName: agent.name };
}

/** Nostr signatures released for an agent, as the audit log records them (allowed sign.request entries). */
async function signedCount(h: Harness, agentName: string): Promise<number> {
  const res = await h.admin('GET', `/v1/audit?agent=${agentName}&type=sign.request`);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return (res.body.entries as { decision?: string; data: { action?: string } }[]).filter((e) => e.decision === 'allow').length;
}

async function bunkerUri(h: Harness, sessionId: string): Promise<string> {
  const res = await h.admin('POST', `/v1/sessions/${sessionId}/nostr-connect`);
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body.bunker as string;
}

const note = (content: string, kind = 1) => ({ kind, content, tags: [['t', 'airlock']], created_at: Math.floor(Date.now() / 1000) });

/** A NIP-46 client that builds its own envelopes: for requests BunkerSigner would never send. */
function rawClient(relayUrl: string, bunkerPubkey: string, pool: SimplePool) {
  const sk = generateSecretKey();
  const pubkey = getPublicKey(sk);
  const key = nip44.getConversationKey(sk, bunkerPubkey);
  const waiting = new Map<string, (r: { id: string; result: string; error?: string }) => void>();
  const sub = pool.subscribe([relayUrl], { kinds: [24133], authors: [bunkerPubkey], '#p': [pubkey], limit: 0 }, {
    onevent: (e: Event) => {
      const r = JSON.parse(nip44.decrypt(e.content, key));
      client.answered.add(r.id);
      waiting.get(r.id)?.(r);
      waiting.delete(r.id);
    },
  });
  const envelope = (id: string, method: string, params: string[], signer = sk, createdAt = Math.floor(Date.now() / 1000)) =>
    finalizeEvent({ kind: 24133, tags: [['p', bunkerPubkey]], content: nip44.encrypt(JSON.stringify({ id, method, params }), key), created_at: createdAt }, signer);
  const client = {
    pubkey,
    envelope,
    async send(event: Event): Promise<void> {
      await Promise.any(pool.publish([relayUrl], event));
    },
    /** Answers that reached this client, by request id (an unanswered envelope never shows up here). */
    answered: new Set<string>(),
    request(id: string, method: string, params: string[] = [], createdAt?: number): Promise<{ id: string; result: string; error?: string }> {
      const answered = new Promise<{ id: string; result: string; error?: string }>((resolve) => waiting.set(id, resolve));
      return this.send(envelope(id, method, params, sk, createdAt)).then(() => answered);
    },
    close: () => sub.close(),
  };
  return client;
}

/** Polls until `done` holds (the bunker judges envelopes asynchronously); fails the test after `ms`. */
async function eventually(done: () => boolean, what: string, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!done()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('NIP-46 bunker: nostr-tools BunkerSigner over a loopback relay', { timeout: 300_000 }, () => {
  let relay: TestRelay;
  let h: Harness;
  const pool = new SimplePool();
  const signers: BunkerSigner[] = [];
  const signerFor = async (uri: string) => {
    const bp = await parseBunkerInput(uri);
    assert.ok(bp);
    const signer = BunkerSigner.fromBunker(generateSecretKey(), bp, { pool });
    signers.push(signer);
    return signer;
  };

  before(async () => {
    relay = await startTestRelay();
    // A manual clock: sessions expire when the test says so, and the per-client bucket never refills mid-test.
    h = await startHarness({ manualClock: true, config: { nostrRelays: [relay.url], nostrBunkerRate: { perSecond: 1, burst: BURST } } });
  });
  after(async () => {
    for (const s of signers) await s.close();
    pool.destroy();
    await h?.close();
    await relay?.close();
  });

  test('connect, get_public_key, sign_event (verified by nostr-tools), nip44 both ways, ping', async () => {
    const { sessionId, agentId } = await nostrSession(h);
    const uri = await bunkerUri(h, sessionId);
    const transport = await h.airlock.nostr.transport(agentId);
    assert.match(uri, new RegExp(`^bunker://${transport.pubkey}\\?relay=`));
    const signer = await signerFor(uri);
    await signer.connect();
    const pubkey = await signer.getPublicKey();
    assert.equal(pubkey, (await h.airlock.nostr.identity(agentId)).pubkey);
    assert.notEqual(pubkey, transport.pubkey, 'the identity key is not the transport key');

    const signed = await signer.signEvent(note('hello from an agent'));
    assert.equal(verifyEvent(signed), true);
    assert.equal(signed.pubkey, pubkey);
    assert.equal(signed.content, 'hello from an agent');

    const peer = generateSecretKey();
    const peerPub = getPublicKey(peer);
    const ciphertext = await signer.nip44Encrypt(peerPub, 'for your eyes');
    assert.equal(nip44.decrypt(ciphertext, nip44.getConversationKey(peer, pubkey)), 'for your eyes');
    const fromPeer = nip44.encrypt('and back', nip44.getConversationKey(peer, pubkey));
    assert.equal(await signer.nip44Decrypt(peerPub, fromPeer), 'and back');
    await signer.ping();
    // NIP-04 is not in this session's scope (nor named by its policy): refused, nothing encrypted.
    await assert.rejects(signer.nip04Encrypt(peerPub, 'old'), (e: unknown) => /^policy_denied: .*session\/actions: action_not_allowed\]$/.test(String(e)));
  });

  test('issuing a connection is audited (both flows), with neither secret in the entry; an issuance refused writes nothing', async () => {
    const { sessionId, agentId } = await nostrSession(h);
    const transportPubkey = (await h.airlock.nostr.transport(agentId)).pubkey;
    const uri = await bunkerUri(h, sessionId);
    const secret = new URL(uri.replace('bunker://', 'https://')).searchParams.get('secret')!;
    const clientSk = generateSecretKey();
    const clientSecret = `cs-${Math.random().toString(36).slice(2)}`;
    const connectUri = createNostrConnectURI({ clientPubkey: getPublicKey(clientSk), relays: [relay.url], secret: clientSecret, name: 'audited app' });
    assert.equal((await h.admin('POST', `/v1/sessions/${sessionId}/nostr-connect`, { nostrconnect: connectUri })).status, 201);
    const entries = (await h.admin('GET', `/v1/audit?type=nostr.connection_issued&agent=${agentId}`)).body.entries as any[];
    assert.deepEqual(
      entries.map((e) => [e.actor, e.sessionId, e.data.flow, e.data.transportPubkey, e.data.clientPubkey, e.data.by]),
      [['operator', sessionId, 'bunker', transportPubkey, undefined, 'admin'], ['operator', sessionId, 'nostrconnect', transportPubkey, getPublicKey(clientSk), 'admin']],
    );
    const text = JSON.stringify(entries);
    assert.ok(!text.includes(secret) && !text.includes(clientSecret), 'no secret in the audit log');
    // A revoked session gets no connection string and leaves no entry.
    assert.equal((await h.admin('POST', `/v1/sessions/${sessionId}/revoke`)).status, 200);
    assert.equal((await h.admin('POST', `/v1/sessions/${sessionId}/nostr-connect`)).status, 409);
    assert.equal((await h.admin('GET', `/v1/audit?type=nostr.connection_issued&agent=${agentId}`)).body.entries.length, 2);
  });

  test('NIP-04 only where the session and a rule name nostr.nip04, with the listed peers; nostr-tools reads what it writes', async () => {
    const friend = generateSecretKey();
    const friendPub = getPublicKey(friend);
    const stranger = getPublicKey(generateSecretKey());
    const { agent, session } = await provisionAgent(h, {
      policy: { version: 1, rules: [
        { type: 'allow', name: 'legacy-dms', match: { actions: ['nostr.nip04'] } },
        { type: 'nostr_peers', name: 'friends-only', allow: [friendPub] },
      ] },
      actions: ['nostr.event', 'nostr.nip04'],
    });
    const signer = await signerFor(await bunkerUri(h, session.id));
    await signer.connect();
    const agentPub = (await h.airlock.nostr.identity(agent.id)).pubkey;
    const ciphertext = await signer.nip04Encrypt(friendPub, 'old-style hello');
    assert.equal(await nip04.decrypt(friend, agentPub, ciphertext), 'old-style hello');
    assert.equal(await signer.nip04Decrypt(friendPub, await nip04.encrypt(friend, agentPub, 'and back')), 'and back');
    await assert.rejects(signer.nip04Encrypt(stranger, 'to a stranger'), (e: unknown) => /^policy_denied: .*\[agent\/friends-only: nostr_peer_not_allowed\]$/.test(String(e)));
    // NIP-44 is a different action: this session may not use it.
    await assert.rejects(signer.nip44Encrypt(friendPub, 'x'), (e: unknown) => /^policy_denied: .*session\/actions: action_not_allowed\]$/.test(String(e)));
    const audit = await h.admin('GET', `/v1/audit?agent=${agent.name}&type=nostr.nip04`);
    assert.deepEqual(audit.body.entries.map((e: any) => e.decision), ['allow', 'allow', 'deny']);
    assert.ok(!JSON.stringify(audit.body).includes('old-style hello'), 'no plaintext in the audit log');
  });

  test('nostrconnect://: the operator hands the client URI to Airlock, the client gets its secret back and signs', async () => {
    const { sessionId, agentId } = await nostrSession(h);
    const sk = generateSecretKey();
    const secret = Math.random().toString(36).slice(2);
    const uri = createNostrConnectURI({ clientPubkey: getPublicKey(sk), relays: [relay.url], secret, name: 'test app' });
    const connecting = BunkerSigner.fromURI(sk, uri, { pool }, 20_000);
    // fromURI subscribes before it resolves; the relay keeps no copy of an ephemeral reply, so the bunker must
    // answer only once the client's REQ is open: wait for the relay to hold it (no fixed sleep).
    while (!relay.listensFor(getPublicKey(sk))) await new Promise((r) => setTimeout(r, 5));
    const accepted = await h.admin('POST', `/v1/sessions/${sessionId}/nostr-connect`, { nostrconnect: uri });
    assert.equal(accepted.status, 201, JSON.stringify(accepted.body));
    assert.equal(accepted.body.clientPubkey, getPublicKey(sk));
    const signer = await connecting;
    signers.push(signer);
    assert.equal(signer.bp.pubkey, (await h.airlock.nostr.transport(agentId)).pubkey);
    const signed = await signer.signEvent(note('via nostrconnect'));
    assert.equal(verifyEvent(signed), true);
    assert.equal(signed.pubkey, (await h.airlock.nostr.identity(agentId)).pubkey);
    const bad = await h.admin('POST', `/v1/sessions/${sessionId}/nostr-connect`, { nostrconnect: `nostrconnect://${getPublicKey(sk)}?relay=${encodeURIComponent('ws://127.0.0.1:1')}&secret=x` });
    assert.deepEqual([bad.status, bad.body.error.code], [400, 'invalid_request'], 'a relay the bunker does not use');
  });

  test('a client that never redeemed a secret, or presents a used one, gets no answer and nothing signed; the refusals are audited', async () => {
    const { sessionId, agentName } = await nostrSession(h);
    const uri = await bunkerUri(h, sessionId);
    const bp = (await parseBunkerInput(uri))!;
    const before = await signedCount(h, agentName);
    const bunker = h.airlock.bunker!;
    const dropped = bunker.stats.droppedUnknown;

    // Not answered `unauthorized`: another instance on the same store may hold this client or secret, and this
    // instance's refusal raced its answer (found by review: bunker-review-instances-answer.http.test.ts).
    const stranger = rawClient(relay.url, bp.pubkey, pool);
    await stranger.send(stranger.envelope('s1', 'sign_event', [JSON.stringify(note('not yours'))]));
    await stranger.send(stranger.envelope('s2', 'connect', [bp.pubkey, 'guessed-secret']));
    await stranger.send(stranger.envelope('s3', 'get_public_key', []));

    const first = await signerFor(uri);
    await first.connect();
    const second = rawClient(relay.url, bp.pubkey, pool);
    await second.send(second.envelope('c1', 'connect', [bp.pubkey, bp.secret!]));
    await second.send(second.envelope('s1', 'sign_event', [JSON.stringify(note('nope'))]));
    await eventually(() => bunker.stats.droppedUnknown === dropped + 5, 'the five envelopes to be dropped');
    // Dropped is final; a round trip after it, and still no answer to any of them.
    await first.ping();
    assert.deepEqual([...stranger.answered, ...second.answered], [], 'no answer to a client not connected here');
    assert.equal(await signedCount(h, agentName), before, 'nothing was signed for either');
    // The refusals made before the Nostr service was reached are in the audit log: keys that are not connected
    // are counted together per transport key (an outsider makes keys for free), the stranger's three and the
    // second signer's two in one entry.
    await h.airlock.bunker!.flushRefusals(true);
    const failures = (await h.admin('GET', '/v1/audit?type=auth.failures')).body.entries.filter((e: any) => e.data.source === `nostr:unconnected:${bp.pubkey}`);
    assert.deepEqual(failures.map((e: any) => e.data.codes), [{ unauthorized: 5 }]);
    stranger.close();
    second.close();
  });

  test('a connected client that brings another session\'s unused secret moves to that session, and the secret is used up (found by review)', async () => {
    const { sessionId: broad, agentName } = await nostrSession(h);
    // A narrower session of the same agent: NIP-44 only, no events signed.
    const narrow = (await h.admin('POST', `/v1/agents/${agentName}/sessions`, { actions: ['nostr.nip44'], ttl: '1h' })).body.session.id;
    const a = (await parseBunkerInput(await bunkerUri(h, broad)))!;
    const b = (await parseBunkerInput(await bunkerUri(h, narrow)))!;
    assert.equal(a.pubkey, b.pubkey, 'one transport key per agent');
    const x = rawClient(relay.url, a.pubkey, pool);
    assert.equal((await x.request('c1', 'connect', [a.pubkey, a.secret!])).result, 'ack');
    assert.ok((await x.request('s1', 'sign_event', [JSON.stringify(note('on the broad session'))])).result, 'signed on the broad session');
    assert.equal((await x.request('c2', 'connect', [b.pubkey, b.secret!])).result, 'ack');
    // Before: still on the broad session, and signed.
    const refused = await x.request('s2', 'sign_event', [JSON.stringify(note('on the narrow session'))]);
    assert.equal(refused.result, '');
    assert.match(refused.error!, /action_not_allowed|session_scope|not allowed/);
    // Saying connect again with the secret it used first (a restarted client) keeps it where it is.
    assert.equal((await x.request('c3', 'connect', [a.pubkey, a.secret!])).result, 'ack');
    assert.match((await x.request('s3', 'sign_event', [JSON.stringify(note('still narrow'))])).error!, /action_not_allowed|session_scope|not allowed/);
    // The narrow session's secret was used: another key cannot redeem it.
    const y = rawClient(relay.url, a.pubkey, pool);
    const dropped = h.airlock.bunker!.stats.droppedUnknown;
    await y.send(y.envelope('c1', 'connect', [b.pubkey, b.secret!]));
    await eventually(() => h.airlock.bunker!.stats.droppedUnknown === dropped + 1, 'the used secret\'s connect to be dropped');
    assert.equal((await x.request('p1', 'ping')).result, 'pong');
    assert.deepEqual([...y.answered], [], 'dropped unanswered: another instance may hold the secret');
    x.close();
    y.close();
  });

  test('a kind outside policy: the error reply names the rule and the code', async () => {
    const { sessionId } = await nostrSession(h);
    const signer = await signerFor(await bunkerUri(h, sessionId));
    await signer.connect();
    await assert.rejects(signer.signEvent(note('a DM in the clear', 4)), (e: unknown) => {
      assert.match(String(e), /^policy_denied: .*\[agent\/default: nostr_kind_not_allowed\]$/);
      return true;
    });
  });

  test('a revoked session stops at the next request; so does an expired one', async () => {
    const revokedOne = await nostrSession(h);
    const signer = await signerFor(await bunkerUri(h, revokedOne.sessionId));
    await signer.connect();
    await signer.signEvent(note('before the revoke'));
    assert.equal((await h.admin('POST', `/v1/sessions/${revokedOne.sessionId}/revoke`)).status, 200);
    await assert.rejects(signer.signEvent(note('after the revoke')), (e: unknown) => String(e).startsWith('session_revoked'));
    const again = await h.admin('POST', `/v1/sessions/${revokedOne.sessionId}/nostr-connect`);
    assert.deepEqual([again.status, again.body.error.code], [409, 'conflict']);

    const expiring = await nostrSession(h, '1m');
    const other = await signerFor(await bunkerUri(h, expiring.sessionId));
    await other.connect();
    await other.signEvent(note('while it lasts'));
    h.clock!.advance(61_000);
    await assert.rejects(other.signEvent(note('too late')), (e: unknown) => String(e).startsWith('session_expired'));
  });

  // A dropped client is never answered: a regression shows as a hang, failed by the timeout.
  test('a frozen agent\'s connected client is refused at the next request, and signs again once unfrozen; a connect during the freeze drops no one', { timeout: 30_000 }, async () => {
    const { sessionId, agentId, agentName } = await nostrSession(h);
    const signer = await signerFor(await bunkerUri(h, sessionId));
    const restarted = await signerFor(await bunkerUri(h, sessionId));
    const unused = await bunkerUri(h, sessionId);
    await signer.connect();
    await restarted.connect();
    await signer.signEvent(note('before the freeze'));
    const before = await signedCount(h, agentName);
    assert.equal((await h.admin('POST', `/v1/agents/${agentId}/freeze`)).status, 200);
    await assert.rejects(signer.signEvent(note('while frozen')), (e: unknown) => String(e).startsWith('agent_frozen'));
    await assert.rejects(signer.nip44Encrypt(getPublicKey(generateSecretKey()), 'while frozen'), (e: unknown) => String(e).startsWith('agent_frozen'));
    // Another client of the session says connect again (as nostr-tools does after a restart), and a new one brings
    // its unused secret: both refused while frozen, and neither drops the session's clients or uses the secret up.
    await assert.rejects(restarted.connect(), (e: unknown) => String(e).startsWith('agent_frozen'));
    const late = await signerFor(unused);
    await assert.rejects(late.connect(), (e: unknown) => String(e).startsWith('agent_frozen'));
    assert.equal(await signedCount(h, agentName), before, 'nothing signed while frozen');
    assert.equal((await h.admin('POST', `/v1/agents/${agentId}/unfreeze`)).status, 200);
    assert.equal(verifyEvent(await signer.signEvent(note('after the thaw'))), true);
    assert.equal(verifyEvent(await restarted.signEvent(note('after the thaw, restarted'))), true);
    await late.connect();
    assert.equal(verifyEvent(await late.signEvent(note('after the thaw, with the secret kept'))), true);
  });

  test(`a flood past the per-client rate (burst ${BURST}) gets error replies, not signatures`, async () => {
    const { sessionId, agentName } = await nostrSession(h);
    const signer = await signerFor(await bunkerUri(h, sessionId));
    await signer.connect(); // taken from the bucket shared by keys that are not connected yet
    const before = await signedCount(h, agentName);
    const results = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => signer.signEvent(note(`flood ${i}`))));
    const signed = results.filter((r) => r.status === 'fulfilled');
    const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    assert.equal(signed.length, BURST);
    assert.equal(refused.length, 20 - BURST);
    assert.ok(refused.every((r) => String(r.reason).startsWith('rate_limited')));
    assert.equal(await signedCount(h, agentName), before + BURST);
  });

  test('a request refused as rate-limited is not run when its id comes again after the bucket refills', async () => {
    const { sessionId, agentName } = await nostrSession(h);
    const bp = (await parseBunkerInput(await bunkerUri(h, sessionId)))!;
    const client = rawClient(relay.url, bp.pubkey, pool);
    assert.equal((await client.request('c1', 'connect', [bp.pubkey, bp.secret!])).result, 'ack');
    for (let i = 0; i < BURST; i++) await client.request(`b${i}`, 'ping');
    const before = await signedCount(h, agentName);
    const refused = await client.request('late', 'sign_event', [JSON.stringify(note('refused as too fast'))]);
    assert.match(refused.error!, /^rate_limited: /);
    // The bucket refills; the same request id arrives again (as a relay that kept the envelope would deliver it).
    h.clock!.advance(60_000);
    const again = await client.request('late', 'sign_event', [JSON.stringify(note('refused as too fast'))]);
    assert.match(again.error!, /^replayed_request: /);
    assert.equal(await signedCount(h, agentName), before, 'the refused request never ran');
    // A new request (new id) is served.
    assert.equal(verifyEvent(JSON.parse((await client.request('next', 'sign_event', [JSON.stringify(note('a new request'))])).result)), true);
    client.close();
  });

  test('forged envelopes (signed by another key, or with a wrong id) are dropped even when a relay forwards them', async () => {
    const { sessionId, agentName } = await nostrSession(h);
    const bp = (await parseBunkerInput(await bunkerUri(h, sessionId)))!;
    const victim = rawClient(relay.url, bp.pubkey, pool);
    assert.equal((await victim.request('c1', 'connect', [bp.pubkey, bp.secret!])).result, 'ack');
    const before = { signed: await signedCount(h, agentName), dropped: h.airlock.bunker!.stats.droppedInvalid };

    relay.careless = true;
    try {
      // The request content is the victim's (encrypted with its conversation key); the signature is Mallory's.
      const genuine = victim.envelope('f1', 'sign_event', [JSON.stringify(note('forged'))]);
      const byMallory = finalizeEvent({ kind: genuine.kind, tags: genuine.tags, content: genuine.content, created_at: genuine.created_at }, generateSecretKey());
      await victim.send({ ...byMallory, pubkey: victim.pubkey } as Event);
      const wrongId = victim.envelope('f2', 'sign_event', [JSON.stringify(note('forged'))]);
      await victim.send({ ...wrongId, id: 'ab'.repeat(32) } as Event);
      // Envelopes are judged in arrival order: once this answer is back, the forged ones have been seen.
      assert.equal((await victim.request('p1', 'ping')).result, 'pong');
    } finally {
      relay.careless = false;
    }
    assert.equal(h.airlock.bunker!.stats.droppedInvalid, before.dropped + 2);
    assert.equal(await signedCount(h, agentName), before.signed);
    victim.close();
  });

  test('a replayed request id is refused and not executed twice', async () => {
    const { sessionId, agentName } = await nostrSession(h);
    const bp = (await parseBunkerInput(await bunkerUri(h, sessionId)))!;
    const client = rawClient(relay.url, bp.pubkey, pool);
    assert.equal((await client.request('c1', 'connect', [bp.pubkey, bp.secret!])).result, 'ack');
    const before = await signedCount(h, agentName);
    const first = await client.request('r1', 'sign_event', [JSON.stringify(note('once'))]);
    assert.equal(verifyEvent(JSON.parse(first.result)), true);
    // A new envelope (new event id) carrying a request id already used.
    const replay = await client.request('r1', 'sign_event', [JSON.stringify(note('twice?'))]);
    assert.match(replay.error!, /^replayed_request: /);
    await h.airlock.bunker!.flushRefusals(true);
    const replays = (await h.admin('GET', '/v1/audit?type=auth.failures')).body.entries.filter((e: any) => e.data.source === `nostr:${client.pubkey}`);
    assert.deepEqual(replays.map((e: any) => e.data.codes), [{ replayed_request: 1 }], 'the replay is audited');
    assert.equal(await signedCount(h, agentName), before + 1);
    client.close();
  });

  test('a flood of envelopes from fresh client keys: no answers, bounded memory and audit entries; a connected client is still served', async () => {
    const { sessionId, agentName } = await nostrSession(h);
    const uri = await bunkerUri(h, sessionId);
    const transportPubkey = (await parseBunkerInput(uri))!.pubkey;
    const signer = await signerFor(uri);
    await signer.connect(); // one token of the bucket shared by keys that are not connected
    const bunker = h.airlock.bunker!;
    const before = { stats: { ...bunker.stats }, footprint: bunker.footprint(), signed: await signedCount(h, agentName) };
    const auditBefore = (await h.admin('GET', '/v1/audit?type=auth.failures&limit=1000')).body.entries.length;

    // What an outsider who saw the transport key on a relay can send: valid requests, each from a new key.
    // (The relay skips its own checks meanwhile: it runs in this process, and the bunker checks every envelope.)
    const N = 1500;
    const floodKeys = new Set<string>();
    const envelope = (i: number) => {
      const sk = generateSecretKey();
      floodKeys.add(getPublicKey(sk));
      const content = nip44.encrypt(JSON.stringify({ id: `${i}-${'x'.repeat(120)}`, method: i % 2 ? 'ping' : 'sign_event', params: i % 2 ? [] : [JSON.stringify(note('spam'))] }), nip44.getConversationKey(sk, transportPubkey));
      return finalizeEvent({ kind: 24133, tags: [['p', transportPubkey]], content, created_at: Math.floor(Date.now() / 1000) }, sk);
    };
    let during: Promise<Event> | undefined;
    relay.careless = true;
    try {
      for (let i = 0; i < N; i += 100) {
        // An OK that comes late (this process is busy) changes nothing: the relay has passed the envelope on.
        await Promise.all(Array.from({ length: 100 }, (_, j) => Promise.any(pool.publish([relay.url], envelope(i + j))).catch(() => undefined)));
        if (i === 700) during = signer.signEvent(note('while the flood goes on'));
      }
      assert.equal(verifyEvent(await during!), true, 'served during the flood');
    } finally {
      relay.careless = false;
    }
    assert.equal(verifyEvent(await signer.signEvent(note('after the flood'))), true, 'served after the flood');

    const judged = () => bunker.stats.droppedUnconnected - before.stats.droppedUnconnected + (bunker.stats.droppedUnknown - before.stats.droppedUnknown);
    await eventually(() => judged() === N, 'every flood envelope to be judged');
    // None is answered: within the shared bucket's burst (10, one taken by the connect above) each is decrypted and,
    // from a key not connected here, dropped (another instance may hold it); beyond it dropped before decryption.
    const answers = relay.accepted.filter((e) => e.pubkey === transportPubkey && e.tags.some((t) => t[0] === 'p' && floodKeys.has(t[1]!)));
    assert.equal(answers.length, 0);
    assert.equal(bunker.stats.refused, before.stats.refused);
    assert.equal(await signedCount(h, agentName), before.signed + 2, 'only the connected client had anything signed');
    // One audit entry for the whole flood, not one per key.
    await bunker.flushRefusals(true);
    const entries = (await h.admin('GET', '/v1/audit?type=auth.failures&limit=1000')).body.entries;
    assert.equal(entries.length - auditBefore, 1);
    assert.deepEqual(entries.find((e: any) => e.data.source === `nostr:unconnected:${transportPubkey}`)?.data.codes, { unauthorized: 9, rate_limited: N - 9 });
    // Nothing per outsider key stays behind: no client, no request ids (only the bounded cache of envelope ids
    // grows); the connected client's two requests are the only ids added.
    const after = bunker.footprint();
    assert.deepEqual({ ...after, eventIds: 0 }, { ...before.footprint, requestIds: before.footprint.requestIds + 2, eventIds: 0 });
    assert.ok(after.eventIds <= 65_536);
    assert.equal(bunker.stats.droppedUnconnected - before.stats.droppedUnconnected, N - 9, 'the rest dropped unanswered');
  });

  test('an envelope dated more than 10 minutes away (a relay replaying an old one) is dropped unanswered', async () => {
    const { sessionId } = await nostrSession(h);
    const bp = (await parseBunkerInput(await bunkerUri(h, sessionId)))!;
    const client = rawClient(relay.url, bp.pubkey, pool);
    // A client whose clock runs nine minutes behind is still answered (clocks and relays are not exact).
    const now = Math.floor(Date.now() / 1000);
    assert.equal((await client.request('c1', 'connect', [bp.pubkey, bp.secret!], now - 9 * 60)).result, 'ack');
    const stale = h.airlock.bunker!.stats.droppedStale;
    await client.send(client.envelope('old', 'ping', [], undefined, now - 11 * 60));
    await client.send(client.envelope('future', 'ping', [], undefined, now + 11 * 60));
    assert.equal((await client.request('skewed', 'ping', [], now - 9 * 60)).result, 'pong');
    assert.equal((await client.request('p1', 'ping')).result, 'pong');
    assert.deepEqual([...client.answered].sort(), ['c1', 'p1', 'skewed']);
    assert.equal(h.airlock.bunker!.stats.droppedStale, stale + 2);
    client.close();
  });

  test('an event held for approval: asking again finds the same approval; once approved it returns the signature, charged once; again, the same bytes', async () => {
    const { agent, session } = await provisionAgent(h, { policy: { version: 1, rules: [
      { type: 'allow', name: 'profile', match: { actions: ['nostr.event'], nostr_kinds: [0] } },
      { type: 'approval_tier', name: 'profile-by-hand', match: { nostr_kinds: [0] } },
    ] }, actions: ['nostr.event'] });
    const signer = await signerFor(await bunkerUri(h, session.id));
    await signer.connect();
    const profile = note('{"name":"bot"}', 0);
    const refusal = (asked: Promise<unknown>) => asked.then(() => assert.fail('signed before approval'), (e: unknown) => String(e));

    // Two asks at once (a client retrying before the first answer), then a third while still pending.
    const [first, concurrent] = await Promise.all([refusal(signer.signEvent(profile)), refusal(signer.signEvent(profile))]);
    const approvalId = /^approval_required: .*\(approval (apr_[0-9a-f]+)\)/.exec(first)?.[1];
    assert.ok(approvalId, first);
    assert.match(concurrent, new RegExp(`^approval_required: Still held .*\\(approval ${approvalId}\\)`));
    assert.match(await refusal(signer.signEvent(profile)), new RegExp(`^approval_required: Still held .*\\(approval ${approvalId}\\)`));
    const pending = (await h.admin('GET', `/v1/approvals?agent=${agent.id}`)).body.approvals;
    assert.deepEqual(pending.map((a: any) => a.id), [approvalId], 'one approval, however often the client asks');

    const approved = await h.admin('POST', `/v1/approvals/${approvalId}/approve`);
    assert.equal(approved.status, 200, JSON.stringify(approved.body));
    const signed = await signer.signEvent(profile);
    assert.equal(verifyEvent(signed), true);
    assert.equal(signed.pubkey, (await h.airlock.nostr.identity(agent.id)).pubkey);
    assert.deepEqual(JSON.parse(JSON.stringify(signed)), approved.body.result.event, 'the signature the operator released');
    const again = await signer.signEvent(profile);
    assert.equal(JSON.stringify(again), JSON.stringify(signed), 'asking after delivery gets the same bytes');

    // Charged once: one request entry (held), one grant; the asks that followed added no decision.
    const audit = (await h.admin('GET', `/v1/audit?agent=${agent.name}&limit=1000`)).body.entries;
    assert.deepEqual(audit.filter((e: any) => e.type === 'sign.request').map((e: any) => e.decision), ['require_approval']);
    assert.equal(audit.filter((e: any) => e.type === 'approval.granted').length, 1);
  });

  test('a lone surrogate in an event is refused over NIP-46 as over HTTP: nothing signed, nothing held (found by review)', async () => {
    const { agent, session } = await provisionAgent(h, { policy: { version: 1, rules: [
      { type: 'allow', name: 'notes', match: { actions: ['nostr.event'], nostr_kinds: [0, 1] } },
      { type: 'approval_tier', name: 'profile-by-hand', match: { nostr_kinds: [0] } },
    ] }, actions: ['nostr.event'] });
    const signer = await signerFor(await bunkerUri(h, session.id));
    await signer.connect();
    for (const event of [note('a\ud800b', 1), note('a\ud800b', 0), { ...note('ok', 1), tags: [['t', '\udc00']] }]) {
      const outcome = String(await signer.signEvent(event).then((e) => `signed ${e.id}`, (e: unknown) => e));
      assert.match(outcome, /^invalid_request: .*(well-formed|JSON event template)/, outcome);
    }
    assert.deepEqual((await h.admin('GET', `/v1/approvals?agent=${agent.id}`)).body.approvals, []);
    const decided = (await h.admin('GET', `/v1/audit?agent=${agent.name}&limit=1000`)).body.entries.filter((e: any) => e.type === 'sign.request');
    assert.deepEqual(decided, [], 'no decision was made');
  });

  test('an event the operator denied stays denied when asked again; an event that changed is a new request', async () => {
    const { agent, session } = await provisionAgent(h, { policy: { version: 1, rules: [
      { type: 'allow', name: 'profile', match: { actions: ['nostr.event'], nostr_kinds: [0] } },
      { type: 'approval_tier', name: 'profile-by-hand', match: { nostr_kinds: [0] } },
    ] }, actions: ['nostr.event'] });
    const signer = await signerFor(await bunkerUri(h, session.id));
    await signer.connect();
    const profile = note('{"name":"mallory"}', 0);
    const first = String(await signer.signEvent(profile).catch((e: unknown) => e));
    const approvalId = /\(approval (apr_[0-9a-f]+)\)/.exec(first)![1]!;
    assert.equal((await h.admin('POST', `/v1/approvals/${approvalId}/deny`, {})).status, 200);
    await assert.rejects(signer.signEvent(profile), (e: unknown) => String(e).startsWith(`approval_denied: The operator denied approval ${approvalId}`));
    const changed = String(await signer.signEvent({ ...profile, created_at: profile.created_at + 1 }).catch((e: unknown) => e));
    assert.match(changed, /^approval_required: Held for operator approval/);
    assert.ok(!changed.includes(approvalId));
    const pending = (await h.admin('GET', `/v1/approvals?agent=${agent.id}`)).body.approvals;
    assert.equal(pending.length, 1);
  });
});
