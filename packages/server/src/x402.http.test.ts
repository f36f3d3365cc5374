// x402 through the real HTTP app: requirement selection, policy for paid APIs, the header a resource
// server reads, and the reservation lifecycle (reserved -> settled / expired) with a fake chain.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { decodePaymentSignatureHeader, encodePaymentRequiredHeader, encodePaymentResponseHeader } from '@x402/core/http';
import { verifyTypedData, type Hex } from 'viem';
import { ALICE, BASE, MALLORY, USDC, USDC_ASSET, provisionAgent, startHarness, type Harness } from './testing/harness.ts';
import { fakeChain } from './testing/fake-chain.ts';

const PROXY = '0x402085c248EeA27D92E8b30b2C58ed07f9E20001';
const PERMIT2 = '0x000000000022D473030F116dDEE9F6B43aC78BA3';
const API = 'https://api.example.com';
const OTHER_API = 'https://data.example.org';

/** A v2 `exact` requirement for USDC on Base (what @x402/express advertises). */
function requirement(over: Record<string, unknown> = {}) {
  return { scheme: 'exact', network: BASE, amount: '1000', asset: USDC, payTo: ALICE, maxTimeoutSeconds: 60, extra: { name: 'USD Coin', version: '2' }, ...over };
}

function paymentRequired(url: string, accepts: Record<string, unknown>[]) {
  return encodePaymentRequiredHeader({ x402Version: 2, error: 'Payment required', resource: { url, description: 'data', mimeType: 'application/json' }, accepts } as never);
}

/** Pays for `agent` as per the agent policy below; extra rules are appended. */
function x402Policy(extra: unknown[] = [], resources: string[] = [`${API}/**`, `${OTHER_API}/**`]) {
  return {
    version: 1,
    rules: [
      { name: 'paid-apis', type: 'allow', match: { chains: [BASE], kinds: ['eip3009.transfer_with_authorization', 'permit2.permit_witness_transfer_from'], to: [ALICE], resources } },
      { name: 'max-price', type: 'max_amount', asset: USDC_ASSET, max: '5000' },
      { name: 'short-lived', type: 'validity_window', max_seconds: 120 },
      ...extra,
    ],
  };
}

async function pay(h: Harness, token: string, url: string, accepts: Record<string, unknown>[], headers: Record<string, string> = {}) {
  return h.call('POST', '/v1/x402/pay', { token, body: { resource: url, paymentRequired: paymentRequired(url, accepts) }, headers });
}

function eip3009Types() {
  return {
    TransferWithAuthorization: [
      { name: 'from', type: 'address' }, { name: 'to', type: 'address' }, { name: 'value', type: 'uint256' },
      { name: 'validAfter', type: 'uint256' }, { name: 'validBefore', type: 'uint256' }, { name: 'nonce', type: 'bytes32' },
    ],
  } as const;
}

/** The reconciler releases a hold only this long (wall clock) past validBefore (the default margin). */
const MARGIN_MS = 300_000;

/**
 * A fake chain: nonces listed in `used` are spent on chain, each by a transfer of what `requirement()` asks
 * (1000 to ALICE); its latest and pinned block times follow `now` (the test clock).
 */
