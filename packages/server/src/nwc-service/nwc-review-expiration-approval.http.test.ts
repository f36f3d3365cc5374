// A NIP-47 pay_invoice with an `expiration` tag, held for an operator's approval (found by review). NIP-47: the
// wallet must not act on a request after its expiration. The tag was checked on receipt only, and the approval
// opened for the request lived the usual AIRLOCK_APPROVAL_TTL (24 h here): an operator could approve it, and Airlock
// pay it, long after its client, told `OTHER approval_required`, had stopped waiting and perhaps paid elsewhere.
// Now the approval expires no later than the tag: approved after it, it is refused and nothing is paid.
// Through a real relay on loopback, requests signed with the connection's secret (nostr-tools), the daemon on a
// manual clock (the approval's deadline and its expiry are on the daemon's clock; the tag is wall-clock seconds).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { finalizeEvent, nip44, SimplePool, type Event } from 'nostr-tools';
import { LightningNetwork, SimulatedBackend } from '../../../../testing/lightning-network.ts';
import { startTestRelay, type TestRelay } from '../../../../testing/nostr-relay/relay.ts';
import { provisionAgent, startHarness, type Harness } from '../testing/harness.ts';
import { NWC_TEST_LIGHTNING, REGTEST_BTC, shopPolicy, until } from './testing/nwc-test-kit.ts';

const BTC = REGTEST_BTC;
const LIGHTNING = NWC_TEST_LIGHTNING;
const DAY_MS = 24 * 3600_000;

/** Lightning to the shop, 100 000 msat a day; above 60 000 msat an operator decides. */
const policy = (payee: string) => shopPolicy(payee, [{ type: 'approval_tier', name: 'big-needs-human', asset: BTC, above: '60000' }]);

describe('NIP-47: a pay_invoice held for approval expires with its `expiration` tag', { timeout: 120_000 }, () => {
  let relay: TestRelay;
  let h: Harness;
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
    h = await startHarness({ manualClock: true, approvalTtlMs: DAY_MS, lightningBackend: backend, config: { nostrRelays: [relay.url], lightning: LIGHTNING } });
  });
  after(async () => {
    pool.destroy();
    await h?.close();
    await relay?.close();
  });

  /** A connection: the client's requests as raw events (extra tags allowed) and their answers, by request id. */
  async function connection() {
    const { agent, session } = await provisionAgent(h, { policy: policy(shop.node.nodeId), actions: ['lightning.pay'] });
    const { uri, walletPubkey } = (await h.admin('POST', `/v1/sessions/${session.id}/nwc-connect`)).body;
    const secret = Buffer.from(new URL(uri.replace('nostr+walletconnect://', 'http://')).searchParams.get('secret')!, 'hex');
    const key = nip44.getConversationKey(secret, walletPubkey);
    const answers = new Map<string, any>();
    const sub = pool.subscribe([relay.url], { kinds: [23195], authors: [walletPubkey], limit: 0 }, {
      onevent: (e: Event) => answers.set(e.tags.find((t) => t[0] === 'e')![1]!, JSON.parse(nip44.decrypt(e.content, key))),
    });
    const request = (method: string, params: unknown, tags: string[][] = []) =>
      finalizeEvent({ kind: 23194, created_at: Math.floor(Date.now() / 1000), tags: [['p', walletPubkey], ['encryption', 'nip44_v2'], ...tags], content: nip44.encrypt(JSON.stringify({ method, params }), key) }, secret);
    const ask = async (e: Event) => {
      await Promise.any(pool.publish([relay.url], e));
      return until(() => answers.get(e.id));
    };
    return { agent, request, ask, close: () => sub.close() };
  }

  const payCalls = (paymentHash: string) => backend.calls.filter((c) => c.method === 'pay' && c.paymentHash === paymentHash).length;
  const approvalIn = (answer: any) => /approval_required: .*\((apr_[0-9a-f]+)\)/.exec(answer?.error?.message ?? '')?.[1];

  test('held with an expiration 60 s ahead: the approval expires by then; approved after it: refused, never paid, the hold released', async () => {
    const c = await connection();
    const balance = async () => (await c.ask(c.request('get_balance', {})))?.result?.balance;
    assert.equal(await balance(), 100_000);
    const big = shop.invoice({ amountMsat: 70_000n, expirySeconds: 3600 });
    const expiration = Math.floor(Date.now() / 1000) + 60;
    const held = await c.ask(c.request('pay_invoice', { invoice: big.invoice }, [['expiration', String(expiration)]]));
    assert.equal(held?.error?.code, 'OTHER', JSON.stringify(held));
    const approvalId = approvalIn(held);
    assert.ok(approvalId, JSON.stringify(held));
    assert.ok((await balance()) < 30_000, 'the held payment counts against the budget');

    // The operator approves once the client's expiration has passed (on the daemon's clock too).
    h.clock!.set(expiration * 1000);
    const approve = await h.admin('POST', `/v1/approvals/${approvalId}/approve`);
    assert.deepEqual([approve.status, approve.body?.error?.code], [409, 'approval_not_pending'], JSON.stringify(approve.body));
    assert.equal(payCalls(big.paymentHash), 0, 'the backend was never asked to pay');
    assert.ok(!ln.isPaid(big.paymentHash));

    const approval = (await h.admin('GET', `/v1/approvals/${approvalId}`)).body;
    assert.equal(approval.state, 'expired');
    assert.ok(Date.parse(approval.expiresAt) <= expiration * 1000, `the approval expires by the request's expiration (${approval.expiresAt})`);
    assert.equal(await balance(), 100_000, 'the hold was released');
    c.close();
  });

  test('without an expiration tag the approval keeps the usual lifetime (AIRLOCK_APPROVAL_TTL)', async () => {
    const c = await connection();
    const held = await c.ask(c.request('pay_invoice', { invoice: shop.invoice({ amountMsat: 70_000n, expirySeconds: 3600 }).invoice }));
    const approval = (await h.admin('GET', `/v1/approvals/${approvalIn(held)}`)).body;
    assert.equal(Date.parse(approval.expiresAt) - Date.parse(approval.createdAt), DAY_MS);
    c.close();
  });
});
