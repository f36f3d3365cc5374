// Nostr Wallet Connect as Airlock meets it: NwcBackend (the NIP-47 client) against a wallet service built on
// @getalby/sdk's NWCWalletService (testing/nwc-wallet-service), over a NIP-01 relay on loopback, paying through
// the simulated Lightning network. Forged responses are built by hand with nostr-tools.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { createHash } from 'node:crypto';
import { AirlockError } from '@airlock/core';
import { schnorr } from '@noble/curves/secp256k1.js';
import { bytesToHex, hexToBytes, randomBytes } from '@noble/hashes/utils.js';
import { finalizeEvent, generateSecretKey, getEventHash, nip44, type Event } from 'nostr-tools';
import { LightningNetwork } from '../../../../testing/lightning-network.ts';
import { startTestRelay, type NostrEvent, type TestRelay } from '../../../../testing/nostr-relay/relay.ts';
import { TestWalletService, type TestWalletServiceOptions } from '../../../../testing/nwc-wallet-service/wallet-service.ts';
import { NwcBackend, type NwcBackendOptions } from './nwc-client.ts';
import { confirmedOutcome, confirmedRefusal, judgeLookupReply, judgePayReply } from './nwc-outcomes.ts';
import { parseNwcUri } from './nwc-uri.ts';

// ---------------------------------------------------------------------------------------------------------------
// The connection string
// ---------------------------------------------------------------------------------------------------------------

// NIP-47's example connection string.
const SPEC_WALLET = 'b889ff5b1513b641e2a139f661a661364979c5beee91842f8f0ef42ab558e9d4';
const SPEC_SECRET = '71a8c14c1407c113601079c4302dab36460f0ccd0ad506f1f2dc73b5100e4f3c';
const SPEC_URI = `nostr+walletconnect://${SPEC_WALLET}?relay=wss%3A%2F%2Frelay.damus.io&secret=${SPEC_SECRET}`;