describe('x402 over HTTP', () => {
  let h: Harness;
  const chain = fakeChain();
  before(async () => {
    h = await startHarness({ manualClock: true, chainReader: chain });
    chain.now = () => h.clock!.now();
  });
  after(async () => {
    await h.close();
  });
  const nowSeconds = () => Math.floor(h.clock!.now() / 1000);

  test('v2: the PAYMENT-SIGNATURE header decodes to a payload whose signature verifies for the agent', async () => {
    const { agent, token } = await provisionAgent(h, { policy: x402Policy() });
    const url = `${API}/data/prices?symbol=ETH`;
    const req = requirement();
    const res = await pay(h, token, url, [req]);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.decision, 'allow');
    assert.equal(res.body.header.name, 'PAYMENT-SIGNATURE');
    assert.match(res.body.paymentId, /^pay_[0-9a-f]{16}$/);

    const payload = decodePaymentSignatureHeader(res.body.header.value) as any;
    assert.deepEqual(payload, res.body.payload);
    assert.equal(payload.x402Version, 2);
    assert.deepEqual(payload.accepted, req, 'accepted is the requirement exactly as received');
    assert.equal(payload.resource.url, url);
    const auth = payload.payload.authorization;
    assert.equal(auth.from.toLowerCase(), agent.address);
    assert.equal(auth.to.toLowerCase(), ALICE);
    assert.equal(auth.value, '1000');
    assert.equal(auth.validAfter, '0');
    assert.match(auth.nonce, /^0x[0-9a-f]{64}$/);
    const valid = await verifyTypedData({
      address: agent.address,
      domain: { name: 'USD Coin', version: '2', chainId: 8453, verifyingContract: USDC },
      types: eip3009Types(),
      primaryType: 'TransferWithAuthorization',
      message: { from: auth.from, to: auth.to, value: BigInt(auth.value), validAfter: BigInt(auth.validAfter), validBefore: BigInt(auth.validBefore), nonce: auth.nonce },
      signature: payload.payload.signature as Hex,
    });
    assert.equal(valid, true, 'the signature verifies against the token domain from extra.name/version');

    const listed = await h.admin('GET', `/v1/x402/payments?agent=${agent.name}`);
    assert.equal(listed.body.payments.length, 1);
    const p = listed.body.payments[0];
    assert.equal(p.id, res.body.paymentId);
    assert.equal(p.state, 'reserved');
    assert.equal(p.resource, `${API}/data/prices`, 'the query string is not part of the resource');
    assert.equal(p.origin, API);
    assert.equal(p.nonce, auth.nonce);
    assert.equal(p.value, '1000');
  });

  test('the first ALLOWED requirement is chosen: payTo not allowlisted is passed over', async () => {
    const { token } = await provisionAgent(h, { policy: x402Policy() });
    const res = await pay(h, token, `${API}/data`, [requirement({ payTo: MALLORY }), requirement({ amount: '2000' })]);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.requirementIndex, 1);
    assert.equal(res.body.authorization.value, '2000');
  });

  test('no requirement allowed: 403 lists each one with its violations or skip code, and nothing is reserved', async () => {
    const { agent, token } = await provisionAgent(h, { policy: x402Policy() });
    const res = await pay(h, token, `${API}/data`, [
      requirement({ payTo: MALLORY }),
      requirement({ network: 'solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp' }),
      requirement({ scheme: 'upto' }),
      requirement({ extra: {} }),
      requirement({ extra: { assetTransferMethod: 'permit2', spender: MALLORY } }),
      requirement({ amount: '9000' }),
    ]);
    assert.equal(res.status, 403);
    assert.equal(res.body.decision, 'deny');
    assert.equal(res.body.error.code, 'policy_denied');
    const reqs = res.body.error.requirements;
    assert.deepEqual(reqs.map((r: any) => r.index), [0, 1, 2, 3, 4, 5]);
    assert.equal(reqs[0].violations[0].rule, 'agent/default');
    assert.equal(reqs[0].payTo, MALLORY);
    assert.equal(reqs[1].skipped, 'x402_unsupported_network');
    assert.equal(reqs[2].skipped, 'x402_unsupported_scheme');
    assert.equal(reqs[3].skipped, 'x402_missing_domain');
    assert.equal(reqs[4].skipped, 'x402_invalid_spender');
    assert.deepEqual(reqs[5].violations.map((v: any) => `${v.rule}:${v.code}`), ['agent/max-price:amount_exceeds_max']);
    assert.ok(res.body.error.violations.length >= 2, 'every violation, not only the first');
    const audited = await h.admin('GET', `/v1/audit?agent=${agent.name}&type=x402.pay`);
    assert.equal(audited.body.entries.length, 1);
    assert.equal(audited.body.entries[0].decision, 'deny');
    assert.equal((await h.admin('GET', `/v1/x402/payments?agent=${agent.name}`)).body.payments.length, 0);
  });

  test('a resource outside the allowed patterns is denied with resource_not_allowed', async () => {
    const { token } = await provisionAgent(h, { policy: x402Policy([], [`${API}/data/*`]) });
    assert.equal((await pay(h, token, `${API}/data/one`, [requirement()])).status, 200);
    for (const url of [`${API}/data/one/two`, `${API}/admin`, 'https://evil.example.com/data/one']) {
      const res = await pay(h, token, url, [requirement()]);
      assert.equal(res.status, 403, url);
      assert.deepEqual(res.body.error.violations.map((v: any) => `${v.rule}:${v.code}`), ['agent/paid-apis:resource_not_allowed'], url);
    }
  });

  test('per-origin budget: one origin runs out, another still pays', async () => {
    const { token } = await provisionAgent(h, { policy: x402Policy([{ name: 'per-api', type: 'budget', asset: USDC_ASSET, max: '2500', window: '24h', per_origin: true }]) });
    assert.equal((await pay(h, token, `${API}/a`, [requirement()])).status, 200);
    assert.equal((await pay(h, token, `${API}/b`, [requirement()])).status, 200);
    const third = await pay(h, token, `${API}/c`, [requirement()]);
    assert.equal(third.status, 403);
    assert.deepEqual(third.body.error.violations.map((v: any) => `${v.rule}:${v.code}:${v.used}`), ['agent/per-api:budget_exceeded:2000']);
    assert.match(third.body.error.violations[0].message, /for https:\/\/api\.example\.com/);
    assert.equal((await pay(h, token, `${OTHER_API}/a`, [requirement()])).status, 200, 'another origin has its own budget');
  });

  test('the loop guard trips after N payments to one resource per window and writes alert.loop_guard', async () => {
    const { agent, token } = await provisionAgent(h, { policy: x402Policy([{ name: 'no-loops', type: 'loop_guard', max: 3, window: '1m' }]) });
    for (let i = 0; i < 3; i++) assert.equal((await pay(h, token, `${API}/loop?page=${i}`, [requirement()])).status, 200);
    const tripped = await pay(h, token, `${API}/loop?page=9`, [requirement()]);
    assert.equal(tripped.status, 403);
    assert.deepEqual(tripped.body.error.violations.map((v: any) => `${v.rule}:${v.code}`), ['agent/no-loops:loop_guard_tripped']);
    assert.equal((await pay(h, token, `${API}/elsewhere`, [requirement()])).status, 200, 'other resources are not affected');
    const alerts = await h.admin('GET', `/v1/audit?agent=${agent.name}&type=alert.loop_guard`);
    assert.equal(alerts.body.entries.length, 1);
    assert.equal(alerts.body.entries[0].data.resource, `${API}/loop`);
    h.clock!.advance(61_000);
    // A reserved payment's amount counts in every window while held (it may still settle); its count is a
    // signature made when it was signed, and leaves the window as any does: the guard rolls on a window later,
    // settled or not.
    assert.equal((await pay(h, token, `${API}/loop`, [requirement()])).status, 200, 'the window rolls on while they are still reserved');
    // Settled now, each is counted again at its settlement (a ledger entry is never dated before the series' last
    // time): with the payment just made, the guard trips for this window, and rolls on after it.
    const reserved = (await h.admin('GET', `/v1/x402/payments?agent=${agent.name}&state=reserved`)).body.payments;
    for (const p of reserved) chain.use(p.nonce);
    await h.admin('POST', '/v1/x402/reconcile');
    assert.equal((await pay(h, token, `${API}/loop`, [requirement()])).status, 403, 'settled in this window: counted in it');
    h.clock!.advance(61_000);
    assert.equal((await pay(h, token, `${API}/loop`, [requirement()])).status, 200, 'the window rolls on');
  });

  test('validBefore is clamped to the policy maximum validity (and to maxTimeoutSeconds when shorter)', async () => {
    const { token } = await provisionAgent(h, { policy: x402Policy() });
    const long = await pay(h, token, `${API}/data`, [requirement({ maxTimeoutSeconds: 3600 })]);
    assert.equal(long.status, 200, JSON.stringify(long.body));
    assert.equal(Number(long.body.authorization.validBefore), nowSeconds() + 120);
    const short = await pay(h, token, `${API}/data`, [requirement({ maxTimeoutSeconds: 30 })]);
    assert.equal(Number(short.body.authorization.validBefore), nowSeconds() + 30);
  });

  test('Permit2: only the canonical x402 proxy is signed; any other spender is refused', async () => {
    const { agent, token } = await provisionAgent(h, { policy: x402Policy() });
    const wrong = await pay(h, token, `${API}/data`, [requirement({ extra: { assetTransferMethod: 'permit2', spender: MALLORY } })]);
    assert.equal(wrong.status, 403);
    assert.equal(wrong.body.error.requirements[0].skipped, 'x402_invalid_spender');

    const ok = await pay(h, token, `${API}/data`, [requirement({ extra: { assetTransferMethod: 'permit2' } })]);
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    const payload = decodePaymentSignatureHeader(ok.body.header.value) as any;
    const p2 = payload.payload.permit2Authorization;
    assert.equal(p2.spender, PROXY);
    assert.equal(p2.witness.to.toLowerCase(), ALICE);
    assert.equal(p2.permitted.amount, '1000');
    const valid = await verifyTypedData({
      address: agent.address,
      domain: { name: 'Permit2', chainId: 8453, verifyingContract: PERMIT2 },
      types: {
        PermitWitnessTransferFrom: [
          { name: 'permitted', type: 'TokenPermissions' }, { name: 'spender', type: 'address' }, { name: 'nonce', type: 'uint256' },
          { name: 'deadline', type: 'uint256' }, { name: 'witness', type: 'Witness' },
        ],
        TokenPermissions: [{ name: 'token', type: 'address' }, { name: 'amount', type: 'uint256' }],
        Witness: [{ name: 'to', type: 'address' }, { name: 'validAfter', type: 'uint256' }],
      },
      primaryType: 'PermitWitnessTransferFrom',
      message: {
        permitted: { token: p2.permitted.token, amount: BigInt(p2.permitted.amount) }, spender: p2.spender, nonce: BigInt(p2.nonce),
        deadline: BigInt(p2.deadline), witness: { to: p2.witness.to, validAfter: BigInt(p2.witness.validAfter) },
      },
      signature: payload.payload.signature as Hex,
    });
    assert.equal(valid, true);
  });

  test('v1: a 402 body gives an X-PAYMENT header with {x402Version:1, scheme, network, payload}', async () => {
    const { agent, token } = await provisionAgent(h, { policy: x402Policy() });
    const accepts = [{ scheme: 'exact', network: 'base', maxAmountRequired: '1500', resource: `${API}/v1`, description: 'd', mimeType: 'application/json', payTo: ALICE, maxTimeoutSeconds: 60, asset: USDC, extra: { name: 'USD Coin', version: '2' } }];
    const res = await h.call('POST', '/v1/x402/pay', { token, body: { resource: `${API}/v1`, body: { x402Version: 1, error: 'X-PAYMENT header is required', accepts } } });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.header.name, 'X-PAYMENT');
    const decoded = decodePaymentSignatureHeader(res.body.header.value) as any;
    assert.deepEqual(Object.keys(decoded).sort(), ['network', 'payload', 'scheme', 'x402Version']);
    assert.equal(decoded.x402Version, 1);
    assert.equal(decoded.network, 'base');
    assert.equal(decoded.payload.authorization.value, '1500');
    assert.equal(decoded.payload.authorization.from.toLowerCase(), agent.address);

    const v2body = await h.call('POST', '/v1/x402/pay', { token, body: { resource: `${API}/v1`, body: { x402Version: 2, accepts } } });
    assert.equal(v2body.status, 400, 'v2 requirements travel in the header, not the body');
    const garbage = await h.call('POST', '/v1/x402/pay', { token, body: { resource: `${API}/v1`, paymentRequired: '%%%not-base64' } });
    assert.equal(garbage.status, 400);
    const both = await h.call('POST', '/v1/x402/pay', { token, body: { resource: `${API}/v1`, paymentRequired: paymentRequired(API, [requirement()]), body: { x402Version: 1, accepts } } });
    assert.equal(both.status, 400);
  });

  test('the same EIP-3009 typed data through /v1/sign/typed-data gets the same decision and a payment record', async () => {
    const { agent, token } = await provisionAgent(h, { policy: x402Policy([], [`${API}/data/*`]) });
    const typedData = (nonce: string, to = ALICE) => ({
      domain: { name: 'USD Coin', version: '2', chainId: 8453, verifyingContract: USDC },
      types: eip3009Types(),
      primaryType: 'TransferWithAuthorization',
      message: { from: agent.address, to, value: '1000', validAfter: '0', validBefore: String(nowSeconds() + 60), nonce },
    });
    const withResource = await h.call('POST', '/v1/sign/typed-data', { token, body: { typedData: typedData(`0x${'01'.repeat(32)}`), x402: { resource: `${API}/data/x` } } });
    assert.equal(withResource.status, 200, JSON.stringify(withResource.body));
    assert.match(withResource.body.paymentId, /^pay_/);
    const outside = await h.call('POST', '/v1/sign/typed-data', { token, body: { typedData: typedData(`0x${'02'.repeat(32)}`), x402: { resource: `${API}/admin` } } });
    assert.equal(outside.status, 403);
    assert.equal(outside.body.error.violations[0].code, 'resource_not_allowed');
    const noResource = await h.call('POST', '/v1/sign/typed-data', { token, body: { typedData: typedData(`0x${'03'.repeat(32)}`) } });
    assert.equal(noResource.status, 403, 'a rule that requires a resource does not match a payment that names none (fail closed)');
    assert.equal(noResource.body.error.violations[0].code, 'resource_not_allowed');
    const toMallory = await h.call('POST', '/v1/sign/typed-data', { token, body: { typedData: typedData(`0x${'04'.repeat(32)}`, MALLORY), x402: { resource: `${API}/data/x` } } });
    assert.equal(toMallory.status, 403, 'payTo allowlist on the generic path too');

    const payments = (await h.admin('GET', `/v1/x402/payments?agent=${agent.name}`)).body.payments;
    assert.deepEqual(payments.map((p: any) => p.id), [withResource.body.paymentId]);
    assert.equal(payments[0].resource, `${API}/data/x`);

    // A policy without resource patterns: the generic path without a resource is a payment all the same.
    const plain = await provisionAgent(h, { policy: { version: 1, rules: [{ name: 'usdc', type: 'allow', match: { kinds: ['eip3009.transfer_with_authorization'], to: [ALICE] } }] } });
    const generic = await h.call('POST', '/v1/sign/typed-data', {
      token: plain.token,
      body: { typedData: { ...typedData(`0x${'05'.repeat(32)}`), message: { ...typedData(`0x${'05'.repeat(32)}`).message, from: plain.agent.address } } },
    });
    assert.equal(generic.status, 200, JSON.stringify(generic.body));
    const record = (await h.admin('GET', `/v1/x402/payments?agent=${plain.agent.name}`)).body.payments[0];
    assert.equal(record.id, generic.body.paymentId);
    assert.equal(record.state, 'reserved');
    assert.equal(record.resource, undefined);
  });

  test('an idempotent retry of /v1/x402/pay returns the same header (same nonce) and reserves once', async () => {
    const { agent, token } = await provisionAgent(h, { policy: x402Policy() });
    const first = await pay(h, token, `${API}/data`, [requirement()], { 'idempotency-key': 'order-42' });
    const again = await pay(h, token, `${API}/data`, [requirement()], { 'idempotency-key': 'order-42' });
    assert.equal(first.status, 200);
    assert.equal(again.status, 200);
    assert.equal(again.body.header.value, first.body.header.value);
    assert.equal(again.body.authorization.nonce, first.body.authorization.nonce);
    assert.equal(again.body.paymentId, first.body.paymentId);
    assert.equal((await h.admin('GET', `/v1/x402/payments?agent=${agent.name}`)).body.payments.length, 1);
    const other = await pay(h, token, `${API}/other`, [requirement()], { 'idempotency-key': 'order-42' });
    assert.equal(other.status, 409, 'the same key for another request is a conflict');
    assert.equal(other.body.error.code, 'idempotency_conflict');
  });

  test('settlement report links the transaction to the payment in the audit log', async () => {
    const { agent, token } = await provisionAgent(h, { policy: x402Policy() });
    const paid = await pay(h, token, `${API}/data`, [requirement()]);
    const txHash = `0x${'ab'.repeat(32)}`;
    const paymentResponse = encodePaymentResponseHeader({ success: true, transaction: txHash, network: BASE, payer: agent.address } as never);
    const res = await h.call('POST', '/v1/x402/settlement', { token, body: { paymentId: paid.body.paymentId, paymentResponse } });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(res.body, { paymentId: paid.body.paymentId, state: 'reserved', transaction: txHash });
    const byNonce = await h.call('POST', '/v1/x402/settlement', { token, body: { nonce: paid.body.authorization.nonce, paymentResponse } });
    assert.equal(byNonce.body.paymentId, paid.body.paymentId);
    const entries = (await h.admin('GET', `/v1/audit?agent=${agent.name}&type=x402.settlement_reported`)).body.entries;
    assert.equal(entries[0].data.paymentId, paid.body.paymentId);
    assert.equal(entries[0].data.transaction, txHash);
    const stranger = await provisionAgent(h, { policy: x402Policy() });
    const foreign = await h.call('POST', '/v1/x402/settlement', { token: stranger.token, body: { paymentId: paid.body.paymentId, paymentResponse } });
    assert.equal(foreign.status, 404, "another agent's payment does not exist for it");
  });

  // Found by review: the base64 headers skipped the body's lone-surrogate check (a held payment's requirement
  // with one answered 500 on PostgreSQL), and a reported errorReason cut at 200 units could split an emoji.
  test('headers with a string that is not well-formed Unicode are refused invalid_request; a long errorReason is cut whole', async () => {
    const { agent, token } = await provisionAgent(h, { policy: x402Policy() });
    const lone = await pay(h, token, `${API}/lone`, [requirement({ extra: { name: 'USD Coin\ud800', version: '2' } })]);
    assert.equal(lone.status, 400, JSON.stringify(lone.body));
    assert.equal(lone.body.error.code, 'invalid_request');
    assert.match(lone.body.error.message, /paymentRequired header has a string that is not well-formed Unicode/);
    assert.equal((await h.admin('GET', `/v1/x402/payments?agent=${agent.name}`)).body.payments.length, 0, 'nothing planned or signed');

    const paid = await pay(h, token, `${API}/data`, [requirement()]);
    assert.equal(paid.status, 200);
    const report = (errorReason: string) => h.call('POST', '/v1/x402/settlement', { token, body: { paymentId: paid.body.paymentId, paymentResponse: encodePaymentResponseHeader({ success: false, errorReason, network: BASE } as never) } });
    const refused = await report('insufficient\ud800');
    assert.equal(refused.status, 400, JSON.stringify(refused.body));
    assert.equal(refused.body.error.code, 'invalid_request');
    assert.equal((await h.admin('GET', `/v1/audit?agent=${agent.name}&type=x402.settlement_reported`)).body.entries.length, 0);
    assert.equal((await report(`${'a'.repeat(199)}\u{1F600}tail`)).status, 200);
    const [entry] = (await h.admin('GET', `/v1/audit?agent=${agent.name}&type=x402.settlement_reported`)).body.entries;
    assert.equal(entry.data.errorReason, 'a'.repeat(199), 'cut before the emoji, not through it');
  });

  test('a requirement asking more than uint256 is skipped, not fatal: the valid one after it is paid', async () => {
    const { token } = await provisionAgent(h, { policy: x402Policy() });
    const res = await pay(h, token, `${API}/huge`, [requirement({ amount: '9'.repeat(78) }), requirement()]);
    assert.equal(res.status, 200, JSON.stringify(res.body).slice(0, 300));
    assert.equal((decodePaymentSignatureHeader(res.body.header.value) as any).accepted.amount, '1000');
  });

  test('reconciler: settled converts (budget stays used), expired releases (budget freed); summary shows both', async () => {
    const { agent, token } = await provisionAgent(h, { policy: x402Policy([{ name: 'daily', type: 'budget', asset: USDC_ASSET, max: '2000', window: '24h' }]) });
    const a = await pay(h, token, `${API}/a`, [requirement()]);
    const b = await pay(h, token, `${OTHER_API}/b`, [requirement()]);
    assert.equal(a.status, 200);
    assert.equal(b.status, 200);
    assert.equal((await pay(h, token, `${API}/c`, [requirement()])).status, 403, 'both reservations count');

    chain.use(a.body.authorization.nonce);
    h.clock!.advance(10_000);
    let r = await h.admin('POST', '/v1/x402/reconcile');
    assert.equal(r.status, 200);
    assert.ok(r.body.settled >= 1);
    const states = async () => Object.fromEntries((await h.admin('GET', `/v1/x402/payments?agent=${agent.name}`)).body.payments.map((p: any) => [p.id, p.state]));
    assert.deepEqual(await states(), { [a.body.paymentId]: 'settled', [b.body.paymentId]: 'reserved' }, 'b is still valid: it stays reserved');
    assert.equal((await pay(h, token, `${API}/c`, [requirement()])).status, 403, 'settled spend stays charged');

    h.clock!.advance(120_000 + MARGIN_MS); // both clocks past b's validBefore + margin, still unused on chain
    r = await h.admin('POST', '/v1/x402/reconcile');
    assert.ok(r.body.expired >= 1);
    assert.deepEqual(await states(), { [a.body.paymentId]: 'settled', [b.body.paymentId]: 'expired' });
    const c = await pay(h, token, `${API}/c`, [requirement()]);
    assert.equal(c.status, 200, 'the expired authorization released its reservation');

    const audit = (await h.admin('GET', `/v1/audit?agent=${agent.name}&type=x402.expired`)).body.entries;
    assert.equal(audit[0].data.paymentId, b.body.paymentId);
    const summary = (await h.admin('GET', `/v1/x402/summary?agent=${agent.name}`)).body;
    const row = (origin: string) => summary.rows.find((x: any) => x.origin === origin);
    assert.deepEqual([row(API).reserved, row(API).settled, row(API).released], ['1000', '1000', '0']);
    assert.deepEqual([row(OTHER_API).reserved, row(OTHER_API).settled, row(OTHER_API).released], ['0', '0', '1000']);
    assert.deepEqual(summary.agents.map((x: any) => [x.agentName, x.asset, x.reserved, x.settled, x.released]), [[agent.name, USDC_ASSET, '1000', '1000', '1000']]);
  });
});

