// Review scratch (delete before finishing): NWC replay / budget / amount probes.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BITCOIN_CHAINS, bitcoinAsset } from '@airlock/core';
import { finalizeEvent, nip44, SimplePool, type Event } from 'nostr-tools';
import { LightningNetwork, SimulatedBackend } from '../../../testing/lightning-network.ts';
import { startTestRelay, type TestRelay } from '../../../testing/nostr-relay/relay.ts';
import { provisionAgent, startHarness, type Harness } from './testing/harness.ts';

const BTC = bitcoinAsset(BITCOIN_CHAINS.regtest);
const LIGHTNING = { backend: 'lnd' as const, network: 'regtest' as const, payTimeoutSeconds: 2, notFoundGraceSeconds: 60, defaultFeePercent: 1 };
const BURST = 3;

function policy(payees: string[]) {
  return {
    version: 1,
    sets: { shops: payees },
    rules: [
      { type: 'allow', name: 'pay-shops', match: { actions: ['lightning.pay'] } },
      { type: 'destinations', name: 'only-shops', allow: '$shops', match: { actions: ['lightning.pay'] } },
      { type: 'budget', name: 'daily', asset: BTC, max: '100000', window: '24h' },
    ],
  };
}

function nwcClient(relayUrl: string, uri: string, pool: SimplePool) {
  const u = new URL(uri.replace('nostr+walletconnect://', 'http://'));
  const walletPubkey = u.hostname;
  const sk = Buffer.from(u.searchParams.get('secret')!, 'hex');
  const key = nip44.getConversationKey(sk, walletPubkey);
  const answers = new Map<string, any>();
  const sub = pool.subscribe([relayUrl], { kinds: [23195], authors: [walletPubkey], limit: 0 }, {
    onevent: (e: Event) => {
      const req = e.tags.find((t) => t[0] === 'e')?.[1];
      if (req) answers.set(req, JSON.parse(nip44.decrypt(e.content, key)));
    },
  });
  const envelope = (method: string, params: unknown) => finalizeEvent({
    kind: 23194, created_at: Math.floor(Date.now() / 1000), tags: [['p', walletPubkey], ['encryption', 'nip44_v2']],
    content: nip44.encrypt(JSON.stringify({ method, params }), key),
  }, sk);
  return {
    envelope,
    answers,
    async send(e: Event) { await Promise.any(pool.publish([relayUrl], e)); },
    async answer(e: Event, ms = 15_000): Promise<any> {
      const deadline = Date.now() + ms;
      while (!answers.has(e.id)) {
        if (Date.now() > deadline) return undefined;
        await new Promise((r) => setTimeout(r, 20));
      }
      return answers.get(e.id);
    },
    close: () => sub.close(),
  };
}

