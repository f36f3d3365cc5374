// Attacks on Lightning payments and L402 through the public HTTP API (and NIP-47 for the one NWC probe): an agent
// trying to pay more than policy allows, to learn another agent's preimage, to leak credentials into operators'
// views, or to get a 500 out of bad input. Each test names the attack and asserts what a correct Airlock answers
// and that nothing reached the (simulated) network. The backend is the port straight onto the simulated network
// (testing/lightning-network.ts); invoices with unusual human-readable parts or duplicated fields are built here
// with the same BOLT 11 encoding and signed by a real node key, so Airlock's decoder checks them like any other.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { BITCOIN_CHAINS, bitcoinAsset } from '@airlock/core';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, hexToBytes, randomBytes } from '@noble/hashes/utils.js';
import { bech32 } from '@scure/base';
import { integerWords, LightningNetwork, SimulatedBackend, wordsToPaddedBytes, type TestNode } from '../../../testing/lightning-network.ts';
import { startL402Server } from '../../../testing/l402-server/server.ts';
import { exportMacaroonV2, jsMacaroon } from '../../../testing/l402-server/js-macaroon.ts';
import { provisionAgent, startHarness, TEST_PASSPHRASE, TEST_VAULT, type Harness, type StoreKind } from './testing/harness.ts';
import { openAirlock } from './runtime.ts';

const BTC = bitcoinAsset(BITCOIN_CHAINS.regtest);
const ACTIONS = ['lightning.pay'];
const LIGHTNING = { backend: 'lnd' as const, network: 'regtest' as const, payTimeoutSeconds: 2, notFoundGraceSeconds: 60, defaultFeePercent: 1 };

/** Lightning to the shops only, at most 120 000 msat a payment (the fee limit included), 1 % routing fee at most. */
function policy(payees: string[], extra: unknown[] = []) {
  return {
    version: 1,
    sets: { shops: payees },
    rules: [
      { type: 'allow', name: 'pay-shops', match: { actions: ['lightning.pay'] } },
      { type: 'destinations', name: 'only-shops', allow: '$shops', match: { actions: ['lightning.pay'] } },
      { type: 'max_amount', name: 'per-payment', asset: BTC, max: '120000' },
      ...extra,
    ],
  };
}

// ---------------------------------------------------------------------------------------------------------
// Hand-built invoices: BOLT 11 as testing/lightning-network.ts writes it, with the human-readable part and the
// tagged fields chosen by the test.

type Field = [tag: number, words: number[]];
const TAG = { p: 1, s: 16, d: 13, x: 6, c: 24, n: 19 } as const;

/** The usual fields of an invoice for `paymentHash`, to which a test adds or from which it removes. */
function usualFields(paymentHash: string): Field[] {
  return [
    [TAG.p, bech32.toWords(hexToBytes(paymentHash))],
    [TAG.s, bech32.toWords(randomBytes(32))],
    [TAG.d, bech32.toWords(new TextEncoder().encode('attack'))],
    [TAG.x, integerWords(3600)],
    [TAG.c, integerWords(18)],
  ];
}

/** Signs `hrp` + timestamp + `fields` with `node`'s key, as a payee would (the signature is genuine). */
function craftInvoice(node: TestNode, hrp: string, fields: Field[]): string {
  const words: number[] = [];
  let t = Math.floor(Date.now() / 1000);
  const ts: number[] = [];
  for (let i = 0; i < 7; i++, t = Math.floor(t / 32)) ts.unshift(t % 32);
  words.push(...ts);
  for (const [tag, data] of fields) words.push(tag, data.length >> 5, data.length & 31, ...data);
  const signed = new Uint8Array([...new TextEncoder().encode(hrp), ...wordsToPaddedBytes(words)]);
  const sig = secp256k1.sign(sha256(signed), node.privateKey, { prehash: false, format: 'recovered' });
  const signature = new Uint8Array([...sig.subarray(1), sig[0]!]);
  return bech32.encode(hrp, [...words, ...bech32.toWords(signature)], 10_000);
}

function newPreimage(): { preimage: string; paymentHash: string } {
  const preimage = bytesToHex(randomBytes(32));
  return { preimage, paymentHash: bytesToHex(sha256(hexToBytes(preimage))) };
}

/** An L402 macaroon (Aperture's layout: version 0, payment hash, token id) committing to `paymentHash`. */
function macaroonFor(paymentHash: string): string {
  const identifier = Buffer.concat([Buffer.from([0, 0]), Buffer.from(paymentHash, 'hex'), Buffer.from(randomBytes(32))]);
  const m = jsMacaroon.newMacaroon({ identifier, location: 'lsat', rootKey: randomBytes(32), version: 2 });
  m.addFirstPartyCaveat('services=api:0');
  return Buffer.from(exportMacaroonV2(m)).toString('base64');
}