describe('x402 approvals and PostgreSQL', () => {
  test('above the approval tier the payment waits for a human; once approved the approval carries the header', async () => {
    const chain = fakeChain();
    const h = await startHarness({ manualClock: true, chainReader: chain });
    chain.now = () => h.clock!.now();
    try {
      const { agent, token } = await provisionAgent(h, { policy: x402Policy([{ name: 'big-needs-human', type: 'approval_tier', asset: USDC_ASSET, above: '2000' }]) });
      const url = `${API}/report`;
      const pending = await pay(h, token, url, [requirement({ amount: '3000' })]);
      assert.equal(pending.status, 202, JSON.stringify(pending.body));
      assert.equal(pending.body.decision, 'require_approval');
      assert.equal(pending.body.requirementIndex, 0);
      const approved = await h.admin('POST', `/v1/approvals/${pending.body.approvalId}/approve`);
      assert.equal(approved.status, 200, JSON.stringify(approved.body));
      const seen = await h.call('GET', `/v1/approvals/${pending.body.approvalId}`, { token });
      const x = seen.body.result.x402;
      assert.equal(x.header.name, 'PAYMENT-SIGNATURE');
      const payload = decodePaymentSignatureHeader(x.header.value) as any;
      assert.equal(payload.payload.signature, seen.body.result.signature);
      assert.equal(payload.payload.authorization.value, '3000');
      assert.equal(payload.resource.url, url);
      assert.equal(payload.payload.authorization.from.toLowerCase(), agent.address);

      // The approved payment keeps the payment lifecycle: recorded and held, then expired by the reconciler
      // when the chain passes validBefore without using it, which frees the budget again.
      const payments = (await h.admin('GET', `/v1/x402/payments?agent=${agent.name}`)).body.payments;
      assert.deepEqual(payments.map((p: any) => [p.id, p.state, p.value]), [[x.paymentId, 'reserved', '3000']]);
      h.clock!.advance(3_600_000);
      const r = (await h.admin('POST', '/v1/x402/reconcile')).body;
      assert.equal(r.expired, 1);
      assert.equal((await h.admin('GET', `/v1/x402/payments?agent=${agent.name}`)).body.payments[0].state, 'expired');
    } finally {
      await h.close();
    }
  });

  test('PostgreSQL: pay, per-origin budget, reconcile (settled and expired) and summary', async () => {
    const chain = fakeChain();
    const h = await startHarness({ store: 'postgres', manualClock: true, chainReader: chain });
    chain.now = () => h.clock!.now();
    try {
      const { agent, token } = await provisionAgent(h, { policy: x402Policy([{ name: 'per-api', type: 'budget', asset: USDC_ASSET, max: '2000', window: '24h', per_origin: true }]) });
      const a = await pay(h, token, `${API}/a`, [requirement()]);
      const b = await pay(h, token, `${API}/b`, [requirement()]);
      assert.equal(a.status, 200, JSON.stringify(a.body));
      assert.equal(b.status, 200);
      assert.equal((await pay(h, token, `${API}/c`, [requirement()])).status, 403);
      chain.use(a.body.authorization.nonce);
      h.clock!.advance(120_000 + MARGIN_MS);
      assert.deepEqual((await h.admin('POST', '/v1/x402/reconcile')).body, { checked: 2, settled: 1, expired: 1, assumedSettled: 0, errors: 0, alerts: 0, disagreements: 0 });
      assert.equal((await pay(h, token, `${API}/c`, [requirement()])).status, 200, 'the expired one released its hold');
      const summary = (await h.admin('GET', `/v1/x402/summary?agent=${agent.name}`)).body;
      assert.deepEqual(summary.rows.map((r: any) => [r.origin, r.reserved, r.settled, r.released, r.count]), [[API, '1000', '1000', '1000', 3]]);
    } finally {
      await h.close();
    }
  });
});

