// L402 end to end through each real Lightning backend, built from configuration as an operator would set it up:
// the LND REST backend against the LND REST double over HTTPS (a pinned certificate and a pay-only macaroon, both
// read from files), and the NWC backend against a wallet service built on @getalby/sdk over the loopback relay
// (its connection string read from a file). Payments settle on the simulated Lightning network, where the paid
// API double (testing/l402-server, answering as Aperture does with real macaroons) issued its invoices.
//
// The path under test: paid API -> 402 -> POST /v1/l402/pay -> the credential the API accepts; lsat-js (Tierion's
// L402 library) reads the challenge and Airlock's Authorization value independently. Then each attack, with its
// status and code and what reached the network. Stores: SQLite throughout, PostgreSQL too for the budget race.
// lsat-js 2.0.6 predates the L402 rename: Lsat.fromToken wants "LSAT" in the credential, so an `L402 …` value
// is handed to it with the scheme renamed (see packages/chains/src/lightning/l402.interop.test.ts).
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Lsat } from 'lsat-js';
import { BITCOIN_CHAINS, bitcoinAsset } from '@airlock/core';
import { decodeBolt11 } from '@airlock/chains';
import { LightningNetwork, TestNode } from '../../../testing/lightning-network.ts';
import { startL402Server, type L402ServerOptions, type L402TestServer } from '../../../testing/l402-server/server.ts';
import { startLndRestDouble } from '../../../testing/lnd-rest-double/server.ts';
import { startTestRelay } from '../../../testing/nostr-relay/relay.ts';
import { TestWalletService } from '../../../testing/nwc-wallet-service/wallet-service.ts';
import type { LightningConfig } from './config.ts';
import { provisionAgent, startHarness, type Harness, type StoreKind } from './testing/harness.ts';
import { payeeOnlyPolicy } from '../../../testing/lightning-policies.ts';

const BTC = bitcoinAsset(BITCOIN_CHAINS.regtest);
const PRICE_SAT = 21n;
const PRICE_MSAT = PRICE_SAT * 1000n;
const ACTIONS = ['lightning.pay'];

type BackendKind = 'lnd' | 'nwc';

/** Airlock on a store, paying through one real backend, and what that backend's far side saw. */
interface Rig {
  kind: BackendKind;
  ln: LightningNetwork;
  h: Harness;
  /** Pay calls that reached the node or wallet (SendPaymentV2 / pay_invoice). */
  payCalls(): number;
  /** Whether the node or wallet holds the payment as settled. */
  settledAtBackend(paymentHash: string): boolean;
  close(): Promise<void>;
}

