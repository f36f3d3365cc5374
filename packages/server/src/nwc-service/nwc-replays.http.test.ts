// NIP-47 requests delivered again by a relay (found by a hostile review), through a real relay on loopback and
// nostr-tools events signed with the connection's secret:
// - a pay_invoice refused before any decision was recorded (the agent frozen, the client over its rate) was paid
//   when a relay delivered it again after the unfreeze and a restart: requests dated before the service began
//   listening, or more than 10 minutes from now, are dropped;
// - envelopes from fresh keys each made their own auth.failures entry: they are counted under one source per
//   wallet key.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { finalizeEvent, generateSecretKey, getPublicKey, nip44, SimplePool, type Event } from 'nostr-tools';
import { LightningNetwork, SimulatedBackend } from '../../../../testing/lightning-network.ts';
import { startTestRelay, type TestRelay } from '../../../../testing/nostr-relay/relay.ts';
import { provisionAgent, startHarness, type Harness } from '../testing/harness.ts';
import { NWC_TEST_LIGHTNING, REGTEST_BTC, shopPolicy, until } from './testing/nwc-test-kit.ts';

const BTC = REGTEST_BTC;
const LIGHTNING = NWC_TEST_LIGHTNING;
const BURST = 3;

const policy = (payee: string) => shopPolicy(payee);