describe('x402 reconciler without an RPC', () => {
  test('a payment on a network with no RPC is converted at validBefore as assumed settled, never released', async () => {
    const h = await startHarness({ manualClock: true });
    try {
      const { agent, token } = await provisionAgent(h, { policy: x402Policy([{ name: 'daily', type: 'budget', asset: USDC_ASSET, max: '1000', window: '24h' }]) });
      const paid = await pay(h, token, `${API}/a`, [requirement()]);
      assert.equal(paid.status, 200);
      assert.deepEqual((await h.admin('POST', '/v1/x402/reconcile')).body, { checked: 1, settled: 0, expired: 0, assumedSettled: 0, errors: 0, alerts: 0, disagreements: 0 });
      h.clock!.advance(61_000);
      assert.deepEqual((await h.admin('POST', '/v1/x402/reconcile')).body, { checked: 1, settled: 1, expired: 0, assumedSettled: 1, errors: 0, alerts: 0, disagreements: 0 });
      const [p] = (await h.admin('GET', `/v1/x402/payments?agent=${agent.name}`)).body.payments;
      assert.equal(p.state, 'settled');
      assert.equal(p.settlementTx, 'assumed');
      const settled = (await h.admin('GET', `/v1/audit?agent=${agent.name}&type=x402.settled`)).body.entries;
      assert.equal(settled[0].data.evidence, 'assumed_no_rpc');
      assert.equal((await pay(h, token, `${API}/b`, [requirement()])).status, 403, 'the budget stays used');
    } finally {
      await h.close();
    }
  });
});