async function startRig(kind: BackendKind, store: StoreKind): Promise<Rig> {
  const ln = new LightningNetwork();
  ln.feeBaseMsat = 10n; // 10 msat + 0.1 %: within Airlock's default fee limit (1 %, at least 1000 msat)
  const files = mkdtempSync(join(tmpdir(), 'airlock-l402-e2e-'));
  const common = { network: 'regtest' as const, payTimeoutSeconds: 10, notFoundGraceSeconds: 60, defaultFeePercent: 1 };
  const closers: (() => Promise<void> | void)[] = [() => rmSync(files, { recursive: true, force: true })];
  let lightning: LightningConfig;
  let payCalls: () => number;
  let settledAtBackend: (hash: string) => boolean;
  if (kind === 'lnd') {
    const lnd = await startLndRestDouble({ network: ln });
    closers.unshift(() => lnd.close());
    // What an operator hands Airlock: lnd's tls.cert, and a macaroon baked with only what paying needs, in the
    // binary form `lncli bakemacaroon --save_to` writes.
    const macaroonPath = join(files, 'airlock-pay.macaroon');
    const tlsCertPath = join(files, 'tls.cert');
    writeFileSync(macaroonPath, Buffer.from(lnd.bakeMacaroon(['offchain:read', 'offchain:write']), 'hex'), { mode: 0o600 });
    writeFileSync(tlsCertPath, lnd.certPem);
    lightning = { backend: 'lnd', ...common, lnd: { url: lnd.url, macaroonPath, tlsCertPath } };
    payCalls = () => lnd.requests.filter((r) => r.path === '/v2/router/send').length;
    settledAtBackend = (hash) => lnd.paymentStatus(hash) === 'SUCCEEDED';
  } else {
    const relay = await startTestRelay();
    const wallet = await TestWalletService.start({ relay, lightning: ln });
    closers.unshift(() => relay.close(), () => wallet.close());
    const nwcUrlFile = join(files, 'nwc-url');
    writeFileSync(nwcUrlFile, `${wallet.uri}\n`, { mode: 0o600 });
    lightning = { backend: 'nwc', ...common, nwcUrlFile };
    payCalls = () => wallet.received.filter((r) => r.method === 'pay_invoice').length;
    settledAtBackend = (hash) => wallet.payments.get(hash)?.state === 'settled';
  }
  const h = await startHarness({ store, config: { lightning } });
  closers.unshift(() => h.close());
  assert.equal(h.airlock.lightning.backend?.kind, kind, 'the backend was built from the configuration');
  return {
    kind, ln, h, payCalls, settledAtBackend,
    async close() {
      for (const close of closers) await close();
    },
  };
}

/** A paid API on its own origin, its node id (read from one challenge's invoice, as a payer would), and a 402 getter. */
async function startApi(ln: LightningNetwork, options: Partial<L402ServerOptions> = {}) {
  const api = await startL402Server({ network: ln, routes: { '/weather': { priceSat: PRICE_SAT }, '/premium': { priceSat: 500n } }, service: 'weather', ...options });
  const challenge = async (path = '/weather'): Promise<string> => {
    const res = await fetch(`${api.url}${path}`);
    await res.text();
    assert.equal(res.status, 402);
    return res.headers.get('www-authenticate')!;
  };
  await challenge();
  // Only the node id is wanted: read as of a time before any expiry (an expired invoice still names its node).
  const payee = decodeBolt11(api.issued[0]!.invoice, { now: 0, network: 'regtest' }).payee;
  return { api, payee, challenge };
}

/** Lightning to the API's node only, at most 100 sat a payment, with routing and expiry bounds (plus `extra` rules). */
const policy = (payee: string, extra: unknown[] = []) =>
  payeeOnlyPolicy(payee, [{ type: 'lightning', name: 'routing', max_routing_fee: '10000', min_expiry_remaining: '30s', max_expiry: '24h' }, ...extra]);

const payL402 = (rig: Rig, token: string, body: Record<string, unknown>) => rig.h.call('POST', '/v1/l402/pay', { token, body });

function violationCodes(body: { error?: { violations?: { rule: string; code: string }[] } }): string[] {
  return (body.error?.violations ?? []).map((v) => v.code);
}

/** Many small payments at once against a budget that holds exactly five: five reach the payee, the rest are refused. */
async function budgetRace(rig: Rig): Promise<void> {
  const { api, payee, challenge } = await startApi(rig.ln);
  try {
    // Each payment holds 21 000 msat and its 1 000 msat fee limit; five fit in 110 000 whatever the interleaving,
    // and the ~969 msat each gives back when its real fee is known never makes room for a sixth.
    const { token } = await provisionAgent(rig.h, { policy: policy(payee, [{ type: 'budget', name: 'hourly', asset: BTC, max: '110000', window: '1h' }]), actions: ACTIONS });
    const challenges: string[] = [];
    for (let i = 0; i < 12; i++) challenges.push(await challenge());
    const results = await Promise.all(challenges.map((c) => payL402(rig, token, { url: `${api.url}/weather`, challenge: c, maxFeeMsat: '1000' })));
    const paid = results.filter((r) => r.status === 200);
    const refused = results.filter((r) => r.status === 403);
    assert.equal(paid.length, 5, results.map((r) => `${r.status} ${JSON.stringify(r.body).slice(0, 200)}`).join('\n'));
    assert.equal(refused.length, 7);
    assert.ok(refused.every((r) => violationCodes(r.body).includes('budget_exceeded')));
    // Counted at the payee: the invoices the network settled, and the node or wallet that paid them.
    const settled = api.issued.filter((c) => rig.ln.isPaid(c.invoicePaymentHash));
    assert.equal(settled.length, 5);
    assert.ok(settled.every((c) => rig.settledAtBackend(c.invoicePaymentHash)));
    assert.deepEqual(new Set(paid.map((r) => r.body.paymentHash)), new Set(settled.map((c) => c.invoicePaymentHash)));
  } finally {
    await api.close();
  }
}

