// The LND REST backend against the LND REST double over real HTTPS (a pinned self-signed certificate, the
// macaroon header, streamed newline-delimited JSON), paying through the simulated Lightning network.
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AirlockError, type LightningPaymentStatus } from '@airlock/core';
import { LightningNetwork, TestNode } from '../../../../testing/lightning-network.ts';
import { startLndRestDouble, type LndRestDouble, type LndRestDoubleOptions } from '../../../../testing/lnd-rest-double/server.ts';
import { makeCertificate } from '../../../../testing/lnd-rest-double/tls-certificates.ts';
import { LightningBackendError, LndRestBackend, type LndRestOptions } from './lnd-rest.ts';

const AMOUNT = 250_000n; // msat
const sha256Hex = (hex: string) => createHash('sha256').update(Buffer.from(hex, 'hex')).digest('hex');

let network: LightningNetwork;
let lnd: LndRestDouble;
let backend: LndRestBackend;
const extra: { close(): Promise<void> }[] = [];

async function start(options: Partial<LndRestDoubleOptions> = {}): Promise<void> {
  network = new LightningNetwork();
  lnd = await startLndRestDouble({ network, ...options });
  backend = connect();
}

function connect(overrides: Partial<LndRestOptions> = {}, server: LndRestDouble = lnd): LndRestBackend {
  const b = new LndRestBackend({ url: server.url, macaroon: { hex: server.adminMacaroonHex }, tlsCert: { pem: server.certPem }, network: 'regtest', payGraceSeconds: 0.4, requestTimeoutMs: 2_000, ...overrides });
  extra.push(b);
  return b;
}

function invoice(options: { amountMsat?: bigint } = { amountMsat: AMOUNT }) {
  return network.payee().invoice(options);
}

function payRequest(issued: { invoice: string; paymentHash: string }, more: { maxFeeMsat?: bigint; amountMsat?: bigint; timeoutSeconds?: number } = {}) {
  return { invoice: issued.invoice, paymentHash: issued.paymentHash, maxFeeMsat: more.maxFeeMsat ?? 10_000n, timeoutSeconds: more.timeoutSeconds ?? 30, ...(more.amountMsat !== undefined ? { amountMsat: more.amountMsat } : {}) };
}