for (const store of ['sqlite', 'postgres'] as StoreKind[]) describe(`Lightning attacks over HTTP (${store})`, () => {
  let h: Harness;
  let ln: LightningNetwork;
  let backend: SimulatedBackend;
  let shop: ReturnType<LightningNetwork['payee']>;
  before(async () => {
    ln = new LightningNetwork();
    ln.feeBaseMsat = 10n;
    backend = new SimulatedBackend(ln);
    shop = ln.payee();
    h = await startHarness({ store, lightningBackend: backend, config: { lightning: LIGHTNING } });
  });
  after(async () => h.close());
  const pay = (token: string, body: unknown, headers: Record<string, string> = {}) => h.call('POST', '/v1/lightning/pay', { token, body, headers });
  const codes = (res: { body: any }) => (res.body.error?.violations ?? []).map((v: { code: string }) => v.code);
  /** What the agent has been charged or holds (the budget window counts both). */
  const spent = async (agentId: string) => (await h.airlock.store.transaction((tx) => tx.windowTotals([{ series: `agent:${agentId}`, asset: BTC, sinceMs: 0 }])))[0]!.amount;

  test('a lying backend reports success with a made-up preimage: not believed, the hold stays, an alert names it, nothing charged as paid', async () => {
    const { agent, token } = await provisionAgent(h, { policy: policy([shop.node.nodeId]), actions: ACTIONS });
    const invoice = shop.invoice({ amountMsat: 30_000n });
    backend.forgePreimage = true;
    try {
      const res = await pay(token, { invoice: invoice.invoice, maxFeeMsat: '300' });
      assert.equal(res.status, 202, JSON.stringify(res.body));
      assert.equal(res.body.status, 'in_flight');
      assert.equal(res.body.preimage, undefined);
      // The reconciler asks again and is lied to again: still not believed.
      await h.admin('POST', '/v1/lightning/reconcile');
      assert.equal(await spent(agent.id), 30_300n, 'the worst case stays held, not charged as a success');
      const alerts = (await h.admin('GET', `/v1/audit?agent=${agent.name}&type=alert.lightning`)).body.entries;
      assert.ok(alerts.some((e: { data: { reason: string } }) => e.data.reason === 'preimage_mismatch'), JSON.stringify(alerts));
      assert.equal((await h.admin('GET', `/v1/audit?agent=${agent.name}&type=lightning.succeeded`)).body.entries.length, 0);
    } finally {
      backend.forgePreimage = false;
    }
    // Told the truth, the next round charges it once: amount + the real fee.
    await h.admin('POST', '/v1/lightning/reconcile');
    assert.equal(await spent(agent.id), 30_000n + ln.feeFor(30_000n));
  });

  test('a NUL byte in a path or query parameter is bad input (400 or 404), never a 500', async () => {
    const { token } = await provisionAgent(h, { policy: policy([shop.node.nodeId]), actions: ACTIONS });
    for (const [who, path] of [[token, '/v1/lightning/payments/lnp_%00'], [undefined, '/v1/lightning/payments?agent=%00'], [undefined, '/v1/agents/%00'], [undefined, '/v1/approvals/apr_%00']] as const) {
      const res = who ? await h.call('GET', path, { token: who }) : await h.admin('GET', path);
      assert.ok([400, 404].includes(res.status), `${path}: ${res.status} ${JSON.stringify(res.body)}`);
      assert.ok(['invalid_request', 'not_found'].includes(res.body.error.code), `${path}: ${res.body.error.code}`);
    }
  });

  test('two agents racing for one invoice: one payment, the other 409 lightning_payment_in_flight, nothing held for it', async () => {
    const a = await provisionAgent(h, { policy: policy([shop.node.nodeId]), actions: ACTIONS });
    const b = await provisionAgent(h, { policy: policy([shop.node.nodeId]), actions: ACTIONS });
    for (let round = 0; round < 3; round++) {
      const invoice = shop.invoice({ amountMsat: 5_000n });
      const [ra, rb] = await Promise.all([pay(a.token, { invoice: invoice.invoice }), pay(b.token, { invoice: invoice.invoice })]);
      const statuses = [ra.status, rb.status].sort();
      assert.deepEqual(statuses, [200, 409], `${JSON.stringify(ra.body)} ${JSON.stringify(rb.body)}`);
      const loser = ra.status === 409 ? ra : rb;
      assert.equal(loser.body.error.code, 'lightning_payment_in_flight');
      assert.ok(!JSON.stringify(loser.body).includes(invoice.preimage), 'the loser never sees the preimage');
      assert.equal(ln.attempts.filter((x) => x === invoice.paymentHash).length, 1, 'paid once');
    }
    // Three payments of 5 000 msat + fees, split between the two: each agent is charged only for what it paid.
    const total = (await spent(a.agent.id)) + (await spent(b.agent.id));
    assert.equal(total, 3n * (5_000n + ln.feeFor(5_000n)));
  });

  test("another agent reusing an agent's Idempotency-Key gets its own decision, never the first agent's payment", async () => {
    const a = await provisionAgent(h, { policy: policy([shop.node.nodeId]), actions: ACTIONS });
    const b = await provisionAgent(h, { policy: policy([shop.node.nodeId]), actions: ACTIONS });
    const invoice = shop.invoice({ amountMsat: 3_000n });
    const key = { 'idempotency-key': `shared-${store}` };
    const first = await pay(a.token, { invoice: invoice.invoice }, key);
    assert.equal(first.status, 200, JSON.stringify(first.body));
    const same = await pay(b.token, { invoice: invoice.invoice }, key);
    assert.equal(same.status, 409, JSON.stringify(same.body));
    assert.equal(same.body.error.code, 'lightning_payment_in_flight');
    assert.ok(!JSON.stringify(same.body).includes(first.body.preimage));
    const own = await pay(b.token, { invoice: shop.invoice({ amountMsat: 3_000n }).invoice }, key);
    assert.equal(own.status, 200, 'the key is per agent: no idempotency_conflict with the other agent');
    assert.notEqual(own.body.paymentId, first.body.paymentId);
    // And the payment itself is the first agent's alone.
    assert.equal((await h.call('GET', `/v1/lightning/payments/${first.body.paymentId}`, { token: b.token })).status, 404);
  });

  test("a derived session without lightning.pay resends its parent's paid invoice (same invoice, or the same Idempotency-Key): 403 action_not_allowed, no preimage, a sign.replay deny on the record", async () => {
    const { agent, token: parent } = await provisionAgent(h, { policy: policy([shop.node.nodeId]), actions: ['lightning.pay', 'nostr.event'] });
    const derived = await h.call('POST', '/v1/session/children', { token: parent, body: { actions: ['nostr.event'] } });
    assert.equal(derived.status, 201, JSON.stringify(derived.body));
    const child = derived.body.token as string;
    const invoice = shop.invoice({ amountMsat: 4_000n });
    const key = { 'idempotency-key': `child-replay-${store}` };
    const paid = await pay(parent, { invoice: invoice.invoice }, key);
    assert.equal(paid.status, 200, JSON.stringify(paid.body));
    assert.equal(paid.body.preimage, invoice.preimage);
    const attempts = ln.attempts.length;
    // A payment of its own is out of its scope; so is collecting the parent's, by either replay path.
    for (const headers of [{}, key]) {
      const res = await pay(child, { invoice: invoice.invoice }, headers);
      assert.equal(res.status, 403, JSON.stringify(res.body));
      assert.deepEqual(codes(res), ['action_not_allowed']);
      assert.ok(!JSON.stringify(res.body).includes(invoice.preimage), 'no preimage for a session outside its scope');
    }
    assert.equal(ln.attempts.length, attempts, 'nothing paid again');
    const replays = (await h.admin('GET', `/v1/audit?agent=${agent.name}&type=sign.replay`)).body.entries as { decision: string; sessionId: string; data: { violations?: { code: string }[] } }[];
    assert.deepEqual(replays.map((e) => [e.decision, e.sessionId, e.data.violations?.map((v) => v.code)]), [
      ['deny', derived.body.session.id, ['action_not_allowed']],
      ['deny', derived.body.session.id, ['action_not_allowed']],
    ]);
    // The parent, in scope, still gets its payment back by either path, charged nothing more.
    const before = await spent(agent.id);
    for (const headers of [{}, key]) {
      const again = await pay(parent, { invoice: invoice.invoice }, headers);
      assert.equal(again.status, 200, JSON.stringify(again.body));
      assert.deepEqual([again.body.replayed, again.body.preimage, again.body.paymentId], [true, invoice.preimage, paid.body.paymentId]);
    }
    assert.equal(await spent(agent.id), before);
    assert.equal(ln.attempts.length, attempts);
  });

  test('a refused payment sent again under its Idempotency-Key: 403 again, recorded as a deny replay, no request counted, nothing paid', async () => {
    const { agent, token } = await provisionAgent(h, { policy: policy([shop.node.nodeId]), actions: ACTIONS });
    const invoice = shop.invoice({ amountMsat: 500_000n }); // over the 120 000 msat cap
    const key = { 'idempotency-key': `refused-${store}` };
    const requests = async () => (await h.airlock.store.transaction((tx) => tx.windowTotals([{ series: `agent:${agent.id}`, asset: '*', sinceMs: 0 }])))[0]!.count;
    const first = await pay(token, { invoice: invoice.invoice }, key);
    assert.equal(first.status, 403, JSON.stringify(first.body));
    const counted = await requests();
    const again = await pay(token, { invoice: invoice.invoice }, key);
    assert.deepEqual([again.status, again.body.replayed, codes(again)], [403, true, codes(first)]);
    assert.equal(await requests(), counted);
    const replays = (await h.admin('GET', `/v1/audit?agent=${agent.name}&type=sign.replay`)).body.entries as { decision: string }[];
    assert.deepEqual(replays.map((e) => e.decision), ['deny']);
    assert.equal(ln.attempts.filter((a) => a === invoice.paymentHash).length, 0);
  });

  test('a 1-BTC invoice (hrp `lnbcrt1`) is judged as 1 BTC, not as amountless; a zero-amount invoice is refused as malformed', async () => {
    const { token } = await provisionAgent(h, { policy: policy([shop.node.nodeId], [{ type: 'allow', name: 'tips', match: { actions: ['lightning.pay'], kinds: ['lightning.amountless_payment'] } }]), actions: ACTIONS });
    const attempts = ln.attempts.length;
    const oneBtc = newPreimage();
    const invoice = craftInvoice(shop.node, 'lnbcrt1', usualFields(oneBtc.paymentHash));
    assert.ok(invoice.startsWith('lnbcrt11'), invoice.slice(0, 12));
    // Naming a small amount as if it were amountless: the invoice names its own.
    const small = await pay(token, { invoice, amountMsat: '1000' });
    assert.equal(small.status, 400, JSON.stringify(small.body));
    assert.equal(small.body.error.code, 'invoice_amount_mismatch');
    const whole = await pay(token, { invoice });
    assert.equal(whole.status, 403, JSON.stringify(whole.body));
    assert.ok(codes(whole).includes('amount_exceeds_max'), JSON.stringify(whole.body));
    const dry = await h.call('POST', '/v1/dry-run', { token, body: { action: 'lightning.pay', payload: { invoice } } });
    assert.equal(dry.body.intent.lightning.amountMsat, '100000000000');
    assert.equal(dry.body.intent.kind, 'lightning.payment');
    // BOLT 11: the amount is "a positive decimal integer". Zero is neither an amount nor amountless.
    const zero = await pay(token, { invoice: craftInvoice(shop.node, 'lnbcrt0', usualFields(newPreimage().paymentHash)) });
    assert.equal(zero.status, 400, JSON.stringify(zero.body));
    assert.equal(zero.body.error.code, 'invoice_malformed');
    // 1 pico-bitcoin is a tenth of a millisatoshi; 21 000 001 BTC is more than exists.
    for (const hrp of ['lnbcrt1p', 'lnbcrt21000001']) {
      const res = await pay(token, { invoice: craftInvoice(shop.node, hrp, usualFields(newPreimage().paymentHash)) });
      assert.equal(res.status, 400, `${hrp}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.error.code, 'invoice_malformed');
    }
    assert.equal(ln.attempts.length, attempts, 'nothing reached the network');
  });

  test('duplicated fields (two payment hashes, two expiries, two payee ids) are refused as malformed; nothing paid', async () => {
    const { token } = await provisionAgent(h, { policy: policy([shop.node.nodeId]), actions: ACTIONS });
    const attempts = ln.attempts.length;
    const { paymentHash } = newPreimage();
    const other = newPreimage().paymentHash;
    const node = bech32.toWords(hexToBytes(shop.node.nodeId));
    const variants: Field[][] = [
      [...usualFields(paymentHash), [TAG.p, bech32.toWords(hexToBytes(other))]],
      [...usualFields(paymentHash), [TAG.x, integerWords(30 * 86400)]],
      [...usualFields(paymentHash), [TAG.n, node], [TAG.n, node]],
    ];
    for (const fields of variants) {
      const res = await pay(token, { invoice: craftInvoice(shop.node, 'lnbcrt10u', fields) });
      assert.equal(res.status, 400, JSON.stringify(res.body));
      assert.equal(res.body.error.code, 'invoice_malformed');
    }
    // No payment hash at all.
    const noHash = await pay(token, { invoice: craftInvoice(shop.node, 'lnbcrt10u', usualFields(paymentHash).slice(1)) });
    assert.equal(noHash.status, 400);
    assert.equal(noHash.body.error.code, 'invoice_malformed');
    assert.equal(ln.attempts.length, attempts);
  });

  test('a huge fee limit counts against the per-payment cap and the budget; one beyond 21 million BTC is 400 invalid_amount', async () => {
    const { agent, token } = await provisionAgent(h, { policy: policy([shop.node.nodeId], [{ type: 'budget', name: 'daily', asset: BTC, max: '50000', window: '24h' }]), actions: ACTIONS });
    const attempts = ln.attempts.length;
    const invoice = shop.invoice({ amountMsat: 10_000n });
    const capped = await pay(token, { invoice: invoice.invoice, maxFeeMsat: '2100000000000000000' });
    assert.equal(capped.status, 403, JSON.stringify(capped.body));
    assert.ok(codes(capped).includes('amount_exceeds_max') && codes(capped).includes('budget_exceeded'), JSON.stringify(codes(capped)));
    const overBudget = await pay(token, { invoice: invoice.invoice, maxFeeMsat: '45000' });
    assert.equal(overBudget.status, 403, JSON.stringify(overBudget.body));
    assert.ok(codes(overBudget).includes('budget_exceeded'));
    for (const maxFeeMsat of ['2100000000000000001', '999999999999999999999']) {
      const res = await pay(token, { invoice: invoice.invoice, maxFeeMsat });
      assert.equal(res.status, 400, JSON.stringify(res.body));
      assert.equal(res.body.error.code, 'invalid_amount');
    }
    assert.equal(ln.attempts.length, attempts);
    assert.equal(await spent(agent.id), 0n, 'nothing held or charged');
  });

  test('an amountless invoice: no amount is 400, a zero or negative one is refused, and the backend is asked for exactly the amount judged', async () => {
    const { agent, token } = await provisionAgent(h, { policy: policy([shop.node.nodeId], [{ type: 'allow', name: 'tips', match: { actions: ['lightning.pay'], kinds: ['lightning.amountless_payment'] } }]), actions: ACTIONS });
    const asked: (bigint | undefined)[] = [];
    const realPay = backend.pay.bind(backend);
    backend.pay = async (request) => (asked.push(request.amountMsat), realPay(request));
    try {
      const invoice = shop.invoice();
      assert.equal((await pay(token, { invoice: invoice.invoice })).body.error.code, 'invoice_amount_mismatch');
      for (const amountMsat of ['0', '-5', '5.5', '']) {
        const res = await pay(token, { invoice: invoice.invoice, amountMsat });
        assert.equal(res.status, 400, `${amountMsat}: ${JSON.stringify(res.body)}`);
        assert.ok(['invalid_amount', 'invalid_request'].includes(res.body.error.code), res.body.error.code);
      }
      assert.deepEqual(asked, []);
      // Upper case (as in QR codes, BOLT 11 allows it) is still amountless: the backend must be told the amount.
      const upper = shop.invoice();
      const res = await pay(token, { invoice: upper.invoice.toUpperCase(), amountMsat: '21000' });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.deepEqual(asked, [21_000n]);
      assert.equal(await spent(agent.id), 21_000n + BigInt(res.body.feeMsat));
    } finally {
      backend.pay = realPay;
    }
  });

  test('an invoice with surrounding whitespace held for approval is paid once approved (and for the amount judged)', async () => {
    const { agent, token } = await provisionAgent(h, {
      policy: policy([shop.node.nodeId], [
        { type: 'allow', name: 'tips', match: { actions: ['lightning.pay'], kinds: ['lightning.amountless_payment'] } },
        { type: 'approval_tier', name: 'by-hand', asset: BTC, above: '10000' },
      ]),
      actions: ACTIONS,
    });
    for (const issued of [shop.invoice({ amountMsat: 20_000n }), shop.invoice()]) {
      const body = { invoice: `  ${issued.invoice}\n`, ...(issued.amountMsat === undefined ? { amountMsat: '20000' } : {}) };
      const held = await pay(token, body);
      assert.equal(held.status, 202, JSON.stringify(held.body));
      assert.equal(held.body.decision, 'require_approval');
      const approved = await h.admin('POST', `/v1/approvals/${held.body.approvalId}/approve`);
      assert.equal(approved.status, 200, JSON.stringify(approved.body));
      assert.equal(approved.body.result.status, 'succeeded', JSON.stringify(approved.body.result));
      assert.ok(ln.isPaid(issued.paymentHash));
    }
    const fees = (await h.admin('GET', `/v1/lightning/payments?agent=${agent.name}`)).body.payments.reduce((n: bigint, p: { feeMsat: string }) => n + BigInt(p.feeMsat), 0n);
    assert.equal(await spent(agent.id), 40_000n + fees, 'each charged its amount and real fee');
  });

  test('a pay call whose answer is lost keeps the hold; the reconciler charges the real fee on success, and releases on failure once the pay call cannot still be arriving', async () => {
    const { agent, token } = await provisionAgent(h, { policy: policy([shop.node.nodeId]), actions: ACTIONS });
    const lands = shop.invoice({ amountMsat: 8_000n });
    const fails = shop.invoice({ amountMsat: 9_000n });
    ln.script(lands.paymentHash, { kind: 'succeed', feeMsat: 7n });
    ln.script(fails.paymentHash, { kind: 'fail', reason: 'no_route' });
    backend.loseAnswers = true;
    try {
      for (const invoice of [lands, fails]) {
        const res = await pay(token, { invoice: invoice.invoice, maxFeeMsat: '900' });
        assert.equal(res.status, 202, JSON.stringify(res.body));
        assert.equal(res.body.status, 'in_flight', 'an error is no answer');
      }
    } finally {
      backend.loseAnswers = false;
    }
    assert.equal(await spent(agent.id), 8_000n + 900n + 9_000n + 900n, 'both held at amount + fee limit');
    await h.admin('POST', '/v1/lightning/reconcile');
    // A failure read by a lookup may be an earlier attempt's of the invoice: believed once the pay timeout and the grace passed.
    assert.equal(await spent(agent.id), 8_000n + 7n + 9_000n + 900n, 'the success charged its real fee; the failure still held');
    const later = await openAirlock(h.config, TEST_PASSPHRASE, { vault: TEST_VAULT, timers: false, clock: { now: () => Date.now() + (LIGHTNING.payTimeoutSeconds + LIGHTNING.notFoundGraceSeconds + 1) * 1000 }, lightningBackend: backend });
    try {
      assert.equal((await later.lightning.reconcile()).failed, 1);
    } finally {
      await later.close();
    }
    assert.equal(await spent(agent.id), 8_000n + 7n, 'the success charged its real fee, the failure released');
    const listed = (await h.admin('GET', `/v1/lightning/payments?agent=${agent.name}`)).body.payments;
    assert.deepEqual(listed.map((p: { state: string }) => p.state).sort(), ['failed', 'succeeded']);
  });

  test('a dry-run holds, pays, approves and records nothing, whatever the decision', async () => {
    const { agent, token } = await provisionAgent(h, {
      policy: policy([shop.node.nodeId], [{ type: 'approval_tier', name: 'by-hand', asset: BTC, above: '50000' }, { type: 'rate_limit', name: 'few', max: 1, window: '1h' }, { type: 'loop_guard', name: 'loops', max: 1, window: '1h' }]),
      actions: ACTIONS,
    });
    const head = (await h.admin('GET', '/v1/audit?limit=1')).body.entries[0]?.seq;
    const attempts = ln.attempts.length;
    const invoices = [shop.invoice({ amountMsat: 1_000n }), shop.invoice({ amountMsat: 60_000n }), shop.invoice({ amountMsat: 500_000n }), ln.payee().invoice({ amountMsat: 1_000n })];
    for (let i = 0; i < 2; i++) {
      for (const invoice of invoices) {
        const dry = await h.call('POST', '/v1/dry-run', { token, body: { action: 'lightning.pay', payload: { invoice: invoice.invoice } } });
        assert.equal(dry.status, 200, JSON.stringify(dry.body));
      }
    }
    const decisions = await Promise.all(invoices.map(async (i) => (await h.call('POST', '/v1/dry-run', { token, body: { action: 'lightning.pay', payload: { invoice: i.invoice } } })).body.decision.decision));
    assert.deepEqual(decisions, ['allow', 'require_approval', 'deny', 'deny'], 'the rate limit and loop guard were not counted by the dry-runs');
    assert.equal(ln.attempts.length, attempts);
    assert.equal(await spent(agent.id), 0n);
    assert.deepEqual((await h.admin('GET', `/v1/lightning/payments?agent=${agent.name}`)).body.payments, []);
    assert.deepEqual((await h.admin('GET', `/v1/approvals?agent=${agent.name}&state=all`)).body.approvals, []);
    assert.equal((await h.admin('GET', '/v1/audit?limit=1')).body.entries[0]?.seq, head, 'no audit entry');
  });

  test('malformed bodies and queries to the Lightning and L402 routes get stable 4xx codes, never a 500, and pay nothing', async () => {
    const { agent, token } = await provisionAgent(h, { policy: policy([shop.node.nodeId]), actions: ACTIONS });
    const attempts = ln.attempts.length;
    const good = shop.invoice({ amountMsat: 1_000n }).invoice;
    const expect = async (res: { status: number; body: any }, status: number, code: string | string[], what: string) => {
      assert.equal(res.status, status, `${what}: ${JSON.stringify(res.body)}`);
      assert.ok((Array.isArray(code) ? code : [code]).includes(res.body.error?.code), `${what}: ${JSON.stringify(res.body)}`);
    };
    const post = (path: string, opts: { body?: unknown; raw?: string }) => h.call('POST', path, { token, ...opts });
    for (const path of ['/v1/lightning/pay', '/v1/l402/pay']) {
      await expect(await post(path, { raw: '{"invoice":' }), 400, 'invalid_json', `${path} truncated JSON`);
      await expect(await post(path, { raw: '[]' }), 400, 'invalid_request', `${path} array`);
      await expect(await post(path, { raw: 'null' }), 400, 'invalid_request', `${path} null`);
      await expect(await post(path, { raw: '"lnbcrt1"' }), 400, 'invalid_request', `${path} string`);
      await expect(await post(path, { raw: `{"invoice":"${good}","__proto__":{"amountMsat":"1"}}` }), 400, ['invalid_request', 'forbidden_json_key'], `${path} __proto__`);
    }
    const lnBodies: [unknown, string | string[]][] = [
      [{}, 'invalid_request'],
      [{ invoice: 5 }, 'invalid_request'],
      [{ invoice: '' }, 'invalid_request'],
      [{ invoice: good, extra: true }, 'invalid_request'],
      [{ invoice: good, amountMsat: 1000 }, 'invalid_request'],
      [{ invoice: good, maxFeeMsat: '1e3' }, 'invalid_request'],
      [{ invoice: good, maxFeeMsat: '01' }, 'invalid_request'],
      [{ invoice: good, maxFeeMsat: -1 }, 'invalid_request'],
      [{ invoice: 'x'.repeat(8000) }, 'invalid_request'],
      [{ invoice: 'lnbcrt1' }, 'invoice_malformed'],
      [{ invoice: 'not an invoice at all' }, 'invoice_malformed'],
      [{ invoice: `${good}\u0000` }, 'invalid_request'], // U+0000 is refused in any string at the edge (parseUntrustedJson)
      [{ invoice: good.replace('lnbcrt', 'lnxx') }, 'invoice_malformed'],
      [{ invoice: 'lnbcrt1' + 'q'.repeat(7000) }, 'invoice_malformed'],
    ];
    for (const [body, code] of lnBodies) await expect(await post('/v1/lightning/pay', { body }), 400, code, JSON.stringify(body).slice(0, 80));

    const macaroon = macaroonFor(newPreimage().paymentHash);
    const url = 'https://api.example.com/data';
    const l402Bodies: [unknown, string][] = [
      [{ url, challenge: 5 }, 'invalid_request'],
      [{ url: 'ftp://api.example.com/x', challenge: `L402 macaroon="${macaroon}", invoice="${good}"` }, 'invalid_request'],
      [{ url: 'https://user:pw@api.example.com/x', challenge: `L402 macaroon="${macaroon}", invoice="${good}"` }, 'invalid_request'],
      [{ url, challenge: 'Basic realm="x"' }, 'l402_challenge_malformed'],
      [{ url, challenge: 'L402 macaroon="AAAA", invoice="lnbcrt1"' }, 'l402_macaroon_malformed'],
      [{ url, challenge: `L402 macaroon="${macaroon}", invoice="${good}", invoice="${good}"` }, 'l402_challenge_malformed'],
      [{ url, challenge: `L402 macaroon="${macaroon}"` }, 'l402_challenge_malformed'],
      [{ url, challenge: `L402 macaroon="${macaroon}", invoice="${good}` }, 'l402_challenge_malformed'],
      [{ url, challenge: `L402 macaroon="${macaroon}", invoice="${good}"`, maxFeeMsat: 'ten' }, 'invalid_request'],
      [{ url, challenge: `L402 macaroon="${macaroon}", invoice="${good}"` }, 'l402_payment_hash_mismatch'],
    ];
    for (const [body, code] of l402Bodies) await expect(await post('/v1/l402/pay', { body }), 400, code, JSON.stringify(body).slice(0, 80));

    await expect(await h.admin('GET', '/v1/lightning/payments?state=bogus'), 400, 'invalid_request', 'state');
    await expect(await h.admin('GET', '/v1/lightning/payments?limit=0'), 400, 'invalid_request', 'limit 0');
    await expect(await h.admin('GET', '/v1/lightning/payments?limit=abc'), 400, 'invalid_request', 'limit abc');
    await expect(await h.admin('GET', '/v1/lightning/payments?agent=nobody-by-this-name'), 404, 'not_found', 'agent');
    await expect(await h.call('GET', '/v1/l402/token', { token }), 400, 'invalid_request', 'no url');
    await expect(await h.call('GET', '/v1/l402/token?url=javascript:alert(1)', { token }), 400, 'invalid_request', 'bad url');
    await expect(await h.call('GET', '/v1/lightning/payments/lnp_0000000000000000', { token }), 404, 'not_found', 'unknown id');
    await expect(await post('/v1/dry-run', { body: { action: 'lightning.pay', payload: 'lnbcrt1' } }), 400, 'invalid_request', 'dry-run string');
    await expect(await post('/v1/dry-run', { body: { action: 'lightning.pay', payload: { invoice: 'lnbcrt1' } } }), 400, 'invoice_malformed', 'dry-run bad invoice');
    await expect(await post('/v1/dry-run', { body: { action: 'lightning.pay', payload: { invoice: good, l402: { resource: url } } } }), 400, 'invalid_request', 'dry-run l402 smuggled');

    assert.equal(ln.attempts.length, attempts, 'nothing reached the network');
    assert.deepEqual((await h.admin('GET', `/v1/lightning/payments?agent=${agent.name}`)).body.payments, []);
  });
});

describe('L402 attacks (sqlite)', () => {
  let h: Harness;
  let ln: LightningNetwork;
  before(async () => {
    ln = new LightningNetwork();
    ln.feeBaseMsat = 0n;
    h = await startHarness({ lightningBackend: new SimulatedBackend(ln) });
  });
  after(async () => h.close());

  test("a challenge whose macaroon names the invoice's hash but whose invoice is for another network: 400 invoice_wrong_network, nothing paid or cached", async () => {
    const shop = ln.payee();
    const { token } = await provisionAgent(h, { policy: policy([shop.node.nodeId]), actions: ACTIONS });
    const mainnet = shop.invoice({ amountMsat: 1_000n, network: 'bitcoin' });
    const url = 'https://api.example.com/data';
    const res = await h.call('POST', '/v1/l402/pay', { token, body: { url, challenge: `L402 macaroon="${macaroonFor(mainnet.paymentHash)}", invoice="${mainnet.invoice}"` } });
    assert.equal(res.status, 400, JSON.stringify(res.body));
    assert.equal(res.body.error.code, 'invoice_wrong_network');
    assert.ok(!ln.attempts.includes(mainnet.paymentHash));
    assert.equal((await h.call('GET', `/v1/l402/token?url=${encodeURIComponent(url)}`, { token })).status, 404);
  });

  test('operators never see a credential: approvals, payments and the audit log hold neither the macaroon nor the preimage', async () => {
    const api = await startL402Server({ network: ln, routes: { '/report': { priceSat: 50n, service: 'reports' } } });
    try {
      const first = await fetch(`${api.url}/report`);
      await first.text();
      const { decodeBolt11 } = await import('@airlock/chains');
      const payee = decodeBolt11(api.issued[0]!.invoice, { now: 0, network: 'regtest' }).payee;
      const { agent, token } = await provisionAgent(h, { policy: policy([payee], [{ type: 'approval_tier', name: 'by-hand', asset: BTC, above: '10000' }]), actions: ACTIONS });
      const url = `${api.url}/report`;
      const challenge = first.headers.get('www-authenticate')!;
      const macaroon = api.issued[0]!.macaroon;
      // A refused challenge first (the macaroon names another hash): its refusal is audited without the macaroon.
      const stranger = ln.payee().invoice({ amountMsat: 1_000n });
      const refused = await h.call('POST', '/v1/l402/pay', { token, body: { url, challenge: `L402 macaroon="${macaroon}", invoice="${stranger.invoice}"` } });
      assert.equal(refused.body.error.code, 'l402_payment_hash_mismatch');
      const held = await h.call('POST', '/v1/l402/pay', { token, body: { url, challenge } });
      assert.equal(held.status, 202, JSON.stringify(held.body));
      const approved = await h.admin('POST', `/v1/approvals/${held.body.approvalId}/approve`);
      assert.equal(approved.status, 200, JSON.stringify(approved.body));
      assert.equal(approved.body.result.status, 'succeeded');
      const paymentId = approved.body.result.paymentId as string;
      const mine = await h.call('GET', `/v1/lightning/payments/${paymentId}`, { token });
      const preimage = mine.body.preimage as string;
      assert.equal(mine.body.l402.authorization, `L402 ${macaroon}:${preimage}`, 'the agent gets its credential');
      assert.equal((await fetch(url, { headers: { authorization: mine.body.l402.authorization } })).status, 200);

      const views = {
        approve: approved.body,
        approvals: (await h.admin('GET', '/v1/approvals?state=all')).body,
        approval: (await h.admin('GET', `/v1/approvals/${held.body.approvalId}`)).body,
        payments: (await h.admin('GET', '/v1/lightning/payments')).body,
        audit: (await h.admin('GET', `/v1/audit?agent=${agent.name}&limit=1000`)).body,
        auditAll: (await h.admin('GET', '/v1/audit?limit=1000')).body,
      };
      for (const [name, view] of Object.entries(views)) {
        const text = JSON.stringify(view);
        assert.ok(!text.includes(preimage), `${name} holds the preimage`);
        assert.ok(!text.includes(macaroon), `${name} holds the macaroon`);
      }
      // Another agent learns nothing of it: not the payment, not the cached credential, not the approval.
      const other = await provisionAgent(h, { policy: policy([payee]), actions: ACTIONS });
      assert.equal((await h.call('GET', `/v1/lightning/payments/${paymentId}`, { token: other.token })).status, 404);
      assert.equal((await h.call('GET', `/v1/l402/token?url=${encodeURIComponent(url)}`, { token: other.token })).status, 404);
      assert.equal((await h.call('GET', `/v1/approvals/${held.body.approvalId}`, { token: other.token })).status, 404);
      const stolen = await h.call('POST', '/v1/l402/pay', { token: other.token, body: { url, challenge } });
      assert.equal(stolen.status, 409, JSON.stringify(stolen.body));
      assert.ok(!JSON.stringify(stolen.body).includes(preimage));
    } finally {
      await api.close();
    }
  });
});