/**
 * The same challenge sent several times at once (an agent retrying on a timeout): one payment, and every answer
 * carries its credential. The pay call is made to start 300 ms after its hold commits, a window that a loaded
 * PostgreSQL opens by itself (and another Airlock instance paying it always does): the replays read the payment
 * in flight in that window and must wait for it as its first caller does, not answer 202.
 */
async function replayRace(rig: Rig): Promise<void> {
  const { api, payee, challenge } = await startApi(rig.ln, { attacks: { repeatChallenge: true } });
  const service = rig.h.airlock.lightning as unknown as { execute(record: unknown): Promise<unknown> };
  const execute = service.execute;
  assert.equal(typeof execute, 'function');
  service.execute = async function delayed(record) {
    await new Promise((r) => setTimeout(r, 300));
    return execute.call(this, record);
  };
  try {
    const { token } = await provisionAgent(rig.h, { policy: policy(payee), actions: ACTIONS });
    const header = await challenge();
    const calls = rig.payCalls();
    const results = await Promise.all(Array.from({ length: 4 }, () => payL402(rig, token, { url: `${api.url}/weather`, challenge: header })));
    assert.deepEqual(results.map((r) => r.status), [200, 200, 200, 200], JSON.stringify(results.map((r) => r.body)));
    assert.equal(new Set(results.map((r) => r.body.paymentId)).size, 1, 'one payment');
    assert.equal(new Set(results.map((r) => r.body.l402.authorization)).size, 1, 'one credential');
    assert.equal(results.filter((r) => r.body.replayed === true).length, 3);
    assert.equal(rig.payCalls(), calls + 1);
  } finally {
    service.execute = execute;
    await api.close();
  }
}

