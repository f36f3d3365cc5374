// The SDK's L402 fetch and Lightning wallet against a real Airlock over HTTP (the daemon in process, paying
// through the simulated Lightning network's backend port) and the paid API double of testing/l402-server, which
// answers as Aperture does with real macaroons. The LND and NWC backends are exercised end to end in
// packages/server/src/l402.e2e.http.test.ts; here the subject is what an agent's code sees.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fetchWithL402 } from '@getalby/lightning-tools/402/l402';
import { BITCOIN_CHAINS, bitcoinAsset } from '@airlock/core';
import { decodeBolt11 } from '@airlock/chains';
import { initAirlock, loadConfig, serveAirlock, type RunningServer } from '@airlock/server';
// The harness's fast-KDF vault options: test-only, so imported by path rather than from the package.
import { TEST_PASSPHRASE, TEST_VAULT, uniqueName } from '../../server/src/testing/harness.ts';
import { LightningNetwork, SimulatedBackend, TestNode } from '../../../testing/lightning-network.ts';
import { startL402Server, type L402TestServer } from '../../../testing/l402-server/server.ts';
import { AirlockApiError, AirlockApprovalRequiredError, AirlockPolicyError, createAirlockHttp, type AirlockHttp } from './http.ts';
import { findAirlockError } from './find-airlock-error.ts';
import { airlockLightningWallet, AirlockPaymentPendingError, createL402Fetch, payLightningInvoice } from './l402.ts';
import { payeeOnlyPolicy } from '../../../testing/lightning-policies.ts';

const BTC = bitcoinAsset(BITCOIN_CHAINS.regtest);
const PRICE_SAT = 21n;
const LIGHTNING = { backend: 'lnd' as const, network: 'regtest' as const, payTimeoutSeconds: 5, notFoundGraceSeconds: 60, defaultFeePercent: 1 };

/** Pays the API's node, at most 100 sat a payment; `extra` rules after those. */
const policy = payeeOnlyPolicy;

