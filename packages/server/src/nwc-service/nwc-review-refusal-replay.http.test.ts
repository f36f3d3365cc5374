// A pay_invoice refused before the payment service is reached, delivered again to another instance on the same
// PostgreSQL store (found by review). The connection is issued on instance A; B learns of it at its next sync.
// A refuses pay_invoice X (the agent frozen: UNAUTHORIZED; the client over its rate: RATE_LIMITED), "nothing was
// done". The operator unfreezes; B syncs; a relay delivers X again (kind 23194 is ephemeral: relays do not dedupe,
// and anyone who saw X can publish it again while it is fresh). B had never seen X and paid it. Now A keeps the
// refusal under X's Idempotency-Key (nwc:<event id>): B answers the same refusal and the backend is never asked to pay.
// Through a real relay on loopback and nostr-tools events signed with the connection's secret.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { finalizeEvent, nip44, SimplePool, type Event } from 'nostr-tools';
import { LightningNetwork, SimulatedBackend } from '../../../../testing/lightning-network.ts';
import { startTestRelay, type TestRelay } from '../../../../testing/nostr-relay/relay.ts';
import { openAirlock, type Airlock } from '../runtime.ts';
import { provisionAgent, startHarness, TEST_PASSPHRASE, TEST_VAULT, type Harness } from '../testing/harness.ts';
import { NWC_TEST_LIGHTNING, REGTEST_BTC, shopPolicy, until } from './testing/nwc-test-kit.ts';

const BTC = REGTEST_BTC;
const LIGHTNING = NWC_TEST_LIGHTNING;
const BURST = 4;

const policy = (payee: string) => shopPolicy(payee);