for (const kind of ['lnd', 'nwc'] as BackendKind[]) {
  describe(`L402 end to end through the ${kind} backend (sqlite)`, () => {
    let rig: Rig;
    const apis: L402TestServer[] = [];
    before(async () => {
      rig = await startRig(kind, 'sqlite');
    });
    after(async () => {
      await Promise.all(apis.map((api) => api.close()));
      await rig?.close();
    });
    const api = async (options: Partial<L402ServerOptions> = {}) => {
      const started = await startApi(rig.ln, options);
      apis.push(started.api);
      return started;
    };

    test('paid API -> 402 -> /v1/l402/pay -> a credential the API accepts; lsat-js reads the challenge and the credential alike', async () => {
      const { api: weather, payee, challenge } = await api();
      const { agent, token } = await provisionAgent(rig.h, { policy: policy(payee), actions: ACTIONS });
      const header = await challenge();
      const calls = rig.payCalls();

      const res = await payL402(rig, token, { url: `${weather.url}/weather?city=lisbon`, challenge: header });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.status, 'succeeded');
      assert.equal(res.body.amountMsat, PRICE_MSAT.toString());
      const authorization: string = res.body.l402.authorization;
      assert.equal(rig.payCalls(), calls + 1, `one pay call reached the ${kind} backend`);
      assert.ok(rig.settledAtBackend(res.body.paymentHash));

      const served = await fetch(`${weather.url}/weather`, { headers: { authorization } });
      assert.equal(served.status, 200);
      assert.deepEqual(await served.json(), { path: '/weather', paid: true });
      assert.deepEqual(weather.refusals, []);
      assert.equal(weather.stats.distinctTokens, 1);

      // lsat-js, independently: the challenge's payment hash, and Airlock's credential as satisfied by its preimage.
      const offered = Lsat.fromHeader(header);
      assert.equal(offered.paymentHash, res.body.paymentHash);
      assert.match(authorization, /^L402 /);
      const credential = Lsat.fromToken(authorization.replace(/^L402 /, 'LSAT '));
      assert.equal(credential.paymentHash, res.body.paymentHash);
      assert.equal(credential.paymentPreimage, res.body.preimage);
      assert.equal(credential.baseMacaroon, offered.baseMacaroon);
      assert.equal(credential.isSatisfied(), true);

      // The token cache answers the same credential for any URL of the origin.
      const cached = await rig.h.call('GET', `/v1/l402/token?url=${encodeURIComponent(`${weather.url}/premium`)}`, { token });
      assert.equal(cached.status, 200, JSON.stringify(cached.body));
      assert.equal(cached.body.authorization, authorization);
      assert.equal(cached.body.origin, weather.url);

      // The audit log records the payment and never the credential's secret half.
      const audit = await rig.h.admin('GET', `/v1/audit?agent=${agent.name}`);
      assert.ok(audit.body.entries.some((e: { type: string }) => e.type === 'lightning.succeeded'));
      assert.ok(!JSON.stringify(audit.body).includes(res.body.preimage), 'no preimage in the audit log');
    });

    test("an invoice whose payment hash is not the macaroon's: 400 l402_payment_hash_mismatch, nothing paid", async () => {
      const { api: forged, payee, challenge } = await api({ attacks: { mismatchedPaymentHash: true } });
      const { token } = await provisionAgent(rig.h, { policy: policy(payee), actions: ACTIONS });
      const [calls, attempts] = [rig.payCalls(), rig.ln.attempts.length];
      const res = await payL402(rig, token, { url: `${forged.url}/weather`, challenge: await challenge() });
      assert.equal(res.status, 400, JSON.stringify(res.body));
      assert.equal(res.body.error.code, 'l402_payment_hash_mismatch');
      assert.equal(rig.payCalls(), calls);
      assert.equal(rig.ln.attempts.length, attempts);
    });

    test('a payee not on the allowlist: 403 destination_not_allowed, nothing paid', async () => {
      const { api: weather, challenge } = await api();
      const { token } = await provisionAgent(rig.h, { policy: policy(new TestNode().nodeId), actions: ACTIONS });
      const calls = rig.payCalls();
      const res = await payL402(rig, token, { url: `${weather.url}/weather`, challenge: await challenge() });
      assert.equal(res.status, 403, JSON.stringify(res.body));
      assert.deepEqual(violationCodes(res.body), ['destination_not_allowed']);
      assert.equal(rig.payCalls(), calls);
    });

    test('an amount over the cap: 403 amount_exceeds_max, nothing paid', async () => {
      const { api: weather, payee, challenge } = await api();
      const { token } = await provisionAgent(rig.h, { policy: policy(payee), actions: ACTIONS });
      const calls = rig.payCalls();
      const res = await payL402(rig, token, { url: `${weather.url}/premium`, challenge: await challenge('/premium') });
      assert.equal(res.status, 403, JSON.stringify(res.body));
      assert.deepEqual(violationCodes(res.body), ['amount_exceeds_max']);
      assert.equal(rig.payCalls(), calls);
    });

    test('a budget exhausted by many small payments in parallel: exactly the allowed number reach the payee', async () => {
      await budgetRace(rig);
    });

    test('a replayed challenge: the same challenge twice is one payment, answered again as replayed with the same credential', async () => {
      const { api: repeating, payee, challenge } = await api({ attacks: { repeatChallenge: true } });
      const { token } = await provisionAgent(rig.h, { policy: policy(payee), actions: ACTIONS });
      const first = await challenge();
      const second = await challenge();
      assert.equal(second, first, 'the server sent the same challenge again');
      const calls = rig.payCalls();
      const paid = await payL402(rig, token, { url: `${repeating.url}/weather`, challenge: first });
      const replayed = await payL402(rig, token, { url: `${repeating.url}/weather`, challenge: second });
      assert.equal(paid.status, 200, JSON.stringify(paid.body));
      assert.equal(replayed.status, 200, JSON.stringify(replayed.body));
      assert.equal(replayed.body.replayed, true);
      assert.equal(replayed.body.paymentId, paid.body.paymentId);
      assert.equal(replayed.body.l402.authorization, paid.body.l402.authorization);
      assert.equal(rig.payCalls(), calls + 1);
      assert.equal(rig.ln.attempts.filter((hash) => hash === paid.body.paymentHash).length, 1);
      const served = await fetch(`${repeating.url}/weather`, { headers: { authorization: replayed.body.l402.authorization } });
      assert.equal(served.status, 200);
      await served.text();
    });

    test('the same challenge several times at once: one payment, one credential', async () => {
      await replayRace(rig);
    });

    test('an expired invoice: 400 invoice_expired, nothing paid', async () => {
      // The allowlist names the API's node: expiry alone refuses.
      const { api: stale, payee, challenge } = await api({ attacks: { expiredInvoice: true } });
      const { token } = await provisionAgent(rig.h, { policy: policy(payee), actions: ACTIONS });
      const calls = rig.payCalls();
      const res = await payL402(rig, token, { url: `${stale.url}/weather`, challenge: await challenge() });
      assert.equal(res.status, 400, JSON.stringify(res.body));
      assert.equal(res.body.error.code, 'invoice_expired');
      assert.equal(rig.payCalls(), calls);
    });

    test('a per-origin budget stops one API and not another', async () => {
      const first = await api();
      const second = await api();
      // One payment (21 000 msat and its 1 000 msat fee limit) fits each origin's 30 000.
      const perOrigin = { type: 'budget', name: 'per-api', asset: BTC, max: '30000', window: '1h', per_origin: true };
      const { token } = await provisionAgent(rig.h, { policy: { ...policy(first.payee, [perOrigin]), sets: { apis: [first.payee, second.payee] } }, actions: ACTIONS });
      const pay = async (target: typeof first) => payL402(rig, token, { url: `${target.api.url}/weather`, challenge: await target.challenge() });

      const once = await pay(first);
      assert.equal(once.status, 200, JSON.stringify(once.body));
      const twice = await pay(first);
      assert.equal(twice.status, 403, JSON.stringify(twice.body));
      assert.deepEqual(violationCodes(twice.body), ['budget_exceeded']);
      assert.equal(twice.body.error.violations[0].rule, 'agent/per-api');
      const other = await pay(second);
      assert.equal(other.status, 200, JSON.stringify(other.body));
      assert.equal(first.api.issued.filter((c) => rig.ln.isPaid(c.invoicePaymentHash)).length, 1);
      assert.equal(second.api.issued.filter((c) => rig.ln.isPaid(c.invoicePaymentHash)).length, 1);
    });
  });

  describe(`L402 end to end through the ${kind} backend (postgres)`, () => {
    let rig: Rig;
    before(async () => {
      rig = await startRig(kind, 'postgres');
    });
    after(async () => rig?.close());
    test('a budget exhausted by many small payments in parallel: exactly the allowed number reach the payee', async () => {
      await budgetRace(rig);
    });
    test('the same challenge several times at once: one payment, one credential', async () => {
      await replayRace(rig);
    });
  });
}