/** Resolves when the double's payment table shows `status` for the hash. */
async function untilStatus(hash: string, status: string): Promise<void> {
  for (let i = 0; i < 500 && lnd.paymentStatus(hash) !== status; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(lnd.paymentStatus(hash), status);
}

async function rejectsUnavailable(promise: Promise<unknown>, check?: (e: LightningBackendError) => void): Promise<void> {
  await assert.rejects(promise, (e: unknown) => {
    assert.ok(e instanceof LightningBackendError, `expected LightningBackendError, got ${String(e)}`);
    assert.equal(e.code, 'lightning_backend_unavailable');
    check?.(e);
    return true;
  });
}

beforeEach(() => start());
afterEach(async () => {
  for (const c of extra.splice(0)) await c.close();
  await lnd.close();
});

describe('LndRestBackend: definite answers', () => {
  test('a payment that succeeds reports the preimage of the hash, the fee the route charged and the amount', async () => {
    const issued = invoice();
    const before = await backend.balance();
    const result = await backend.pay(payRequest(issued));
    assert.equal(result.status, 'succeeded');
    assert.ok(result.status === 'succeeded');
    assert.equal(sha256Hex(result.preimage), issued.paymentHash);
    assert.equal(result.preimage, issued.preimage);
    assert.equal(result.feeMsat, network.feeFor(AMOUNT));
    assert.equal(result.amountMsat, AMOUNT);
    assert.ok(network.isPaid(issued.paymentHash));
    assert.deepEqual(await backend.lookup(issued.paymentHash), result);
    assert.equal((await backend.balance()).msat, before.msat - AMOUNT - network.feeFor(AMOUNT));
  });

  test('no route within the fee limit is a definite failure, and nothing reached the payee', async () => {
    const issued = invoice();
    const result = await backend.pay(payRequest(issued, { maxFeeMsat: network.feeFor(AMOUNT) - 1n }));
    assert.deepEqual(result, { status: 'failed', reason: 'no_route' });
    assert.equal(network.attempts.includes(issued.paymentHash), false);
    assert.deepEqual(await backend.lookup(issued.paymentHash), { status: 'failed', reason: 'no_route' });
    // LND lets a failed payment be tried again; with room for the fee it goes through.
    const retry = await backend.pay(payRequest(issued, { maxFeeMsat: network.feeFor(AMOUNT) }));
    assert.equal(retry.status, 'succeeded');
  });

  test('a fee limit of zero allows only fee-free routes (LND reads 0 as zero, not as no limit)', async () => {
    const issued = invoice();
    assert.deepEqual(await backend.pay(payRequest(issued, { maxFeeMsat: 0n })), { status: 'failed', reason: 'no_route' });
  });

  test('a payee that does not know the invoice fails it: incorrect payment details', async () => {
    const unknownToNetwork = new TestNode().invoice({ amountMsat: AMOUNT });
    const result = await backend.pay(payRequest(unknownToNetwork));
    assert.deepEqual(result, { status: 'failed', reason: 'incorrect_payment_details' });
    assert.ok(network.attempts.includes(unknownToNetwork.paymentHash), 'an HTLC was sent and refused');
  });

  test('a scripted failure after a delay is reported once LND marks the payment failed', async () => {
    const issued = invoice();
    network.script(issued.paymentHash, { kind: 'fail', reason: 'insufficient_balance', afterMs: 50 });
    assert.deepEqual(await backend.pay(payRequest(issued)), { status: 'failed', reason: 'insufficient_balance' });
  });

  test('more than the local balance fails as insufficient balance without an HTLC', async () => {
    lnd.localBalanceMsat = AMOUNT - 1n;
    const issued = invoice();
    assert.deepEqual(await backend.pay(payRequest(issued)), { status: 'failed', reason: 'insufficient_balance' });
    assert.equal(network.attempts.length, 0);
  });

  test('an amountless invoice is paid the amount Airlock gives', async () => {
    const issued = invoice({});
    const result = await backend.pay(payRequest(issued, { amountMsat: 21_000n }));
    assert.ok(result.status === 'succeeded');
    assert.equal(result.amountMsat, 21_000n);
    assert.equal(result.feeMsat, network.feeFor(21_000n));
  });

  test('requests LND would refuse are refused here first, as definite failures, without calling LND', async () => {
    const amountless = invoice({});
    const withAmount = invoice();
    const testnet = network.payee().invoice({ amountMsat: AMOUNT, network: 'testnet' });
    const expired = network.payee().invoice({ amountMsat: AMOUNT, timestamp: Math.floor(Date.now() / 1000) - 7200, expirySeconds: 60 });
    assert.deepEqual(await backend.pay(payRequest(amountless)), { status: 'failed', reason: 'amount_required' });
    assert.deepEqual(await backend.pay(payRequest(withAmount, { amountMsat: AMOUNT + 1n })), { status: 'failed', reason: 'amount_mismatch' });
    assert.deepEqual(await backend.pay(payRequest(testnet)), { status: 'failed', reason: 'invoice_wrong_network' });
    assert.deepEqual(await backend.pay(payRequest(expired)), { status: 'failed', reason: 'invoice_expired' });
    assert.deepEqual(await backend.pay({ ...payRequest(withAmount), paymentHash: amountless.paymentHash }), { status: 'failed', reason: 'payment_hash_mismatch' });
    assert.equal(lnd.requests.length, 0);
    // The same amount beside an invoice that has one is not an error: it is simply not sent to LND.
    assert.equal((await backend.pay(payRequest(withAmount, { amountMsat: AMOUNT }))).status, 'succeeded');
  });

  test('an unknown payment hash is not_found', async () => {
    assert.deepEqual(await backend.lookup(randomBytes(32).toString('hex')), { status: 'not_found' });
  });

  test('a 404 that is not LND saying "payment isn\'t initiated" (a wrong path) throws instead of not_found', async () => {
    const misrouted = connect({ url: `${lnd.url}/not-lnd/` });
    await rejectsUnavailable(misrouted.lookup(randomBytes(32).toString('hex')), (e) => assert.equal(e.httpStatus, 404));
  });
});

describe('LndRestBackend: uncertain answers keep the hold', () => {
  test('a payment still in flight at the deadline is in_flight; once it settles, lookup says succeeded', async () => {
    const issued = invoice();
    network.script(issued.paymentHash, { kind: 'hang' });
    const started = Date.now();
    assert.deepEqual(await backend.pay(payRequest(issued, { timeoutSeconds: 1 })), { status: 'in_flight' });
    assert.ok(Date.now() - started >= 990, 'waited for the payment timeout');
    assert.deepEqual(await backend.lookup(issued.paymentHash), { status: 'in_flight' });
    // Paying again while it is in flight: LND refuses ("payment is in transition"), which is not a failure. The
    // answer is marked as the state of a payment this call did not make (the service asks whose it is).
    assert.deepEqual(await backend.pay(payRequest(issued)), { status: 'in_flight', evidence: 'duplicate' });
    network.release(issued.paymentHash, { succeed: true });
    await untilStatus(issued.paymentHash, 'SUCCEEDED');
    const settled = await backend.lookup(issued.paymentHash);
    assert.ok(settled.status === 'succeeded');
    assert.equal(settled.preimage, issued.preimage);
    // And paying a paid invoice again: LND refuses ("invoice is already paid"); the answer is the payment's state.
    assert.deepEqual(await backend.pay(payRequest(issued)), { ...settled, evidence: 'duplicate' });
    assert.equal(network.attempts.filter((h) => h === issued.paymentHash).length, 1, 'the payee was paid once');
  });

  test('a payment LND reports as INITIATED (routerrpc.usestatusinitiated) is in_flight', async () => {
    await lnd.close();
    await start({ useStatusInitiated: true });
    const issued = invoice();
    network.script(issued.paymentHash, { kind: 'hang' });
    assert.deepEqual(await backend.pay(payRequest(issued, { timeoutSeconds: 1 })), { status: 'in_flight' });
    network.release(issued.paymentHash, { succeed: false, reason: 'incorrect_payment_details' });
    await untilStatus(issued.paymentHash, 'FAILED');
    assert.deepEqual(await backend.lookup(issued.paymentHash), { status: 'failed', reason: 'incorrect_payment_details' });
  });

  test('LND that never answers the pay call: throws after the deadline, and lookup finds the payment it made', async () => {
    const issued = invoice();
    lnd.injectFault('send', { kind: 'stall' });
    const started = Date.now();
    await rejectsUnavailable(backend.pay(payRequest(issued, { timeoutSeconds: 1 })), (e) => assert.match(e.message, /in time/));
    assert.ok(Date.now() - started >= 990);
    const state = await backend.lookup(issued.paymentHash);
    assert.ok(state.status === 'succeeded');
    assert.equal(state.preimage, issued.preimage);
  });

  test('a connection dropped mid-stream throws (never failed); lookup answers once the payment settles', async () => {
    const issued = invoice();
    network.script(issued.paymentHash, { kind: 'hang' });
    lnd.injectFault('send', { kind: 'drop', afterLines: 1 });
    await rejectsUnavailable(backend.pay(payRequest(issued)), (e) => assert.match(e.message, /broke off/));
    network.release(issued.paymentHash, { succeed: true, feeMsat: 777n });
    await untilStatus(issued.paymentHash, 'SUCCEEDED');
    const state = await backend.lookup(issued.paymentHash);
    assert.ok(state.status === 'succeeded');
    assert.equal(state.feeMsat, 777n);
  });

  test('a stream that ends cleanly before the final state is in_flight, not failed', async () => {
    const issued = invoice();
    network.script(issued.paymentHash, { kind: 'hang' });
    lnd.injectFault('send', { kind: 'end', afterLines: 2 });
    assert.deepEqual(await backend.pay(payRequest(issued)), { status: 'in_flight' });
  });

  test("LND's error line after the first updates (its router shutting down) throws", async () => {
    const issued = invoice();
    network.script(issued.paymentHash, { kind: 'hang' });
    lnd.injectFault('send', { kind: 'shutdown', afterLines: 2 });
    await rejectsUnavailable(backend.pay(payRequest(issued)), (e) => {
      assert.equal(e.httpStatus, 200);
      assert.match(e.message, /routerrpc server shutting down/);
    });
  });

  test('a SUCCEEDED whose preimage does not hash to the payment hash is not believed', async () => {
    const issued = invoice();
    lnd.injectFault('send', { kind: 'wrong_preimage' });
    await rejectsUnavailable(backend.pay(payRequest(issued)), (e) => assert.match(e.message, /does not match the payment hash/));
    // LND's own record (the untampered lookup) has the real one.
    const state = await backend.lookup(issued.paymentHash);
    assert.ok(state.status === 'succeeded' && state.preimage === issued.preimage);
  });

  test('a lookup LND does not answer in time throws', async () => {
    lnd.injectFault('track', { kind: 'stall' });
    const quick = connect({ requestTimeoutMs: 300 });
    await rejectsUnavailable(quick.lookup(invoice().paymentHash));
  });

  test('HTTP 500 throws for pay, lookup and balance, and the pay never reached the network', async () => {
    const issued = invoice();
    lnd.injectFault('send', { kind: 'http_500' });
    const outcome: Promise<LightningPaymentStatus> = backend.pay(payRequest(issued));
    await rejectsUnavailable(outcome, (e) => {
      assert.equal(e.httpStatus, 500);
      assert.equal(e.lndCode, 2);
      assert.match(e.message, /shutting down/);
    });
    assert.equal(network.attempts.length, 0);
    lnd.injectFault('track', { kind: 'http_500' });
    await rejectsUnavailable(backend.lookup(issued.paymentHash), (e) => assert.equal(e.httpStatus, 500));
    lnd.injectFault('balance', { kind: 'http_500' });
    await rejectsUnavailable(backend.balance(), (e) => assert.equal(e.httpStatus, 500));
  });

  test('close() aborts a pay call that is waiting: it throws, and the payment carries on in LND', async () => {
    const issued = invoice();
    network.script(issued.paymentHash, { kind: 'hang' });
    const pending = backend.pay(payRequest(issued));
    await untilStatus(issued.paymentHash, 'IN_FLIGHT');
    await backend.close();
    await rejectsUnavailable(pending);
    assert.equal(lnd.paymentStatus(issued.paymentHash), 'IN_FLIGHT');
  });
});

describe('LndRestBackend: credentials and TLS', () => {
  test('a macaroon LND did not issue: every call throws, and no message carries the macaroon', async () => {
    const forged = `0201036c6e64${randomBytes(40).toString('hex')}`;
    const wrong = connect({ macaroon: { hex: forged } });
    const issued = invoice();
    for (const call of [wrong.pay(payRequest(issued)), wrong.lookup(issued.paymentHash), wrong.balance()]) {
      await rejectsUnavailable(call, (e) => {
        assert.equal(e.httpStatus, 500);
        assert.match(e.message, /verification failed/);
        assert.ok(!e.message.toLowerCase().includes(forged), 'the macaroon is not in the message');
        assert.ok(!String(e.stack).toLowerCase().includes(forged));
      });
    }
    assert.equal(network.attempts.length, 0);
    assert.equal(lnd.requests.at(-1)?.macaroon, forged, 'it was sent in the Grpc-Metadata-macaroon header');
  });

  test('a read-only macaroon can look up but not pay (permission denied throws, it is not a failure)', async () => {
    const readOnly = connect({ macaroon: { hex: lnd.bakeMacaroon(['offchain:read']) } });
    const issued = invoice();
    await rejectsUnavailable(readOnly.pay(payRequest(issued)), (e) => assert.match(e.message, /permission denied/));
    assert.deepEqual(await readOnly.lookup(issued.paymentHash), { status: 'not_found' });
    assert.equal(typeof (await readOnly.balance()).msat, 'bigint');
  });

  test('the pay-only macaroon baked for Airlock does every call', async () => {
    const payOnly = connect({ macaroon: { hex: lnd.bakeMacaroon(['offchain:read', 'offchain:write']) } });
    const issued = invoice();
    assert.equal((await payOnly.pay(payRequest(issued))).status, 'succeeded');
    assert.equal((await payOnly.lookup(issued.paymentHash)).status, 'succeeded');
  });

  test('a server with another certificate is refused before the macaroon is sent', async () => {
    const impostor = await startLndRestDouble({ network });
    extra.push(impostor);
    const pinnedElsewhere = connect({ url: impostor.url, tlsCert: { pem: lnd.certPem } });
    const issued = invoice();
    await rejectsUnavailable(pinnedElsewhere.pay(payRequest(issued)), (e) => assert.match(e.message, /could not reach LND/));
    await rejectsUnavailable(pinnedElsewhere.lookup(issued.paymentHash));
    assert.equal(impostor.requests.length, 0, 'no HTTP request (and so no macaroon) reached the impostor');
    assert.equal(network.attempts.length, 0);
  });

  test("LND's self-signed certificate is pinned exactly, so it is accepted under a name it does not carry", async () => {
    await lnd.close();
    await start({ certificate: makeCertificate({ dnsNames: ['lnd.internal'], ipAddresses: [] }) });
    assert.equal(typeof (await backend.balance()).msat, 'bigint'); // reached as 127.0.0.1
  });

  test('a CA given instead: a certificate it issued must also carry the host name', async () => {
    const ca = makeCertificate({ commonName: 'operator CA' });
    const forLoopback = await startLndRestDouble({ network, certificate: makeCertificate({ issuer: ca, ipAddresses: ['127.0.0.1'] }) });
    const forAnotherName = await startLndRestDouble({ network, certificate: makeCertificate({ issuer: ca, dnsNames: ['lnd.internal'], ipAddresses: [] }) });
    extra.push(forLoopback, forAnotherName);
    assert.equal(typeof (await connect({ tlsCert: { pem: ca.certPem } }, forLoopback).balance()).msat, 'bigint');
    await rejectsUnavailable(connect({ tlsCert: { pem: ca.certPem } }, forAnotherName).balance(), (e) => assert.match(e.message, /does not match certificate|altnames/i));
    assert.equal(forAnotherName.requests.length, 0);
  });

  test('the macaroon and certificate can be files: the binary file lncli writes, or hex text', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'airlock-lnd-'));
    try {
      writeFileSync(join(dir, 'pay.macaroon'), Buffer.from(lnd.adminMacaroonHex, 'hex'));
      writeFileSync(join(dir, 'hex.macaroon'), `${lnd.adminMacaroonHex}\n`);
      writeFileSync(join(dir, 'tls.cert'), lnd.certPem);
      for (const file of ['pay.macaroon', 'hex.macaroon']) {
        const fromFiles = connect({ macaroon: { path: join(dir, file) }, tlsCert: { path: join(dir, 'tls.cert') } });
        assert.equal(typeof (await fromFiles.balance()).msat, 'bigint');
      }
      writeFileSync(join(dir, 'not-a.macaroon'), lnd.certPem);
      assert.throws(() => connect({ macaroon: { path: join(dir, 'not-a.macaroon') } }), isConfigError);
      assert.throws(() => connect({ macaroon: { path: join(dir, 'missing.macaroon') } }), isConfigError);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('configuration that cannot be safe is refused when the backend is built', () => {
    assert.throws(() => connect({ url: lnd.url.replace('https:', 'http:') }), isConfigError);
    assert.throws(() => connect({ url: lnd.url.replace('https://', 'https://user:pw@') }), isConfigError);
    assert.throws(() => connect({ tlsCert: { pem: 'not a certificate' } }), isConfigError);
    assert.throws(() => connect({ macaroon: { hex: 'zz' } }), isConfigError);
    const secret = `02${'ab'.repeat(40)}`;
    assert.throws(() => connect({ macaroon: { hex: `${secret}0` } }), (e: unknown) => isConfigError(e) && !(e as Error).message.includes(secret));
  });
});

describe('the LND REST double answers as lnd does', () => {
  test('TrackPaymentV2 of an unknown hash: 404 and a gRPC NotFound error line', async () => {
    const hash = Buffer.from(randomBytes(32)).toString('base64url');
    const answer = await raw('GET', `/v2/router/track/${hash}=`, lnd.adminMacaroonHex);
    assert.equal(answer.status, 404);
    assert.deepEqual(JSON.parse(answer.body), { error: { code: 5, message: "payment isn't initiated", details: [] } });
  });

  test('a missing macaroon on a unary call: 500 and the bare gRPC status', async () => {
    const answer = await raw('GET', '/v1/balance/channels');
    assert.equal(answer.status, 500);
    assert.deepEqual(JSON.parse(answer.body), { code: 2, message: 'expected 1 macaroon, got 0', details: [] });
  });

  test('SendPaymentV2 streams IN_FLIGHT updates before the final state, and only the final with no_inflight_updates', async () => {
    const first = invoice();
    const streamed = await raw('POST', '/v2/router/send', lnd.adminMacaroonHex, { payment_request: first.invoice, fee_limit_msat: '10000' });
    assert.equal(streamed.status, 200);
    const lines = streamed.body.trim().split('\n').map((l) => JSON.parse(l).result);
    assert.deepEqual(lines.map((p) => p.status), ['IN_FLIGHT', 'IN_FLIGHT', 'SUCCEEDED']);
    assert.equal(lines[2].payment_preimage, first.preimage);
    assert.equal(lines[2].value_msat, String(AMOUNT));
    assert.equal(lines[2].failure_reason, 'FAILURE_REASON_NONE');
    const second = invoice();
    const finalOnly = await raw('POST', '/v2/router/send', lnd.adminMacaroonHex, { payment_request: second.invoice, fee_limit_msat: '10000', no_inflight_updates: true });
    assert.deepEqual(finalOnly.body.trim().split('\n').map((l) => JSON.parse(l).result.status), ['SUCCEEDED']);
    const again = await raw('POST', '/v2/router/send', lnd.adminMacaroonHex, { payment_request: first.invoice, fee_limit_msat: '10000' });
    assert.equal(again.status, 409);
    assert.deepEqual(JSON.parse(again.body), { error: { code: 6, message: 'invoice is already paid', details: [] } });
  });
});

function isConfigError(e: unknown): boolean {
  return e instanceof AirlockError && e.code === 'config_invalid';
}

/** One request to the double, read whole, trusting its certificate. */
function raw(method: string, path: string, macaroonHex?: string, body?: unknown): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(new URL(path, lnd.url), { method, ca: lnd.certPem, headers: macaroonHex ? { 'Grpc-Metadata-macaroon': macaroonHex } : {} }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}
