// Circuit breakers on NIP-04 over NIP-46 (NIP-04 has no HTTP route: apps reach it through the bunker only), with
// nostr-tools' BunkerSigner over a loopback relay. A breaker that binds the agent refuses NIP-04 like any other
// request of it (found by review: NIP-04 and NIP-44 were judged by policy alone): a require_approval hold, which
// an encryption cannot wait in, with breaker_holds_agent; a freeze breaker with policy_denied and breaker_open.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateSecretKey, getPublicKey, nip04, SimplePool } from 'nostr-tools';
import { BunkerSigner, parseBunkerInput } from 'nostr-tools/nip46';
import { startTestRelay, type TestRelay } from '../../../../testing/nostr-relay/relay.ts';
import { provisionAgent, startHarness, type Harness } from '../testing/harness.ts';

const FRIEND = generateSecretKey();
const FRIEND_PUB = getPublicKey(FRIEND);

function policy(action: 'freeze' | 'require_approval') {
  return {
    version: 1,
    rules: [
      { type: 'allow', name: 'notes', match: { actions: ['nostr.event'], nostr_kinds: [1] } },
      { type: 'allow', name: 'legacy-dms', match: { actions: ['nostr.nip04'] } },
      { type: 'nostr_peers', name: 'friends-only', allow: [FRIEND_PUB] },
    ],
    detectors: [{ name: 'burst', type: 'request_burst', window: '1m', baseline: '1h', min_count: 3, action }],
  };
}

const note = (content: string) => ({ kind: 1, tags: [], content, created_at: Math.floor(Date.now() / 1000) });

describe('NIP-04 over NIP-46 under circuit breakers', { timeout: 120_000 }, () => {
  let relay: TestRelay;
  let h: Harness;
  const pool = new SimplePool();
  const signers: BunkerSigner[] = [];

  before(async () => {
    relay = await startTestRelay();
    h = await startHarness({ manualClock: true, config: { nostrRelays: [relay.url] } });
  });
  after(async () => {
    for (const s of signers) await s.close();
    pool.destroy();
    await h?.close();
    await relay?.close();
  });

  /** An agent under `policy(action)`, its HTTP token and a connected BunkerSigner of the same session. */
  async function agentWithSigner(action: 'freeze' | 'require_approval') {
    const { agent, token, session } = await provisionAgent(h, { policy: policy(action), actions: ['nostr.event', 'nostr.nip04'] });
    const res = await h.admin('POST', `/v1/sessions/${session.id}/nostr-connect`);
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const bp = await parseBunkerInput(res.body.bunker);
    assert.ok(bp);
    const signer = BunkerSigner.fromBunker(generateSecretKey(), bp, { pool });
    signers.push(signer);
    await signer.connect();
    const me = (await h.airlock.nostr.identity(agent.id)).pubkey;
    return { agent, token, signer, me };
  }
  const sign = (token: string, content: string) => (h.clock!.advance(1000), h.call('POST', '/v1/sign/nostr-event', { token, body: note(content) }));
  const nip04Audit = async (name: string) => (await h.admin('GET', `/v1/audit?agent=${name}&type=nostr.nip04`)).body.entries.map((e: any) => e.decision);

  test('a require_approval breaker: NIP-04 both ways is refused breaker_holds_agent naming the breaker; after the reset it works', async () => {
    const { agent, token, signer, me } = await agentWithSigner('require_approval');
    // No breaker tripped: NIP-04 works.
    assert.equal(await nip04.decrypt(FRIEND, me, await signer.nip04Encrypt(FRIEND_PUB, 'hello')), 'hello');
    for (const content of ['one', 'two']) assert.equal((await sign(token, content)).status, 200);
    const held = await sign(token, 'three');
    assert.equal(held.status, 202, JSON.stringify(held.body));
    const [breaker] = (await h.admin('GET', '/v1/breakers')).body.breakers.filter((b: any) => b.agentId === agent.id);
    assert.equal(breaker.action, 'require_approval');
    const refused = (e: unknown) => new RegExp(`^breaker_holds_agent: Refused by detector/agent/burst: breaker ${breaker.id} .*\\[detector/agent/burst: breaker_open\\]$`).test(String(e));
    await assert.rejects(signer.nip04Encrypt(FRIEND_PUB, 'meet at noon'), refused);
    await assert.rejects(signer.nip04Decrypt(FRIEND_PUB, await nip04.encrypt(FRIEND, me, 'see you')), refused);
    assert.deepEqual(await nip04Audit(agent.name), ['allow', 'deny', 'deny']);
    assert.equal((await h.admin('POST', `/v1/breakers/${breaker.id}/reset`)).status, 200);
    h.clock!.advance(10 * 60_000);
    assert.equal(await signer.nip04Decrypt(FRIEND_PUB, await nip04.encrypt(FRIEND, me, 'and back')), 'and back');
  });

  test('a freeze breaker still tripped after an operator unfroze the agent: NIP-04 is refused policy_denied with breaker_open', async () => {
    const { agent, token, signer, me } = await agentWithSigner('freeze');
    for (const content of ['one', 'two', 'three']) assert.equal((await sign(token, content)).status, 200);
    assert.equal((await sign(token, 'four')).status, 403);
    assert.equal((await h.admin('POST', `/v1/agents/${agent.name}/unfreeze`)).status, 200);
    h.clock!.advance(10 * 60_000);
    const refused = (e: unknown) => /^policy_denied: Denied by detector\/agent\/burst: breaker brk_.*\[detector\/agent\/burst: breaker_open\]$/.test(String(e));
    await assert.rejects(signer.nip04Encrypt(FRIEND_PUB, 'meet at noon'), refused);
    await assert.rejects(signer.nip04Decrypt(FRIEND_PUB, await nip04.encrypt(FRIEND, me, 'see you')), refused);
    assert.deepEqual(await nip04Audit(agent.name), ['deny', 'deny']);
  });
});