describe('NIP-47 requests delivered again by a relay', { timeout: 120_000 }, () => {
  let relay: TestRelay;
  let h: Harness;
  let ln: LightningNetwork;
  let shop: ReturnType<LightningNetwork['payee']>;
  const pool = new SimplePool();

  before(async () => {
    relay = await startTestRelay();
    ln = new LightningNetwork();
    ln.feeBaseMsat = 10n;
    shop = ln.payee();
    h = await startHarness({ lightningBackend: new SimulatedBackend(ln), config: { nostrRelays: [relay.url], lightning: LIGHTNING, nostrBunkerRate: { perSecond: 0.001, burst: BURST } } });
  });
  after(async () => {
    pool.destroy();
    await h?.close();
    await relay?.close();
  });

  /** A connection: the client's requests as raw events, and the answers the wallet service publishes, by request id. */
  async function connection() {
    const { agent, session } = await provisionAgent(h, { policy: policy(shop.node.nodeId), actions: ['lightning.pay'] });
    const { uri, walletPubkey } = (await h.admin('POST', `/v1/sessions/${session.id}/nwc-connect`)).body;
    const secret = Buffer.from(new URL(uri.replace('nostr+walletconnect://', 'http://')).searchParams.get('secret')!, 'hex');
    const key = nip44.getConversationKey(secret, walletPubkey);
    const answers = new Map<string, any>();
    const sub = pool.subscribe([relay.url], { kinds: [23195], authors: [walletPubkey], limit: 0 }, {
      onevent: (e: Event) => answers.set(e.tags.find((t) => t[0] === 'e')![1]!, JSON.parse(nip44.decrypt(e.content, key))),
    });
    const request = (method: string, params: unknown, createdAt = Math.floor(Date.now() / 1000), signer: Uint8Array = secret) =>
      finalizeEvent({ kind: 23194, created_at: createdAt, tags: [['p', walletPubkey], ['encryption', 'nip44_v2']], content: nip44.encrypt(JSON.stringify({ method, params }), nip44.getConversationKey(signer, walletPubkey)) }, signer);
    const publish = (e: Event) => Promise.any(pool.publish([relay.url], e));
    const ask = async (e: Event) => {
      await publish(e);
      return until(() => answers.get(e.id));
    };
    /** A relay delivering `e` again (it already has it: only a careless or hostile relay forwards a copy). */
    const replay = async (e: Event) => {
      relay.careless = true;
      try {
        await publish(e);
      } finally {
        relay.careless = false;
      }
    };
    return { agent, walletPubkey, answers, request, publish, ask, replay, close: () => sub.close() };
  }

  test('pay_invoice refused while frozen and while over the rate, delivered again after the unfreeze (and after a restart): never paid', async () => {
    const c = await connection();
    await h.admin('POST', `/v1/agents/${c.agent.id}/freeze`);
    const first = shop.invoice({ amountMsat: 10_000n, expirySeconds: 3600 });
    const whileFrozen = c.request('pay_invoice', { invoice: first.invoice });
    assert.equal((await c.ask(whileFrozen))?.error?.code, 'UNAUTHORIZED');
    await h.admin('POST', `/v1/agents/${c.agent.id}/unfreeze`);
    for (let i = 0; i < BURST; i++) await c.ask(c.request('get_info', {}));
    const second = shop.invoice({ amountMsat: 11_000n, expirySeconds: 3600 });
    const overRate = c.request('pay_invoice', { invoice: second.invoice });
    assert.equal((await c.ask(overRate))?.error?.code, 'RATE_LIMITED');

    // Delivered again in the same process: the ids are remembered.
    c.answers.clear();
    await c.replay(whileFrozen);
    await c.replay(overRate);
    // Then after a restart, when nothing of the first process is remembered (this paid both before the fix).
    // A daemon's restart (unsealing the vault, connecting relays) takes longer than a second; the harness's is
    // quicker, so it starts in the next second here, as a daemon would (requests are dated in seconds).
    await new Promise((r) => setTimeout(r, 1_010 - (Date.now() % 1_000)));
    await h.restart();
    await new Promise((r) => setTimeout(r, 1_100)); // a second after the restart: the service is listening
    await c.replay(whileFrozen);
    await c.replay(overRate);
    // A fresh request is answered: by then the two copies have been judged (envelopes are taken in order).
    const probe = c.request('get_info', {});
    await new Promise((r) => setTimeout(r, 1_100)); // the rate bucket refills a little
    const answered = await c.ask(probe);
    assert.ok(answered, 'the connection still works after the restart');
    assert.equal(c.answers.has(whileFrozen.id) || c.answers.has(overRate.id), false, 'neither copy was answered');
    assert.ok(!ln.isPaid(first.paymentHash) && !ln.isPaid(second.paymentHash), 'neither invoice was paid');
    assert.ok(h.airlock.nwc!.stats.droppedStale >= 2);
    c.close();
  });

  test('a request dated 11 minutes ago or 2 minutes ahead: dropped, never answered, never paid', async () => {
    const c = await connection();
    const now = Math.floor(Date.now() / 1000);
    const stale = shop.invoice({ amountMsat: 12_000n, expirySeconds: 3600 });
    const before = h.airlock.nwc!.stats.droppedStale;
    const old = c.request('pay_invoice', { invoice: stale.invoice }, now - 660);
    // Ahead the bound is a minute: a request dated ahead outlives a restart by as much.
    const ahead = c.request('pay_invoice', { invoice: stale.invoice }, now + 120);
    await c.publish(old);
    await c.publish(ahead);
    const fresh = await c.ask(c.request('get_balance', {}));
    assert.equal(fresh?.result?.balance, 100_000);
    assert.equal(c.answers.has(old.id) || c.answers.has(ahead.id), false);
    assert.equal(h.airlock.nwc!.stats.droppedStale, before + 2);
    assert.ok(!ln.isPaid(stale.paymentHash));
    c.close();
  });

  test('envelopes from 20 fresh keys: counted under one source for the wallet key, one audit entry, not 20', async () => {
    const c = await connection();
    const strangers = Array.from({ length: 20 }, () => generateSecretKey());
    for (const key of strangers) await c.publish(c.request('get_balance', {}, undefined, key));
    assert.ok(await c.ask(c.request('get_balance', {})), 'the client is still answered');
    await h.airlock.nwc!.flushRefusals(true);
    const entries = (await h.admin('GET', '/v1/audit?type=auth.failures&limit=1000')).body.entries;
    const theirs = entries.filter((e: any) => String(e.data.source).includes(c.walletPubkey) || strangers.some((k) => String(e.data.source).includes(getPublicKey(k))));
    assert.deepEqual(theirs.map((e: any) => [e.data.source, e.data.codes]), [[`nwc:unknown:${c.walletPubkey}`, { unknown_client: 20 }]]);
    c.close();
  });
});