describe('review: NWC', { timeout: 300_000 }, () => {
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

  test('a pay_invoice refused UNAUTHORIZED while frozen, and one refused RATE_LIMITED, are paid when a relay replays them later', async () => {
    const { agent, session } = await provisionAgent(h, { policy: policy([shop.node.nodeId]), actions: ['lightning.pay'] });
    const issued = (await h.admin('POST', `/v1/sessions/${session.id}/nwc-connect`)).body;
    const c = nwcClient(relay.url, issued.uri, pool);
    // 1. frozen
    assert.equal((await h.admin('POST', `/v1/agents/${agent.id}/freeze`)).status, 200);
    const inv1 = shop.invoice({ amountMsat: 10_000n, expirySeconds: 3600 });
    const e1 = c.envelope('pay_invoice', { invoice: inv1.invoice });
    await c.send(e1);
    const a1 = await c.answer(e1);
    console.log('while frozen:', JSON.stringify(a1.error));
    assert.equal(a1.error.code, 'UNAUTHORIZED');
    assert.equal((await h.admin('POST', `/v1/agents/${agent.id}/unfreeze`)).status, 200);
    // 2. rate limited: burn the bucket
    const burn = [c.envelope('get_info', {}), c.envelope('get_info', {}), c.envelope('get_info', {})];
    for (const b of burn) { await c.send(b); await c.answer(b); }
    const inv2 = shop.invoice({ amountMsat: 11_000n, expirySeconds: 3600 });
    const e2 = c.envelope('pay_invoice', { invoice: inv2.invoice });
    await c.send(e2);
    const a2 = await c.answer(e2);
    console.log('rate limited:', JSON.stringify(a2.error));
    assert.equal(a2.error.code, 'RATE_LIMITED');
    assert.ok(!ln.attempts.includes(inv1.paymentHash) && !ln.attempts.includes(inv2.paymentHash), 'nothing paid so far');

    // Same instance, same ids: dropped (RecentIds).
    relay.careless = true;
    await c.send(e1);
    relay.careless = false;
    await new Promise((r) => setTimeout(r, 500));
    assert.ok(!ln.attempts.includes(inv1.paymentHash), 'immediate replay dropped');

    // A restart (the bucket refills, RecentIds empty); a relay delivers the old envelopes again.
    await h.restart();
    c.answers.clear();
    relay.careless = true;
    try {
      await c.send(e1);
      await c.send(e2);
    } finally {
      relay.careless = false;
    }
    const r1 = await c.answer(e1);
    const r2 = await c.answer(e2);
    console.log('replayed e1:', JSON.stringify(r1), '\nreplayed e2:', JSON.stringify(r2));
    console.log('paid e1?', ln.isPaid(inv1.paymentHash), 'paid e2?', ln.isPaid(inv2.paymentHash));
    c.close();
  });

  test('concurrent pay_invoice over budget, duplicate ids, amount disagreeing', async () => {
    const { session } = await provisionAgent(h, { policy: policy([shop.node.nodeId]), actions: ['lightning.pay'] });
    const issued = (await h.admin('POST', `/v1/sessions/${session.id}/nwc-connect`)).body;
    const c = nwcClient(relay.url, issued.uri, pool);
    // amount disagreeing with the invoice
    const fixed = shop.invoice({ amountMsat: 40_000n });
    const mis = c.envelope('pay_invoice', { invoice: fixed.invoice, amount: 1 });
    await c.send(mis);
    console.log('amount mismatch:', JSON.stringify((await c.answer(mis)).error));
    // amountless invoice paid with an amount: charged that amount
    const open = shop.invoice({});
    const ae = c.envelope('pay_invoice', { invoice: open.invoice, amount: 30_000 });
    await c.send(ae);
    console.log('amountless:', JSON.stringify(await c.answer(ae)));
    const bal = c.envelope('get_balance', {});
    await c.send(bal);
    console.log('balance after amountless 30000:', JSON.stringify(await c.answer(bal)));
    c.close();
  });
});

describe('review: NWC concurrency', { timeout: 300_000 }, () => {
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
    h = await startHarness({ store: (process.env.REVIEW_STORE as any) ?? 'sqlite', lightningBackend: new SimulatedBackend(ln), config: { nostrRelays: [relay.url], lightning: LIGHTNING, nostrBunkerRate: { perSecond: 0.001, burst: 40 } } });
  });
  after(async () => {
    pool.destroy();
    await h?.close();
    await relay?.close();
  });
  test('20 concurrent payments of 15 000 (+1 000 fee limit) against a 100 000 budget', async () => {
    const { agent, session } = await provisionAgent(h, { policy: policy([shop.node.nodeId]), actions: ['lightning.pay'] });
    const issued = (await h.admin('POST', `/v1/sessions/${session.id}/nwc-connect`)).body;
    const c = nwcClient(relay.url, issued.uri, pool);
    const invoices = Array.from({ length: 20 }, () => shop.invoice({ amountMsat: 15_000n }));
    for (const i of invoices) ln.script(i.paymentHash, { kind: 'succeed', afterMs: 200 });
    const events = invoices.map((i) => c.envelope('pay_invoice', { invoice: i.invoice }));
    await Promise.all(events.map((e) => c.send(e)));
    const answers = await Promise.all(events.map((e) => c.answer(e, 30_000)));
    const paid = answers.filter((a) => a?.result?.preimage).length;
    const codes = answers.map((a) => a?.error?.code ?? (a ? 'ok' : 'none'));
    console.log('paid', paid, 'codes', JSON.stringify(codes));
    const paidOnNet = invoices.filter((i) => ln.isPaid(i.paymentHash)).length;
    const [tot] = await h.airlock.store.transaction((tx) => tx.windowTotals([{ series: `agent:${agent.id}`, asset: BTC, sinceMs: 0 }]));
    console.log('paid on network', paidOnNet, 'ledger', String(tot!.amount));
    assert.ok(tot!.amount <= 100_000n);
    c.close();
  });
});