describe('parseNwcUri', () => {
  test("reads NIP-47's example: wallet key, relay, and the client key derived from the secret", () => {
    const c = parseNwcUri(SPEC_URI);
    assert.equal(c.walletPubkey, SPEC_WALLET);
    assert.deepEqual(c.relays, ['wss://relay.damus.io/']);
    assert.equal(c.clientPubkey, bytesToHex(schnorr.getPublicKey(hexToBytes(SPEC_SECRET))));
    assert.equal(c.lud16, undefined);
  });

  test('several relays (duplicates once), a lightning address, upper-case hex', () => {
    const c = parseNwcUri(`nostr+walletconnect://${SPEC_WALLET.toUpperCase()}?relay=wss://a.example&relay=wss://b.example/nwc&relay=wss://a.example&secret=${SPEC_SECRET.toUpperCase()}&lud16=alice%40example.com`);
    assert.equal(c.walletPubkey, SPEC_WALLET);
    assert.deepEqual(c.relays, ['wss://a.example/', 'wss://b.example/nwc']);
    assert.equal(c.clientPubkey, parseNwcUri(SPEC_URI).clientPubkey);
    assert.equal(c.lud16, 'alice@example.com');
  });

  test('the secret shows nowhere: not in JSON, util.inspect or String()', () => {
    const c = parseNwcUri(SPEC_URI);
    for (const shown of [JSON.stringify(c), inspect(c, { depth: 5, showHidden: true }), String(c), `${c}`]) {
      assert.ok(!shown.includes(SPEC_SECRET), shown);
      assert.ok(shown.includes(SPEC_WALLET), shown);
    }
    assert.match(String(c), /secret=\(redacted\)/);
  });

  test('the conversation key is NIP-44 get_conversation_key (cross-checked with nostr-tools)', () => {
    const c = parseNwcUri(SPEC_URI);
    assert.equal(bytesToHex(c.conversationKey()), bytesToHex(nip44.getConversationKey(hexToBytes(SPEC_SECRET), SPEC_WALLET)));
  });

  const good = (query: string) => `nostr+walletconnect://${SPEC_WALLET}?${query}`;
  const refusals: [string, string, RegExp][] = [
    ['another scheme', `nostrconnect://${SPEC_WALLET}?relay=wss://r.example&secret=${SPEC_SECRET}`, /must start with nostr\+walletconnect:\/\//],
    ['a short wallet key', `nostr+walletconnect://${SPEC_WALLET.slice(1)}?relay=wss://r.example&secret=${SPEC_SECRET}`, /wallet service public key .* 64 hex/],
    ['a wallet key that is no curve point', `nostr+walletconnect://${'f'.repeat(64)}?relay=wss://r.example&secret=${SPEC_SECRET}`, /not a point on secp256k1/],
    ['a space where Node’s URL parser would throw with the input attached', `nostr+walletconnect://${SPEC_WALLET} x?relay=wss://r.example&secret=${SPEC_SECRET}`, /64 hex/],
    ['no relay', good(`secret=${SPEC_SECRET}`), /at least one relay/],
    ['an https relay', good(`relay=https://r.example&secret=${SPEC_SECRET}`), /relay 1 must be a wss:\/\/ URL/],
    ['a relay that is no URL', good(`relay=wss://r.example&relay=not%20a%20url&secret=${SPEC_SECRET}`), /relay 2 is not a URL/],
    ['plain ws:// to a remote host', good(`relay=ws://r.example&secret=${SPEC_SECRET}`), /plain ws:\/\/ on a non-loopback host/],
    ['credentials in a relay URL', good(`relay=wss://user:pw@r.example&secret=${SPEC_SECRET}`), /user name or password/],
    ['no secret', good('relay=wss://r.example'), /needs a secret=/],
    ['two secrets', good(`relay=wss://r.example&secret=${SPEC_SECRET}&secret=${SPEC_SECRET}`), /more than one secret=/],
    ['a short secret', good(`relay=wss://r.example&secret=${SPEC_SECRET.slice(2)}`), /secret must be 64 hex/],
    ['a secret that is not hex', good(`relay=wss://r.example&secret=${SPEC_SECRET.slice(1)}z`), /secret must be 64 hex/],
    ['a zero secret', good(`relay=wss://r.example&secret=${'0'.repeat(64)}`), /not a valid secp256k1 private key/],
    ['a secret equal to the group order', good(`relay=wss://r.example&secret=fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141`), /not a valid secp256k1 private key/],
    ['a fragment', `${SPEC_URI}#x`, /fragment/],
    ['a malformed lud16', good(`relay=wss://r.example&secret=${SPEC_SECRET}&lud16=alice`), /lightning address/],
  ];
  for (const [what, uri, message] of refusals) {
    test(`refuses ${what}, and the error never shows the secret`, () => {
      const error = catchError(() => parseNwcUri(uri));
      assert.ok(error instanceof AirlockError);
      assert.equal(error.code, 'config_invalid');
      assert.match(error.message, message);
      assert.equal(error.cause, undefined);
      for (const shown of [error.message, ...error.hints, inspect(error, { depth: 5 }), JSON.stringify(error)]) {
        assert.ok(!shown.includes(SPEC_SECRET.slice(2, 40)), `secret in: ${shown}`);
      }
    });
  }

  test('plain ws:// is accepted on loopback, and elsewhere only when explicitly allowed', () => {
    assert.deepEqual(parseNwcUri(good(`relay=ws://127.0.0.1:7000&relay=ws://[::1]:7000&relay=ws://localhost:7000&secret=${SPEC_SECRET}`)).relays.length, 3);
    assert.deepEqual(parseNwcUri(good(`relay=ws://relay.lan&secret=${SPEC_SECRET}`), { allowInsecureRelays: true }).relays, ['ws://relay.lan/']);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// NIP-47 answers -> payment status: the rows of nwc-outcomes.ts's table the wallet double never sends
// ---------------------------------------------------------------------------------------------------------------

describe('NIP-47 answers -> payment status', () => {
  const preimage = bytesToHex(randomBytes(32));
  const hash = createHash('sha256').update(Buffer.from(preimage, 'hex')).digest('hex');
  const payError = (code: string) => ({ resultType: 'pay_invoice', error: { code, message: '' } });
  const found = (result: Record<string, unknown>) => ({ resultType: 'lookup_invoice', result });

  test('pay_invoice: refusals are final, PAYMENT_FAILED / INTERNAL / OTHER / unknown codes and silence are confirmed by lookup', () => {
    for (const code of ['RATE_LIMITED', 'NOT_IMPLEMENTED', 'INSUFFICIENT_BALANCE', 'QUOTA_EXCEEDED', 'RESTRICTED', 'UNAUTHORIZED', 'UNSUPPORTED_ENCRYPTION']) {
      assert.deepEqual(judgePayReply(payError(code), hash), { kind: 'refused', status: { status: 'failed', reason: code.toLowerCase() } });
    }
    for (const code of ['PAYMENT_FAILED', 'INTERNAL', 'OTHER', 'NOT_FOUND', 'SOMETHING_NEW']) assert.equal(judgePayReply(payError(code), hash).kind, 'confirm', code);
    assert.equal(judgePayReply(undefined, hash).kind, 'confirm');
  });

  test('pay_invoice: a success needs its preimage; without fees_paid the fee is still to be learnt', () => {
    assert.deepEqual(judgePayReply({ resultType: 'pay_invoice', result: { preimage, fees_paid: 7 } }, hash), { kind: 'paid', status: { status: 'succeeded', preimage, feeMsat: 7n } });
    assert.deepEqual(judgePayReply({ resultType: 'pay_invoice', result: { preimage: preimage.toUpperCase() } }, hash), { kind: 'paid_fee_unknown', preimage });
    assert.equal(judgePayReply({ resultType: 'pay_invoice', result: { fees_paid: 7 } }, hash).kind, 'confirm');
    assert.equal(judgePayReply({ resultType: 'pay_invoice', result: { preimage: bytesToHex(randomBytes(32)), fees_paid: 7 } }, hash).kind, 'confirm');
    assert.deepEqual(judgePayReply({ resultType: 'pay_invoice', result: { preimage, fees_paid: -1 } }, hash), { kind: 'paid_fee_unknown', preimage });
  });

  test('lookup_invoice: states', () => {
    const paid = { preimage, payment_hash: hash, fees_paid: 5, amount: 1_000 };
    assert.deepEqual(judgeLookupReply(found({ ...paid, type: 'outgoing', state: 'settled' }), hash), { status: 'succeeded', preimage, feeMsat: 5n, amountMsat: 1_000n });
    assert.deepEqual(judgeLookupReply(found({ type: 'outgoing', state: 'failed' }), hash), { status: 'failed', reason: 'payment_failed' });
    assert.deepEqual(judgeLookupReply(found({ state: 'expired' }), hash), { status: 'failed', reason: 'expired' });
    assert.deepEqual(judgeLookupReply(found({ state: 'pending' }), hash), { status: 'in_flight' });
    assert.deepEqual(judgeLookupReply(found({ state: 'accepted' }), hash), { status: 'in_flight' });
    assert.deepEqual(judgeLookupReply(found(paid), hash), { status: 'succeeded', preimage, feeMsat: 5n, amountMsat: 1_000n }, 'no state, but a matching preimage');
    assert.deepEqual(judgeLookupReply(found({ payment_hash: hash }), hash), { status: 'in_flight' }, 'no state, no preimage');
    assert.deepEqual(judgeLookupReply({ resultType: 'lookup_invoice', error: { code: 'NOT_FOUND', message: '' } }, hash), { status: 'not_found' });
    // `fees_paid` is optional in NIP-47: settled without it is paid, the fee unknown (the service charges its floor).
    assert.deepEqual(judgeLookupReply(found({ state: 'settled', preimage }), hash), { status: 'succeeded', preimage, feeMsat: 0n, feeUnreported: true });
  });

  test('lookup_invoice: what cannot be vouched for throws (the hold stays)', () => {
    const cases: [string, Parameters<typeof judgeLookupReply>[0]][] = [
      ['no answer', undefined],
      ['another error', { resultType: 'lookup_invoice', error: { code: 'INTERNAL', message: '' } }],
      ['another hash', found({ payment_hash: bytesToHex(randomBytes(32)), state: 'failed' })],
      ['a hash that is not a string', found({ payment_hash: { toString: 1 }, state: 'failed' })],
      ['a hash that is a number', found({ payment_hash: 42, state: 'failed' })],
      ['an incoming invoice', found({ type: 'incoming', state: 'settled', preimage, fees_paid: 0 })],
      ['settled without a preimage', found({ state: 'settled', fees_paid: 0 })],
      ['settled with a wrong preimage', found({ state: 'settled', preimage: bytesToHex(randomBytes(32)), fees_paid: 0 })],
      ['an unknown state', found({ state: 'refunded' })],
    ];
    for (const [what, reply] of cases) assert.throws(() => judgeLookupReply(reply, hash), AirlockError, what);
  });

  test('a refusal the lookup shows neither paid nor in flight is a failure believed after the grace (another copy may still arrive); a lookup without an answer confirms nothing', () => {
    const refusal = { status: 'failed' as const, reason: 'insufficient_balance' };
    for (const looked of [{ status: 'not_found' as const }, { status: 'failed' as const, reason: 'payment_failed' }]) assert.deepEqual(confirmedRefusal(refusal, looked), { ...refusal, evidence: 'lookup' });
    assert.deepEqual(confirmedRefusal(refusal, undefined), { status: 'in_flight' });
    assert.deepEqual(confirmedRefusal(refusal, { status: 'in_flight' }), { status: 'in_flight' });
    assert.deepEqual(confirmedRefusal(refusal, { status: 'succeeded', preimage, feeMsat: 1n }), { status: 'succeeded', preimage, feeMsat: 1n });
  });

  test('confirming after an ambiguous pay answer: only settled or failed records are definite', () => {
    assert.deepEqual(confirmedOutcome({ status: 'not_found' }), { status: 'in_flight' });
    assert.deepEqual(confirmedOutcome(undefined), { status: 'in_flight' });
    assert.deepEqual(confirmedOutcome({ status: 'in_flight' }), { status: 'in_flight' });
    // A failed record may be an earlier attempt's, or this copy's while another relay's copy is still to be taken up:
    // marked as read, believed by the service after the grace.
    assert.deepEqual(confirmedOutcome({ status: 'failed', reason: 'payment_failed' }), { status: 'failed', reason: 'payment_failed', evidence: 'lookup' });
  });
});

// ---------------------------------------------------------------------------------------------------------------
// The backend against a wallet service
// ---------------------------------------------------------------------------------------------------------------

interface World {
  relay: TestRelay;
  lightning: LightningNetwork;
  payee: ReturnType<LightningNetwork['payee']>;
  wallet: TestWalletService;
  backend: NwcBackend;
}

const worlds: (() => Promise<void>)[] = [];
after(async () => {
  for (const close of worlds.reverse()) await close();
});

const BACKEND_TIMEOUTS = { infoTimeoutMs: 3_000, requestTimeoutMs: 5_000, payGraceMs: 1_000 } satisfies Partial<NwcBackendOptions>;

async function startWallet(options: Partial<TestWalletServiceOptions> = {}): Promise<Omit<World, 'backend'>> {
  const relay = await startTestRelay();
  const lightning = new LightningNetwork();
  const wallet = await TestWalletService.start({ relay, lightning, ...options });
  worlds.push(async () => {
    wallet.close();
    await relay.close();
  });
  return { relay, lightning, payee: lightning.payee(), wallet };
}

async function world(walletOptions: Partial<TestWalletServiceOptions> = {}): Promise<World> {
  const parts = await startWallet(walletOptions);
  const backend = await NwcBackend.connect({ connectionUri: parts.wallet.uri, network: 'regtest', ...BACKEND_TIMEOUTS });
  worlds.push(() => backend.close());
  return { ...parts, backend };
}

const payRequest = (issued: { invoice: string; paymentHash: string }, extra: { amountMsat?: bigint; timeoutSeconds?: number } = {}) => ({
  invoice: issued.invoice,
  paymentHash: issued.paymentHash,
  maxFeeMsat: 50_000n,
  timeoutSeconds: 10,
  ...extra,
});

describe('NwcBackend: paying through an @getalby/sdk wallet service', () => {
  test('pays: the preimage hashes to the payment hash, the fee is what the wallet paid, the request was NIP-44 over kind 23194', async () => {
    const { backend, wallet, payee, lightning, relay } = await world();
    const before = wallet.balanceMsat;
    const issued = payee.invoice({ amountMsat: 50_000n });
    // pay() reads the clock twice, in whole seconds: for the expiration tag, then (after encrypting the request,
    // under a millisecond warm, a few cold) for created_at. A second that ends between the two reads makes the tag one
    // second short of created_at + 10 below (about once in 500 runs of this file): pay early in a second.
    const intoSecond = Date.now() % 1000;
    if (intoSecond > 500) await new Promise((r) => setTimeout(r, 1000 - intoSecond + 20));
    const status = await backend.pay(payRequest(issued));

    assert.equal(status.status, 'succeeded');
    if (status.status !== 'succeeded') return;
    assert.equal(createHash('sha256').update(Buffer.from(status.preimage, 'hex')).digest('hex'), issued.paymentHash);
    assert.equal(status.preimage, issued.preimage);
    assert.equal(status.feeMsat, lightning.feeFor(50_000n));
    assert.ok(lightning.isPaid(issued.paymentHash));
    assert.equal(wallet.balanceMsat, before - 50_000n - status.feeMsat);
    assert.deepEqual(wallet.received.find((r) => r.method === 'pay_invoice')?.params, { invoice: issued.invoice });

    const request = await requestOnRelay(relay, wallet, 'pay_invoice');
    assert.equal(tag(request, 'p'), wallet.walletPubkey);
    assert.equal(tag(request, 'encryption'), 'nip44_v2');
    assert.ok(Number(tag(request, 'expiration')) >= request.created_at + 10, 'expires when Airlock stops waiting');
    assert.ok(!request.content.includes(issued.invoice), 'the invoice travels encrypted');
  });

  test('an amountless invoice is paid for the amount given (msat, as `amount`)', async () => {
    const { backend, wallet, payee, lightning } = await world();
    const issued = payee.invoice();
    const status = await backend.pay(payRequest(issued, { amountMsat: 21_000n }));
    assert.equal(status.status, 'succeeded');
    assert.deepEqual(wallet.received.find((r) => r.method === 'pay_invoice')?.params, { invoice: issued.invoice, amount: 21_000 });
    assert.equal(wallet.payments.get(issued.paymentHash)?.amountMsat, 21_000n);
    if (status.status === 'succeeded') assert.equal(status.feeMsat, lightning.feeFor(21_000n));
  });

  test('INSUFFICIENT_BALANCE is a failure read as a lookup\'s (believed after the grace): nothing was routed, the balance is untouched', async () => {
    const { backend, wallet, payee, lightning } = await world({ balanceMsat: 30_000n });
    const issued = payee.invoice({ amountMsat: 50_000n });
    assert.deepEqual(await backend.pay(payRequest(issued)), { status: 'failed', reason: 'insufficient_balance', evidence: 'lookup' });
    assert.deepEqual(lightning.attempts, []);
    assert.equal(wallet.balanceMsat, 30_000n);
  });

  test('every refusal-before-trying code is a failure believed after the grace (another copy of the request may still arrive)', async () => {
    const { backend, wallet, payee, lightning } = await world();
    for (const code of ['QUOTA_EXCEEDED', 'RATE_LIMITED', 'RESTRICTED', 'UNAUTHORIZED', 'NOT_IMPLEMENTED']) {
      const issued = payee.invoice({ amountMsat: 10_000n });
      wallet.refuse(issued.paymentHash, code);
      assert.deepEqual(await backend.pay(payRequest(issued)), { status: 'failed', reason: code.toLowerCase(), evidence: 'lookup' }, code);
    }
    assert.deepEqual(lightning.attempts, []);
  });

  test('PAYMENT_FAILED is confirmed with lookup_invoice: a failed record is a failure believed after the grace', async () => {
    const { backend, wallet, payee, lightning } = await world();
    const issued = payee.invoice({ amountMsat: 10_000n });
    lightning.script(issued.paymentHash, { kind: 'fail', reason: 'no_route' });
    assert.deepEqual(await backend.pay(payRequest(issued)), { status: 'failed', reason: 'payment_failed', evidence: 'lookup' });
    assert.deepEqual(wallet.received.map((r) => r.method).slice(-2), ['pay_invoice', 'lookup_invoice']);
  });

  test('PAYMENT_FAILED while the wallet still has the payment pending (its own timeout) is in flight, and settles later', async () => {
    const { backend, payee, lightning, wallet } = await world({ sendTimeoutMs: 200 });
    const issued = payee.invoice({ amountMsat: 10_000n });
    lightning.script(issued.paymentHash, { kind: 'hang' });
    assert.deepEqual(await backend.pay(payRequest(issued)), { status: 'in_flight' });

    lightning.release(issued.paymentHash, { succeed: true, feeMsat: 1_234n });
    await until(() => wallet.payments.get(issued.paymentHash)?.state === 'settled');
    assert.deepEqual(await backend.lookup(issued.paymentHash), { status: 'succeeded', preimage: issued.preimage, feeMsat: 1_234n, amountMsat: 10_000n });
  });

  test('no answer within the timeout is never a failure; the lookup after the wallet finishes says succeeded', async () => {
    const { backend, payee, lightning, wallet } = await world();
    const issued = payee.invoice({ amountMsat: 10_000n });
    lightning.script(issued.paymentHash, { kind: 'hang' });
    const started = Date.now();
    const status = await backend.pay(payRequest(issued, { timeoutSeconds: 1 }));
    assert.deepEqual(status, { status: 'in_flight' });
    assert.ok(Date.now() - started >= 1_000, 'waited the timeout');
    assert.ok(Date.now() - started < 1_000 + 2 * BACKEND_TIMEOUTS.payGraceMs + 1_000, 'and not much longer (timeout + grace + the confirming lookup)');
    assert.deepEqual(await backend.lookup(issued.paymentHash), { status: 'in_flight' });

    lightning.release(issued.paymentHash, { succeed: true });
    await until(() => wallet.payments.get(issued.paymentHash)?.state === 'settled');
    const later = await backend.lookup(issued.paymentHash);
    assert.equal(later.status, 'succeeded');
    if (later.status === 'succeeded') {
      assert.equal(later.preimage, issued.preimage);
      assert.equal(later.feeMsat, lightning.feeFor(10_000n));
    }
  });

  test('a hash the wallet never paid is not_found', async () => {
    const { backend } = await world();
    assert.deepEqual(await backend.lookup(bytesToHex(randomBytes(32))), { status: 'not_found' });
  });

  test('get_balance reports msat, and drops by amount plus fee after a payment', async () => {
    const { backend, payee, lightning } = await world({ balanceMsat: 2_000_000n });
    assert.deepEqual(await backend.balance(), { msat: 2_000_000n });
    await backend.pay(payRequest(payee.invoice({ amountMsat: 100_000n })));
    assert.deepEqual(await backend.balance(), { msat: 2_000_000n - 100_000n - lightning.feeFor(100_000n) });
  });
});

describe('NwcBackend: forged and stray responses', () => {
  test('a forged failure cannot release the hold: bad signature, another request id, another method are all ignored', async () => {
    const { backend, payee, lightning, wallet, relay } = await world();
    const issued = payee.invoice({ amountMsat: 10_000n });
    lightning.script(issued.paymentHash, { kind: 'hang' });
    const settled = track(backend.pay(payRequest(issued)));
    const request = await requestOnRelay(relay, wallet, 'pay_invoice');
    const refusal = encryptedFromWallet(wallet, { result_type: 'pay_invoice', error: { code: 'INSUFFICIENT_BALANCE', message: 'forged' } });
    const toUs = [['p', wallet.clientPubkey], ['e', request.id]];

    relay.careless = true; // this relay forwards anything: Airlock checks signatures itself
    await publishRaw(relay, [
      signedAsWalletByAnotherKey(wallet, toUs, refusal),
      fromWallet(wallet, [['p', wallet.clientPubkey], ['e', bytesToHex(randomBytes(32))]], refusal),
      fromWallet(wallet, toUs, encryptedFromWallet(wallet, { result_type: 'get_balance', error: { code: 'QUOTA_EXCEEDED', message: 'forged' } })),
    ]);
    await until(() => settled.value !== undefined || (backend.stats.droppedInvalid >= 1 && backend.stats.droppedUnmatched >= 1 && backend.stats.droppedMalformed >= 1));
    assert.equal(settled.value, undefined, 'pay is still waiting for the real answer');
    relay.careless = false;

    lightning.release(issued.paymentHash, { succeed: true });
    const status = await settled.promise;
    assert.equal(status.status, 'succeeded');
  });

  test('a forged success cannot settle a payment that failed, even with the right preimage (the payee knows it)', async () => {
    const { backend, payee, lightning, wallet, relay } = await world();
    const issued = payee.invoice({ amountMsat: 10_000n });
    lightning.script(issued.paymentHash, { kind: 'hang' });
    const settled = track(backend.pay(payRequest(issued)));
    const request = await requestOnRelay(relay, wallet, 'pay_invoice');
    const success = encryptedFromWallet(wallet, { result_type: 'pay_invoice', result: { preimage: issued.preimage, fees_paid: 0 } });

    relay.careless = true;
    await publishRaw(relay, [
      signedAsWalletByAnotherKey(wallet, [['p', wallet.clientPubkey], ['e', request.id]], success),
      fromWallet(wallet, [['p', wallet.clientPubkey], ['e', bytesToHex(randomBytes(32))]], success),
    ]);
    await until(() => settled.value !== undefined || (backend.stats.droppedInvalid >= 1 && backend.stats.droppedUnmatched >= 1));
    assert.equal(settled.value, undefined, 'pay is still waiting for the real answer');
    relay.careless = false;

    lightning.release(issued.paymentHash, { succeed: false, reason: 'no_route' });
    assert.deepEqual(await settled.promise, { status: 'failed', reason: 'payment_failed', evidence: 'lookup' });
  });

  test('a refusal from the wallet while it is paying the same hash (a request handled twice) does not release the hold', async () => {
    const { backend, payee, lightning, wallet, relay } = await world();
    const issued = payee.invoice({ amountMsat: 10_000n });
    lightning.script(issued.paymentHash, { kind: 'hang' });
    const settled = track(backend.pay(payRequest(issued)));
    const request = await requestOnRelay(relay, wallet, 'pay_invoice');
    await until(() => wallet.payments.get(issued.paymentHash)?.state === 'pending');
    // What a wallet that served the copy from a second relay too would send: the balance is already reserved.
    const refusal = encryptedFromWallet(wallet, { result_type: 'pay_invoice', error: { code: 'INSUFFICIENT_BALANCE', message: 'not enough balance' } });
    await publishRaw(relay, [fromWallet(wallet, [['p', wallet.clientPubkey], ['e', request.id]], refusal)]);
    assert.deepEqual(await settled.promise, { status: 'in_flight' });
  });

  test('a success whose preimage does not hash to the payment hash is not believed: confirmed by lookup, still in flight', async () => {
    const { backend, payee, lightning, wallet, relay } = await world();
    const issued = payee.invoice({ amountMsat: 10_000n });
    lightning.script(issued.paymentHash, { kind: 'hang' });
    const settled = track(backend.pay(payRequest(issued)));
    const request = await requestOnRelay(relay, wallet, 'pay_invoice');
    await publishRaw(relay, [
      fromWallet(wallet, [['p', wallet.clientPubkey], ['e', request.id]], encryptedFromWallet(wallet, { result_type: 'pay_invoice', result: { preimage: bytesToHex(randomBytes(32)), fees_paid: 0 } })),
    ]);
    assert.deepEqual(await settled.promise, { status: 'in_flight' });
    assert.equal(wallet.payments.get(issued.paymentHash)?.state, 'pending');
  });
});

describe('NwcBackend: fees', () => {
  test('a success without fees_paid (optional in NIP-47) is charged the fee lookup_invoice reports, else reported as unknown', async () => {
    const { backend, payee, lightning, wallet, relay } = await world();
    const issued = payee.invoice({ amountMsat: 10_000n });
    lightning.script(issued.paymentHash, { kind: 'hang' });
    const settled = track(backend.pay({ ...payRequest(issued), maxFeeMsat: 4_321n }));
    const request = await requestOnRelay(relay, wallet, 'pay_invoice');
    // The wallet's record is still pending (no fee yet): the fee is unknown, the request's maximum only a lower bound
    // of what the service charges (lightning-nwc-unreported-fee.http.test.ts).
    await publishRaw(relay, [fromWallet(wallet, [['p', wallet.clientPubkey], ['e', request.id]], encryptedFromWallet(wallet, { result_type: 'pay_invoice', result: { preimage: issued.preimage } }))]);
    assert.deepEqual(await settled.promise, { status: 'succeeded', preimage: issued.preimage, feeMsat: 4_321n, feeUnreported: true });
    assert.deepEqual(wallet.received.map((r) => r.method).slice(-2), ['pay_invoice', 'lookup_invoice']);
  });
});

describe('NwcBackend: start-up refusals', () => {
  async function refusal(walletOptions: Partial<TestWalletServiceOptions>, backendOptions: Partial<NwcBackendOptions> = {}): Promise<{ error: AirlockError; secret: string }> {
    const { wallet } = await startWallet(walletOptions);
    const error = await NwcBackend.connect({ connectionUri: wallet.uri, network: 'regtest', ...BACKEND_TIMEOUTS, ...backendOptions }).then(
      () => assert.fail('connect should have refused'),
      (e: unknown) => e,
    );
    assert.ok(error instanceof AirlockError, String(error));
    const secret = new URL(wallet.uri.replace('nostr+walletconnect:', 'http:')).searchParams.get('secret')!;
    assert.ok(!error.message.includes(secret) && !inspect(error).includes(secret), 'the secret stays out of the error');
    return { error, secret };
  }

  test('a wallet service that only speaks NIP-04 (no encryption tag, or nip04 alone)', async () => {
    for (const infoEncryption of [null, 'nip04']) {
      const { error } = await refusal({ infoEncryption });
      assert.equal(error.code, 'config_invalid');
      assert.match(error.message, /does not offer NIP-44/);
    }
  });

  test('a wallet service with both schemes is used over NIP-44', async () => {
    const { wallet } = await startWallet({ infoEncryption: 'nip04 nip44_v2' });
    const backend = await NwcBackend.connect({ connectionUri: wallet.uri, network: 'regtest', ...BACKEND_TIMEOUTS });
    worlds.push(() => backend.close());
    assert.deepEqual(await backend.balance(), { msat: wallet.balanceMsat });
  });

  test('a wallet service that published no info event', async () => {
    const started = Date.now();
    const { error } = await refusal({ withoutInfo: true }, { infoTimeoutMs: 300 });
    assert.match(error.message, /no info event \(kind 13194\)/);
    assert.ok(Date.now() - started < 2_000);
  });

  test('a wallet service without lookup_invoice (no uncertain payment could ever be confirmed)', async () => {
    const { error } = await refusal({ methods: ['pay_invoice', 'get_balance'] });
    assert.match(error.message, /does not offer lookup_invoice/);
  });

  test('a wallet on another network (get_info)', async () => {
    const { error } = await refusal({ reportedNetwork: 'mainnet' });
    assert.match(error.message, /wallet is on bitcoin, Airlock is configured for regtest/);
  });

  test('relays that cannot be reached', async () => {
    const { relay, wallet } = await startWallet();
    wallet.close();
    await relay.close();
    const error = await NwcBackend.connect({ connectionUri: wallet.uri, network: 'regtest', ...BACKEND_TIMEOUTS }).catch((e: unknown) => e);
    assert.ok(error instanceof AirlockError);
    assert.match(error.message, /none of the relays/);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------------------------------------------

function catchError(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  assert.fail('expected a throw');
}

function tag(event: NostrEvent, name: string): string | undefined {
  return event.tags.find((t) => t[0] === name)?.[1];
}

async function until(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

function track<T>(promise: Promise<T>): { promise: Promise<T>; value: T | undefined } {
  const tracked: { promise: Promise<T>; value: T | undefined } = { promise, value: undefined };
  void promise.then((v) => (tracked.value = v));
  return tracked;
}

const walletKey = (wallet: TestWalletService) => hexToBytes(wallet.walletSecret);
const conversation = (wallet: TestWalletService) => nip44.getConversationKey(walletKey(wallet), wallet.clientPubkey);

/** The newest request of `method` the client published (decrypted as the wallet would). */
async function requestOnRelay(relay: TestRelay, wallet: TestWalletService, method: string): Promise<NostrEvent> {
  let found: NostrEvent | undefined;
  await until(() => {
    found = relay.accepted.findLast((e) => e.kind === 23194 && e.pubkey === wallet.clientPubkey && JSON.parse(nip44.decrypt(e.content, conversation(wallet))).method === method);
    return found !== undefined;
  });
  return found!;
}

function encryptedFromWallet(wallet: TestWalletService, body: unknown): string {
  return nip44.encrypt(JSON.stringify(body), conversation(wallet));
}

function fromWallet(wallet: TestWalletService, tags: string[][], content: string): Event {
  return finalizeEvent({ kind: 23195, created_at: Math.floor(Date.now() / 1000), tags, content }, walletKey(wallet));
}

/** Claims the wallet's pubkey, but the signature is another key's: only a relay that checks nothing passes it on. */
function signedAsWalletByAnotherKey(wallet: TestWalletService, tags: string[][], content: string): Event {
  const signed = finalizeEvent({ kind: 23195, created_at: Math.floor(Date.now() / 1000), tags, content }, generateSecretKey());
  const forged = { ...signed, pubkey: wallet.walletPubkey };
  return { ...forged, id: getEventHash(forged) };
}

/** Publishes events over a raw socket and waits for the relay's OK for each. */
async function publishRaw(relay: TestRelay, events: Event[]): Promise<void> {
  const ws = new WebSocket(relay.url);
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = reject;
  });
  const oks = new Set<string>();
  ws.onmessage = (m) => {
    const msg = JSON.parse(String(m.data));
    if (msg[0] === 'OK') oks.add(msg[1]);
  };
  for (const e of events) ws.send(JSON.stringify(['EVENT', e]));
  await until(() => events.every((e) => oks.has(e.id)));
  ws.close();
}