describe('L402 through the SDK, with a real Airlock over HTTP', () => {
  let ln: LightningNetwork;
  let backend: SimulatedBackend;
  let server: RunningServer | undefined;
  let dataDir: string | undefined;
  let admin: AirlockHttp;
  const apis: L402TestServer[] = [];
  const closers: Server[] = [];

  before(async () => {
    ln = new LightningNetwork();
    ln.feeBaseMsat = 10n; // within Airlock's default fee limit (1 %, at least 1000 msat)
    backend = new SimulatedBackend(ln);
    dataDir = mkdtempSync(join(tmpdir(), 'airlock-sdk-l402-'));
    const config = loadConfig({ dataDir, host: '127.0.0.1', port: 0, lightning: LIGHTNING }, {});
    const adminToken = (await initAirlock(config, TEST_PASSPHRASE, TEST_VAULT)).adminToken;
    server = await serveAirlock(config, TEST_PASSPHRASE, { vault: TEST_VAULT, lightningBackend: backend });
    admin = createAirlockHttp({ url: server.url, token: adminToken });
  });

  after(async () => {
    await Promise.all(apis.map((api) => api.close()));
    for (const s of closers) (s.closeAllConnections(), s.close());
    await server?.close().catch(() => {});
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  /** A paid API on its own origin, and its node id (read from the invoice of one challenge, as a payer would). */
  async function startApi(): Promise<{ api: L402TestServer; payee: string }> {
    const api = await startL402Server({ network: ln, routes: { '/weather': { priceSat: PRICE_SAT, body: { forecast: 'sunny' } }, '/premium': { priceSat: 500n } }, service: 'weather' });
    apis.push(api);
    await (await fetch(`${api.url}/weather`)).text();
    return { api, payee: decodeBolt11(api.issued[0]!.invoice, { now: Date.now(), network: 'regtest' }).payee };
  }

  /** An agent allowed to pay over Lightning, with this policy; its session token and SDK options. */
  async function provision(document: unknown): Promise<{ name: string; options: { url: string; token: string } }> {
    const created = await admin.request<{ agents: { name: string }[] }>('POST', '/v1/agents', { names: [uniqueName('bot')] });
    const name = created.body.agents[0]!.name;
    await admin.request('PUT', `/v1/policies/${name}`, { document });
    const issued = await admin.request<{ token: string }>('POST', `/v1/agents/${name}/sessions`, { ttl: '1h', actions: ['lightning.pay'] });
    return { name, options: { url: server!.url, token: issued.body.token } };
  }

  /** How many payments the network settled for invoices this API issued. */
  const paidAt = (api: L402TestServer) => api.issued.filter((c) => ln.isPaid(c.invoicePaymentHash)).length;

  test('one line: the fetch pays the challenge through Airlock and gets 200; the next request reuses the token', async () => {
    const { api, payee } = await startApi();
    const { name, options } = await provision(policy(payee));
    const attempts = ln.attempts.length;

    const l402Fetch = createL402Fetch(options, { maxFeeMsat: 500n });
    const res = await l402Fetch(`${api.url}/weather?city=lisbon`);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { forecast: 'sunny' });

    const again = await l402Fetch(`${api.url}/premium`);
    assert.equal(again.status, 200, 'the same service, another path: the token admits it');
    await again.text();
    assert.equal(api.stats.paidRequests, 2);
    assert.equal(api.stats.distinctTokens, 1, 'one token served both requests');
    assert.equal(ln.attempts.length, attempts + 1, 'the network saw one payment');
    assert.equal(paidAt(api), 1);
    assert.deepEqual(api.refusals, []);
    const { body: listed } = await admin.request<{ payments: { maxFeeMsat: string; resource: string }[] }>('GET', `/v1/lightning/payments?agent=${name}`);
    assert.deepEqual(listed.payments.map((p) => [p.maxFeeMsat, p.resource]), [['500', `${api.url}/weather`]], 'the fee limit asked for, and the URL as the paid resource');
  });

  test('a new agent process (a fresh SDK, the same session) reuses the token Airlock holds, and pays nothing', async () => {
    const { api, payee } = await startApi();
    const { options } = await provision(policy(payee));
    const first = await createL402Fetch(options)(`${api.url}/weather`);
    assert.equal(first.status, 200);
    await first.text();
    const attempts = ln.attempts.length;
    const challenges = api.stats.challenges;

    const restarted = createL402Fetch({ url: options.url, token: options.token });
    const res = await restarted(`${api.url}/weather`);
    assert.equal(res.status, 200);
    await res.text();
    assert.equal(api.stats.challenges, challenges, 'the first request already carried the credential');
    assert.equal(api.stats.distinctTokens, 1);
    assert.equal(ln.attempts.length, attempts, 'nothing paid');
  });

  test('fetchWithL402 from @getalby/lightning-tools works unchanged with airlockLightningWallet', async () => {
    const { api, payee } = await startApi();
    const { options } = await provision(policy(payee));
    const attempts = ln.attempts.length;
    const res = await fetchWithL402(`${api.url}/weather`, {}, { wallet: airlockLightningWallet(options) });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { forecast: 'sunny' });
    assert.equal(res.payment?.paid, true);
    assert.equal(res.payment?.amount, Number(PRICE_SAT));
    assert.equal(res.payment?.feesPaid, Number(ln.feeFor(PRICE_SAT * 1000n)), 'the fee Airlock charged, in msat');
    assert.equal(ln.attempts.length, attempts + 1);
    assert.equal(paidAt(api), 1);
    // The credential the library built from our preimage is one the API keeps accepting.
    const reuse = await fetchWithL402(`${api.url}/weather`, {}, { wallet: airlockLightningWallet(options), credentials: res.payment!.credentials });
    assert.equal(reuse.status, 200);
    await reuse.text();
    assert.equal(ln.attempts.length, attempts + 1);
  });

  test('a refusal surfaces as AirlockPolicyError with the rule and code; nothing is paid and the request is not retried', async () => {
    const { api, payee } = await startApi();
    const { options } = await provision(policy(new TestNode().nodeId));
    const challenges = api.stats.challenges;
    const attempts = ln.attempts.length;
    const l402Fetch = createL402Fetch(options);

    const err = await l402Fetch(`${api.url}/weather`).then(() => assert.fail('expected a refusal'), (e: unknown) => e);
    const refusal = findAirlockError(err, AirlockPolicyError);
    assert.ok(refusal, `expected AirlockPolicyError, got ${String(err)}`);
    assert.deepEqual(refusal.violations.map((v) => [v.rule, v.code]), [['agent/only-apis', 'destination_not_allowed']]);

    // Allowed payee, but over the per-payment cap: 500 sat plus the default routing fee limit (1 %) it holds.
    const capped = await provision(policy(payee));
    const over = await createL402Fetch(capped.options)(`${api.url}/premium`).then(() => assert.fail('expected a refusal'), (e: unknown) => e);
    assert.ok(over instanceof AirlockPolicyError, String(over));
    assert.deepEqual(over.violations.map((v) => [v.rule, v.code, v.limit, v.requested]), [['agent/per-payment', 'amount_exceeds_max', '100000', '505000']]);

    assert.equal(api.stats.challenges, challenges + 2, 'each request was sent once, unpaid');
    assert.equal(api.stats.paidRequests, 0);
    assert.equal(ln.attempts.length, attempts, 'nothing reached the network');
  });

  test('a streamed request body is sent again intact with the credential', async () => {
    const { api, payee } = await startApi();
    const { options } = await provision(policy(payee));
    const proxy = await recordingProxy(api.url);
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('{"city":'));
        controller.enqueue(new TextEncoder().encode('"porto"}'));
        controller.close();
      },
    });
    const res = await createL402Fetch(options)(`${proxy.url}/weather`, { method: 'POST', body, duplex: 'half', headers: { 'content-type': 'application/json' } } as RequestInit);
    assert.equal(res.status, 200);
    await res.text();
    assert.deepEqual(proxy.seen, [
      { authorized: false, body: '{"city":"porto"}' },
      { authorized: true, body: '{"city":"porto"}' },
    ]);
  });

  test('an API that refuses the credential just bought: a typed error after one payment and two sendings, no loop', async () => {
    const { api, payee } = await startApi();
    const { options } = await provision(policy(payee));
    const proxy = await recordingProxy(api.url, true);
    const attempts = ln.attempts.length;
    const err = await createL402Fetch(options)(`${proxy.url}/weather`).then(() => assert.fail('expected a refusal'), (e: unknown) => e);
    assert.ok(err instanceof AirlockApiError && err.code === 'l402_credential_refused' && err.status === 402, String(err));
    assert.deepEqual(proxy.seen.map((r) => r.authorized), [false, true]);
    assert.equal(ln.attempts.length, attempts + 1, 'paid once, not again for the second challenge');
  });

  test('concurrent requests to one origin share one payment', async () => {
    const { api, payee } = await startApi();
    const { options } = await provision(policy(payee));
    const attempts = ln.attempts.length;
    const l402Fetch = createL402Fetch(options);
    const results = await Promise.all(Array.from({ length: 4 }, () => l402Fetch(`${api.url}/weather`)));
    assert.deepEqual(results.map((r) => r.status), [200, 200, 200, 200]);
    await Promise.all(results.map((r) => r.text()));
    assert.equal(ln.attempts.length, attempts + 1, 'one payment');
    assert.equal(api.stats.distinctTokens, 1);
  });

  test('a payment waiting for a human: the next call asks about it instead of paying the new challenge', async () => {
    const { api, payee } = await startApi();
    const { name, options } = await provision(policy(payee, [{ type: 'approval_tier', name: 'by-hand', asset: BTC, above: '1000' }]));
    const l402Fetch = createL402Fetch(options);
    const held = await l402Fetch(`${api.url}/weather`).then(() => assert.fail('expected an approval wait'), (e: unknown) => e);
    assert.ok(held instanceof AirlockApprovalRequiredError, String(held));
    const again = await l402Fetch(`${api.url}/weather`).then(() => assert.fail('expected an approval wait'), (e: unknown) => e);
    assert.ok(again instanceof AirlockApprovalRequiredError && again.approvalId === held.approvalId, 'the same approval, not a second request');
    const { body: listed } = await admin.request<{ approvals: unknown[] }>('GET', `/v1/approvals?agent=${name}`);
    assert.equal(listed.approvals.length, 1);

    await admin.request('POST', `/v1/approvals/${held.approvalId}/approve`);
    const attempts = ln.attempts.length;
    const res = await l402Fetch(`${api.url}/weather`);
    assert.equal(res.status, 200);
    await res.text();
    assert.equal(ln.attempts.length, attempts, 'the approved payment bought the credential; no other was made');
    assert.equal(paidAt(api), 1);
  });

  /** Approves the agent's one pending approval once it shows, as an operator watching the queue would. */
  async function approveWhenHeld(name: string): Promise<void> {
    for (let i = 0; i < 200; i++) {
      const { body } = await admin.request<{ approvals: { id: string }[] }>('GET', `/v1/approvals?agent=${name}`);
      if (body.approvals.length === 1) {
        await admin.request('POST', `/v1/approvals/${body.approvals[0]!.id}/approve`);
        return;
      }
      await new Promise((r) => setTimeout(r, 25));
    }
    assert.fail('no approval was opened');
  }

  test('approved while the SDK waits (approvalWaitMs): the payment comes back with its preimage, and the L402 fetch gets the resource', async () => {
    // Found by review: the approval's result is the operator's view (no preimage, no credential); the SDK took it
    // for the payment and reported a payment that succeeded as paid with a preimage that does not match.
    const shop = ln.payee();
    const held = await provision(policy(shop.node.nodeId, [{ type: 'approval_tier', name: 'by-hand', asset: BTC, above: '10' }]));
    const invoice = shop.invoice({ amountMsat: 30_000n });
    const [paid] = await Promise.all([payLightningInvoice(held.options, { invoice: invoice.invoice }, { approvalWaitMs: 10_000 }), approveWhenHeld(held.name)]);
    assert.equal(paid.preimage, invoice.preimage);
    assert.equal(paid.amountMsat, 30_000n);
    assert.equal(ln.attempts.filter((h) => h === invoice.paymentHash).length, 1);

    const { api, payee } = await startApi();
    const waiting = await provision(policy(payee, [{ type: 'approval_tier', name: 'by-hand', asset: BTC, above: '1' }]));
    const [res] = await Promise.all([createL402Fetch(waiting.options, { approvalWaitMs: 10_000 })(`${api.url}/weather`), approveWhenHeld(waiting.name)]);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { forecast: 'sunny' });
    assert.equal(paidAt(api), 1);
  });

  test('a payment whose outcome is unknown is never paid twice: the next call asks about it, then uses it', async () => {
    const { api, payee } = await startApi();
    const { options } = await provision(policy(payee));
    const attempts = ln.attempts.length;
    const l402Fetch = createL402Fetch(options);
    backend.loseAnswers = true; // the payment reaches the network; its answer is lost on the way back
    let pending: AirlockPaymentPendingError;
    try {
      const err = await l402Fetch(`${api.url}/weather`).then(() => assert.fail('expected an in-flight payment'), (e: unknown) => e);
      assert.ok(err instanceof AirlockPaymentPendingError, String(err));
      pending = err;
    } finally {
      backend.loseAnswers = false;
    }
    const still = await l402Fetch(`${api.url}/weather`).then(() => assert.fail('expected an in-flight payment'), (e: unknown) => e);
    assert.ok(still instanceof AirlockPaymentPendingError && still.paymentId === pending.paymentId, String(still));
    assert.equal(ln.attempts.length, attempts + 1, 'one payment, not a second for the new challenge');

    // The operator's reconcile (the daemon's timer) learns the outcome from the backend.
    await admin.request('POST', '/v1/lightning/reconcile');
    const res = await l402Fetch(`${api.url}/weather`);
    assert.equal(res.status, 200);
    await res.text();
    assert.equal(ln.attempts.length, attempts + 1);
    assert.equal(api.stats.distinctTokens, 1);
  });

  test('payLightningInvoice pays a plain invoice, verifies its preimage, and answers the same payment when asked again', async () => {
    const shop = ln.payee();
    const { options } = await provision(policy(shop.node.nodeId));
    const invoice = shop.invoice({ amountMsat: 30_000n });
    const paid = await payLightningInvoice(options, { invoice: invoice.invoice });
    assert.equal(paid.preimage, invoice.preimage);
    assert.equal(paid.paymentHash, invoice.paymentHash);
    assert.equal(paid.amountMsat, 30_000n);
    assert.equal(paid.feeMsat, ln.feeFor(30_000n));
    assert.equal(paid.replayed, false);
    const again = await payLightningInvoice(createAirlockHttp(options), { invoice: invoice.invoice });
    assert.equal(again.paymentId, paid.paymentId);
    assert.equal(again.replayed, true);
    assert.equal(ln.attempts.filter((h) => h === invoice.paymentHash).length, 1);
    const failed = await payLightningInvoice(options, { invoice: shop.invoice({ amountMsat: 1_000n, timestamp: Math.floor(Date.now() / 1000) - 7200, expirySeconds: 60 }).invoice }).then(() => assert.fail('expected a refusal'), (e: unknown) => e);
    assert.ok(failed instanceof AirlockApiError && failed.code === 'invoice_expired', String(failed));
  });

  /**
   * An origin in front of the paid API that records what each request carried, then forwards it (without its
   * Authorization header when `dropCredentials`: an API that refuses every credential).
   */
  async function recordingProxy(target: string, dropCredentials = false): Promise<{ url: string; seen: { authorized: boolean; body: string }[] }> {
    const seen: { authorized: boolean; body: string }[] = [];
    const proxy = createServer(async (req, res) => {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      seen.push({ authorized: req.headers.authorization !== undefined, body: Buffer.concat(chunks).toString('utf8') });
      const upstream = await fetch(`${target}${req.url}`, { method: 'GET', headers: req.headers.authorization && !dropCredentials ? { authorization: req.headers.authorization } : {} });
      const challenge = upstream.headers.get('www-authenticate');
      res.writeHead(upstream.status, { 'content-type': upstream.headers.get('content-type') ?? 'text/plain', ...(challenge ? { 'www-authenticate': challenge } : {}) });
      res.end(Buffer.from(await upstream.arrayBuffer()));
    });
    closers.push(proxy);
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', () => r()));
    return { url: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`, seen };
  }
});