describe('NIP-47: a pay_invoice refused on one instance, delivered again to another (postgres)', { timeout: 120_000 }, () => {
  let relay: TestRelay;
  let h: Harness;
  let second: Airlock;
  let ln: LightningNetwork;
  let backend: SimulatedBackend;
  let shop: ReturnType<LightningNetwork['payee']>;
  const pool = new SimplePool();

  before(async () => {
    relay = await startTestRelay();
    ln = new LightningNetwork();
    ln.feeBaseMsat = 10n;
    backend = new SimulatedBackend(ln);
    shop = ln.payee();
    h = await startHarness({ store: 'postgres', lightningBackend: backend, config: { nostrRelays: [relay.url], lightning: LIGHTNING, nostrBunkerRate: { perSecond: 0.001, burst: BURST } } });
    // Instance B: the same vault and store, listening on the same relay; it learns of connections at its sync.
    second = await openAirlock(h.config, TEST_PASSPHRASE, { vault: TEST_VAULT, timers: false, lightningBackend: backend });
  });
  after(async () => {
    pool.destroy();
    await second?.close();
    await h?.close();
    await relay?.close();
  });

  /** A connection issued on A: the client's requests as raw events, and every answer, by request id, in order. */
  async function connection() {
    const { agent, session } = await provisionAgent(h, { policy: policy(shop.node.nodeId), actions: ['lightning.pay'] });
    const { uri, walletPubkey } = (await h.admin('POST', `/v1/sessions/${session.id}/nwc-connect`)).body;
    const secret = Buffer.from(new URL(uri.replace('nostr+walletconnect://', 'http://')).searchParams.get('secret')!, 'hex');
    const key = nip44.getConversationKey(secret, walletPubkey);
    const answers = new Map<string, any[]>();
    const sub = pool.subscribe([relay.url], { kinds: [23195], authors: [walletPubkey], limit: 0 }, {
      onevent: (e: Event) => {
        const id = e.tags.find((t) => t[0] === 'e')![1]!;
        answers.set(id, [...(answers.get(id) ?? []), JSON.parse(nip44.decrypt(e.content, key))]);
      },
    });
    const request = (method: string, params: unknown) =>
      finalizeEvent({ kind: 23194, created_at: Math.floor(Date.now() / 1000), tags: [['p', walletPubkey], ['encryption', 'nip44_v2']], content: nip44.encrypt(JSON.stringify({ method, params }), key) }, secret);
    const publish = (e: Event) => Promise.any(pool.publish([relay.url], e));
    /** The `n`th answer to `e` (instances answer each on their own). */
    const answerTo = (e: Event, n = 1) => until(() => answers.get(e.id)?.[n - 1]);
    const ask = async (e: Event) => {
      await publish(e);
      return answerTo(e);
    };
    /** A relay delivering `e` again (it already has it: only a careless or hostile relay forwards a copy). */
    const redeliver = async (e: Event) => {
      relay.careless = true;
      try {
        await publish(e);
      } finally {
        relay.careless = false;
      }
    };
    /** B reads the connection from the audit log and listens for it: proven by B answering a request. */
    const syncSecond = async () => {
      assert.equal(await second.nwc!.sync(), 1);
      const answeredBefore = second.nwc!.stats.answered;
      for (let tries = 0; second.nwc!.stats.answered === answeredBefore && tries < 20; tries++) {
        await publish(request('get_info', {}));
        await until(() => second.nwc!.stats.answered > answeredBefore, 500);
      }
      assert.ok(second.nwc!.stats.answered > answeredBefore, 'B serves the connection');
    };
    return { agent, answers, request, ask, answerTo, redeliver, syncSecond, close: () => sub.close() };
  }

  const payCalls = (paymentHash: string) => backend.calls.filter((c) => c.method === 'pay' && c.paymentHash === paymentHash).length;

  test('refused UNAUTHORIZED while the agent is frozen on A; delivered again to B after the unfreeze: the same refusal, never paid', async () => {
    const c = await connection();
    await h.admin('POST', `/v1/agents/${c.agent.id}/freeze`);
    const invoice = shop.invoice({ amountMsat: 10_000n, expirySeconds: 3600 });
    const x = c.request('pay_invoice', { invoice: invoice.invoice });
    const refused = await c.ask(x);
    assert.equal(refused?.error?.code, 'UNAUTHORIZED', JSON.stringify(refused));
    assert.match(refused.error.message, /^agent_frozen: /);

    await h.admin('POST', `/v1/agents/${c.agent.id}/unfreeze`);
    await c.syncSecond();
    const refusedBefore = second.nwc!.stats.refused;
    await c.redeliver(x);
    await until(() => second.nwc!.stats.refused > refusedBefore || payCalls(invoice.paymentHash) > 0);
    const again = await c.answerTo(x, 2);
    assert.deepEqual(again, refused, 'B answers the refusal A gave');
    assert.equal(payCalls(invoice.paymentHash), 0, 'the backend was never asked to pay');
    assert.ok(!ln.isPaid(invoice.paymentHash));
    const audit = (await h.admin('GET', `/v1/audit?agent=${c.agent.name}&limit=100`)).body.entries as { type: string; decision?: string }[];
    const decisions = audit.filter((e) => e.type === 'sign.request' || e.type === 'sign.replay').map((e) => `${e.type} ${e.decision}`);
    assert.deepEqual(decisions.sort(), ['sign.replay deny', 'sign.request error'], 'the refusal, then its replay: no decision to pay');

    // The connection works on B as before: a new request (a new id) pays.
    const paid = await c.ask(c.request('pay_invoice', { invoice: invoice.invoice }));
    assert.ok(paid?.result?.preimage, JSON.stringify(paid));
    c.close();
  });

  test('paid on A, then the agent frozen; delivered again to B: not told unauthorized (it was paid), told it was already decided', async () => {
    // Found by a review of the fix: a dead credential met a payment kept under the key and was answered UNAUTHORIZED,
    // and a client that kept that first answer would pay again after the unfreeze.
    const c = await connection();
    const invoice = shop.invoice({ amountMsat: 13_000n, expirySeconds: 3600 });
    const x = c.request('pay_invoice', { invoice: invoice.invoice });
    const paid = await c.ask(x);
    assert.ok(paid?.result?.preimage, JSON.stringify(paid));
    await h.admin('POST', `/v1/agents/${c.agent.id}/freeze`);
    assert.equal(await second.nwc!.sync(), 1);
    await new Promise((r) => setTimeout(r, 300)); // B subscribes
    await c.redeliver(x);
    const again = await c.answerTo(x, 2);
    assert.equal(again?.error?.code, 'OTHER', JSON.stringify(again));
    assert.match(again.error.message, /^already_decided: /);
    assert.equal(payCalls(invoice.paymentHash), 1, 'paid once');
    await h.admin('POST', `/v1/agents/${c.agent.id}/unfreeze`);
    c.close();
  });

  test('refused RATE_LIMITED on A; delivered again to B, whose bucket has room: the same refusal, never paid', async () => {
    const c = await connection();
    for (let i = 0; i < BURST; i++) await c.ask(c.request('get_info', {}));
    const invoice = shop.invoice({ amountMsat: 11_000n, expirySeconds: 3600 });
    const y = c.request('pay_invoice', { invoice: invoice.invoice });
    const refused = await c.ask(y);
    assert.equal(refused?.error?.code, 'RATE_LIMITED', JSON.stringify(refused));

    await c.syncSecond();
    const refusedBefore = second.nwc!.stats.refused;
    await c.redeliver(y);
    await until(() => second.nwc!.stats.refused > refusedBefore || payCalls(invoice.paymentHash) > 0);
    const again = await c.answerTo(y, 2);
    assert.deepEqual(again, refused, 'B answers the refusal A gave');
    assert.equal(payCalls(invoice.paymentHash), 0, 'the backend was never asked to pay');
    assert.ok(!ln.isPaid(invoice.paymentHash));
    c.close();
  });

  test('a flood of over-rate pay_invoice from one connection keeps at most a bucket of refusals; the rest get no answer and write nothing', async () => {
    const c = await connection();
    for (let i = 0; i < BURST; i++) await c.ask(c.request('get_info', {}));
    const flood = Array.from({ length: 3 * BURST }, (_, i) => c.request('pay_invoice', { invoice: shop.invoice({ amountMsat: BigInt(12_000 + i), expirySeconds: 3600 }).invoice }));
    for (const e of flood) await Promise.any(pool.publish([relay.url], e));
    // Answered in order of arrival: the first BURST are kept and answered, the rest dropped (counted only).
    const answered = await until(() => (flood.filter((e) => c.answers.has(e.id)).length >= BURST ? flood.filter((e) => c.answers.has(e.id)) : undefined));
    await new Promise((r) => setTimeout(r, 500)); // any answer still on its way
    assert.equal(flood.filter((e) => c.answers.has(e.id)).length, BURST);
    assert.ok(answered!.every((e) => c.answers.get(e.id)![0].error?.code === 'RATE_LIMITED'));
    const audit = (await h.admin('GET', `/v1/audit?agent=${c.agent.name}&limit=100`)).body.entries as { type: string; decision?: string }[];
    assert.equal(audit.filter((e) => e.type === 'sign.request').length, BURST, 'one entry per kept refusal, none for the dropped');
    c.close();
  });
});