import { schnorr } from '@noble/curves/secp256k1.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { createHash } from 'node:crypto';

function fastEvent(sk: Uint8Array, pubkey: string, kind: number, tags: string[][], content: string) {
  const created_at = Math.floor(Date.now() / 1000);
  const id = createHash('sha256').update(JSON.stringify([0, pubkey, created_at, kind, tags, content])).digest('hex');
  return { id, pubkey, created_at, kind, tags, content, sig: bytesToHex(schnorr.sign(Buffer.from(id, 'hex'), sk)) } as Event;
}

describe('review: NWC without restart', { timeout: 900_000 }, () => {
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

  test('fresh-key flood: audit entries per author; then RecentIds evicted by 65 536 junk envelopes and a frozen-time request replayed', { skip: process.env.REVIEW_FLOOD !== '1' }, async () => {
    const { agent, session } = await provisionAgent(h, { policy: policy([shop.node.nodeId]), actions: ['lightning.pay'] });
    const issued = (await h.admin('POST', `/v1/sessions/${session.id}/nwc-connect`)).body;
    const c = nwcClient(relay.url, issued.uri, pool);
    assert.equal((await h.admin('POST', `/v1/agents/${agent.id}/freeze`)).status, 200);
    const inv = shop.invoice({ amountMsat: 10_000n, expirySeconds: 3600 });
    const e1 = c.envelope('pay_invoice', { invoice: inv.invoice });
    await c.send(e1);
    assert.equal((await c.answer(e1)).error.code, 'UNAUTHORIZED');
    assert.equal((await h.admin('POST', `/v1/agents/${agent.id}/unfreeze`)).status, 200);

    const countFailures = async () => (await h.airlock.store.queryAudit({ type: 'auth.failures', limit: 100_000 })).length;
    const auditBefore = await countFailures();
    const nwc = h.airlock.nwc!;
    const t0 = Date.now();
    // 2 000 from fresh keys (each an "unknown client"), the rest from one junk key.
    const junkSk = schnorr.utils.randomSecretKey();
    const junkPk = bytesToHex(schnorr.getPublicKey(junkSk));
    const N = 65_536;
    const ws = new (await import('ws')).WebSocket(relay.url);
    await new Promise((r) => ws.once('open', r));
    for (let i = 0; i < N; i++) {
      let sk = junkSk, pk = junkPk;
      if (i < 2000) { sk = schnorr.utils.randomSecretKey(); pk = bytesToHex(schnorr.getPublicKey(sk)); }
      ws.send(JSON.stringify(['EVENT', fastEvent(sk, pk, 23194, [['p', issued.walletPubkey]], `junk ${i}`)]));
      if (i % 2000 === 0) await new Promise((r) => setImmediate(r));
    }
    const seenAll = () => nwc.stats.ignoredUnknownClient >= N;
    const deadline = Date.now() + 600_000;
    while (!seenAll() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    console.log('flood handled in', Date.now() - t0, 'ms; ignoredUnknownClient', nwc.stats.ignoredUnknownClient);
    await nwc.flushRefusals(true);
    console.log('auth.failures entries written by the flood:', (await countFailures()) - auditBefore);
    ws.close();

    relay.careless = true;
    try { await c.send(e1); } finally { relay.careless = false; }
    const r1 = await c.answer(e1);
    console.log('replayed frozen-time request without restart:', JSON.stringify(r1), 'paid?', ln.isPaid(inv.paymentHash));
    c.close();
  });
});
