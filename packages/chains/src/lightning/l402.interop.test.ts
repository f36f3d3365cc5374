// L402 end to end against independent implementations: the paid API double (testing/l402-server, which
// answers as Aperture does and mints with js-macaroon) issues real challenges over HTTP; lsat-js (Tierion's
// L402 library, its own header parser, identifier decoder and bolt11) reads them beside our parser and
// decoder; payments settle on the simulated Lightning network; credentials we format are verified by the
// server's HMAC chain and read by lsat-js.
//
// lsat-js 2.0.6 quirks met here (it predates the L402 rename and the spec's `token=`):
// - `Lsat.fromToken` asserts the credential contains "LSAT"; an `L402 …` credential is handed to it with the
//   scheme renamed (the rest is byte for byte what the server gets).
// - `Lsat.fromHeader` only knows `macaroon=`: the spec's `version="0", token="…"` form is not readable by it.
// - `Lsat.fromChallenge` takes the payment hash from the invoice alone, so it does not notice a macaroon that
//   commits to another hash; `Lsat.fromMacaroon(macaroon, invoice)` does, and is used for that check.
// - Its dependency `macaroon` is a git fork npm cannot fetch here; package.json overrides it with the registry
//   release, whose export bug is described in testing/l402-server/js-macaroon.ts (only imports are used here).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Caveat, Identifier, Lsat, getCaveatsFromMacaroon } from 'lsat-js';
import { isAirlockError } from '@airlock/core';
import { LightningNetwork } from '../../../../testing/lightning-network.ts';
import { exportMacaroonV2, jsMacaroon } from '../../../../testing/l402-server/js-macaroon.ts';
import { startL402Server, type L402ServerOptions, type L402TestServer } from '../../../../testing/l402-server/server.ts';
import { decodeBolt11 } from './bolt11.ts';
import { decodeL402Macaroon, formatL402Authorization, l402Expiry, parseL402Challenge, type L402Challenge } from './l402.ts';

const PRICE_SAT = 21n;
const MAX_FEE_MSAT = 10_000n;

async function withServer(options: Partial<L402ServerOptions>, run: (server: L402TestServer, network: LightningNetwork) => Promise<void>): Promise<void> {
  const network = new LightningNetwork();
  const server = await startL402Server({ network, routes: { '/weather': { priceSat: PRICE_SAT } }, service: 'weather', ...options });
  try {
    await run(server, network);
  } finally {
    await server.close();
  }
}

/** What a client sees of a 402: status, the WWW-Authenticate value fetch hands over, and the parsed offer. */
async function challenge(url: string, headers: Record<string, string> = {}): Promise<{ status: number; header: string; offer: L402Challenge; response: Response }> {
  const response = await fetch(url, { headers });
  const header = response.headers.get('www-authenticate') ?? '';
  await response.text();
  return { status: response.status, header, offer: parseL402Challenge(header), response };
}

/** Pays the offer's invoice over the simulated network and returns the preimage the payee revealed. */
async function pay(network: LightningNetwork, offer: L402Challenge): Promise<string> {
  const invoice = decodeBolt11(offer.invoice, { now: Date.now(), network: 'regtest' });
  const settlement = await network.settle(invoice.paymentHash, invoice.amountMsat!, MAX_FEE_MSAT);
  assert.equal(settlement.status, 'succeeded');
  return (settlement as { preimage: string }).preimage;
}

test("Aperture's challenge: lsat-js and our parser and decoder agree on macaroon, invoice, payment hash, token id and caveats", async () => {
  await withServer({}, async (server) => {
    const { status, header, offer, response } = await challenge(`${server.url}/weather`);
    assert.equal(status, 402);
    assert.equal(response.headers.get('cache-control'), 'no-store');
    // Two header lines, LSAT first, joined by fetch.
    assert.match(header, /^LSAT macaroon="[^"]+", invoice="[^"]+", L402 macaroon="[^"]+", invoice="[^"]+"$/);
    assert.equal(offer.scheme, 'L402');

    const lsat = Lsat.fromHeader(header);
    assert.equal(lsat.baseMacaroon, offer.macaroon);
    assert.equal(lsat.invoice, offer.invoice);

    const decoded = decodeL402Macaroon(offer.macaroon);
    const invoice = decodeBolt11(offer.invoice, { now: Date.now(), network: 'regtest' });
    assert.equal(decoded.identifier.paymentHash, invoice.paymentHash);
    assert.equal(lsat.paymentHash, invoice.paymentHash);
    assert.equal(invoice.amountMsat, PRICE_SAT * 1000n);
    assert.equal(lsat.invoiceAmount, Number(PRICE_SAT));

    const identifier = Identifier.fromString(lsat.id);
    assert.equal(identifier.version, 0);
    assert.equal(identifier.paymentHash.toString('hex'), decoded.identifier.paymentHash);
    assert.equal(identifier.tokenId.toString('hex'), decoded.identifier.tokenId);

    assert.equal(decoded.location, 'lsat');
    const validUntil = Number(/^weather_valid_until=(\d+)$/.exec(decoded.caveats[2]!)![1]);
    assert.deepEqual(decoded.caveats, ['services=weather:0', 'weather_capabilities=', `weather_valid_until=${validUntil}`]);
    assert.deepEqual(getCaveatsFromMacaroon(offer.macaroon).map((c) => c.encode()), decoded.caveats);
    assert.ok(Math.abs(validUntil - (Date.now() / 1000 + 3600)) < 60);
    assert.equal(l402Expiry(decoded.caveats, Date.now()), validUntil * 1000);
    assert.deepEqual(server.stats, { challenges: 1, paidRequests: 0, distinctTokens: 0 });
  });
});

test('a paid credential formatted by formatL402Authorization is served, and reused without paying again; lsat-js reads it as satisfied', async () => {
  await withServer({}, async (server, network) => {
    const { offer } = await challenge(`${server.url}/weather`);
    const preimage = await pay(network, offer);
    const authorization = formatL402Authorization(offer.scheme, offer.macaroon, preimage);

    const first = await fetch(`${server.url}/weather`, { headers: { authorization } });
    assert.equal(first.status, 200);
    assert.deepEqual(await first.json(), { path: '/weather', paid: true });
    const again = await fetch(`${server.url}/weather`, { headers: { authorization } });
    assert.equal(again.status, 200);
    await again.text();
    assert.deepEqual(server.stats, { challenges: 1, paidRequests: 2, distinctTokens: 1 });
    assert.deepEqual(server.refusals, []);
    assert.equal(network.attempts.length, 1);

    const lsat = Lsat.fromToken(authorization.replace(/^L402 /, 'LSAT '));
    assert.equal(lsat.paymentPreimage, preimage);
    assert.equal(lsat.isSatisfied(), true);
    assert.equal(lsat.paymentHash, decodeL402Macaroon(offer.macaroon).identifier.paymentHash);
    assert.equal(lsat.baseMacaroon, offer.macaroon);
  });
});

test('the legacy LSAT scheme end to end: a server that only says LSAT, answered with LSAT', async () => {
  await withServer({ scheme: 'LSAT' }, async (server, network) => {
    const { header, offer } = await challenge(`${server.url}/weather`);
    assert.ok(header.startsWith('LSAT ') && !header.includes('L402'));
    assert.equal(offer.scheme, 'LSAT');
    assert.equal(Lsat.fromHeader(header).paymentHash, decodeL402Macaroon(offer.macaroon).identifier.paymentHash);
    const authorization = formatL402Authorization('LSAT', offer.macaroon, await pay(network, offer));
    const response = await fetch(`${server.url}/weather`, { headers: { authorization } });
    assert.equal(response.status, 200);
    await response.text();
    assert.equal(Lsat.fromToken(authorization).isSatisfied(), true);
  });
});

test('a wrong preimage is refused by the server (a fresh 402) and by lsat-js', async () => {
  await withServer({}, async (server, network) => {
    const { offer } = await challenge(`${server.url}/weather`);
    const preimage = await pay(network, offer);
    const wrong = `${preimage.slice(0, 63)}${preimage[63] === '0' ? '1' : '0'}`;
    const authorization = formatL402Authorization('L402', offer.macaroon, wrong);

    const refused = await challenge(`${server.url}/weather`, { authorization });
    assert.equal(refused.status, 402);
    assert.notEqual(refused.offer.macaroon, offer.macaroon); // a fresh token, as Aperture answers
    assert.deepEqual(server.refusals, ['invalid_preimage']);
    assert.equal(server.stats.paidRequests, 0);
    assert.throws(() => Lsat.fromToken(authorization.replace(/^L402 /, 'LSAT ')), /did not match/);
  });
});

test('what Aperture refuses, the double refuses: another service, upper-case hex, URL-safe base64, a tampered caveat', async () => {
  const network = new LightningNetwork();
  // `forecast` makes the macaroon 197 bytes, so its base64 has padding for the URL-safe check below to drop.
  const server = await startL402Server({ network, routes: { '/weather': { priceSat: PRICE_SAT, service: 'weather', capabilities: 'forecast' }, '/news': { priceSat: 5n, service: 'news' } } });
  try {
    const { offer } = await challenge(`${server.url}/weather`);
    const preimage = await pay(network, offer);
    const authorization = formatL402Authorization('L402', offer.macaroon, preimage);
    const status = async (path: string, value: string): Promise<number> => {
      const response = await fetch(`${server.url}${path}`, { headers: { authorization: value } });
      await response.text();
      return response.status;
    };

    assert.equal(await status('/news', authorization), 402); // services=weather:0 does not admit to news
    assert.equal(await status('/weather', `L402 ${offer.macaroon}:${preimage.toUpperCase()}`), 402);
    assert.ok(offer.macaroon.endsWith('='));
    const urlSafe = offer.macaroon.replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
    assert.equal(decodeL402Macaroon(urlSafe).identifier.paymentHash, decodeL402Macaroon(offer.macaroon).identifier.paymentHash);
    assert.equal(await status('/weather', `L402 ${urlSafe}:${preimage}`), 402);
    // services=weather:0 -> services=weathes:0: the bytes still decode, the HMAC chain no longer verifies.
    const tampered = Buffer.from(offer.macaroon, 'base64');
    const at = tampered.indexOf(Buffer.from('services=weather')) + 15;
    tampered[at] = tampered[at]! ^ 0x01;
    const tamperedText = tampered.toString('base64');
    assert.equal(decodeL402Macaroon(tamperedText).caveats[0], 'services=weathes:0');
    assert.equal(await status('/weather', formatL402Authorization('L402', tamperedText, preimage)), 402);
    assert.deepEqual(server.refusals, ['service_not_authorized', 'malformed_authorization', 'malformed_authorization', 'bad_signature']);

    assert.equal(await status('/weather', authorization), 200); // the paid token still works
    assert.deepEqual(server.stats, { challenges: 5, paidRequests: 1, distinctTokens: 1 });
  } finally {
    await server.close();
  }
});

test('a token another server minted is refused: its root key is unknown here, though it was paid', async () => {
  const network = new LightningNetwork();
  const routes = { '/weather': { priceSat: PRICE_SAT } };
  const minting = await startL402Server({ network, routes, service: 'weather' });
  const other = await startL402Server({ network, routes, service: 'weather' });
  try {
    const { offer } = await challenge(`${minting.url}/weather`);
    const authorization = formatL402Authorization('L402', offer.macaroon, await pay(network, offer));
    const refused = await fetch(`${other.url}/weather`, { headers: { authorization } });
    assert.equal(refused.status, 402);
    await refused.text();
    assert.deepEqual(other.refusals, ['unknown_root_key']);
    const served = await fetch(`${minting.url}/weather`, { headers: { authorization } });
    assert.equal(served.status, 200);
    await served.text();
  } finally {
    await Promise.all([minting.close(), other.close()]);
  }
});

test("the token's caveat lifetime: l402Expiry names the moment the server stops accepting it", async () => {
  let now = Date.UTC(2030, 0, 1);
  await withServer({ caveatLifetimeSeconds: 600, now: () => now }, async (server, network) => {
    const { offer } = await challenge(`${server.url}/weather`);
    const expiry = l402Expiry(decodeL402Macaroon(offer.macaroon).caveats, now);
    assert.equal(expiry, now + 600_000);
    const authorization = formatL402Authorization('L402', offer.macaroon, await pay(network, offer));
    now = expiry! - 1000;
    assert.equal((await fetch(`${server.url}/weather`, { headers: { authorization } }).then(async (r) => (await r.text(), r.status))), 200);
    now = expiry!;
    assert.equal((await fetch(`${server.url}/weather`, { headers: { authorization } }).then(async (r) => (await r.text(), r.status))), 402);
    assert.deepEqual(server.refusals, ['token_expired']);
  });
});

test('attenuation: a caveat the holder adds keeps the token valid only while narrower, as all three implementations read it', async () => {
  await withServer({}, async (server, network) => {
    const { offer } = await challenge(`${server.url}/weather`);
    const preimage = await pay(network, offer);
    const original = decodeL402Macaroon(offer.macaroon);
    const minted = l402Expiry(original.caveats, Date.now())! / 1000;

    // The holder extends the HMAC chain with js-macaroon (no root key needed), serialized as ./js-macaroon.ts says.
    const attenuate = (condition: string): string => {
      const m = jsMacaroon.importMacaroon(offer.macaroon);
      m.addFirstPartyCaveat(condition);
      return Buffer.from(exportMacaroonV2(m)).toString('base64');
    };
    const narrower = attenuate(`weather_valid_until=${minted - 60}`);
    const decoded = decodeL402Macaroon(narrower);
    assert.equal(decoded.caveats.length, 4);
    assert.deepEqual(decoded.identifier, original.identifier);
    assert.equal(l402Expiry(decoded.caveats, Date.now()), (minted - 60) * 1000);
    assert.deepEqual(getCaveatsFromMacaroon(narrower).map((c) => c.encode()), decoded.caveats);
    assert.equal(new Caveat({ condition: 'weather_valid_until', value: minted - 60 }).encode(), decoded.caveats[3]);
    const ok = await fetch(`${server.url}/weather`, { headers: { authorization: formatL402Authorization('L402', narrower, preimage) } });
    assert.equal(ok.status, 200);
    await ok.text();

    const wider = attenuate(`weather_valid_until=${minted + 3600}`);
    const refused = await fetch(`${server.url}/weather`, { headers: { authorization: formatL402Authorization('L402', wider, preimage) } });
    assert.equal(refused.status, 402);
    await refused.text();
    assert.deepEqual(server.refusals, ['invalid_caveat']);
  });
});

test("the current spec's form (version=\"0\", token=) is read by our parser; lsat-js cannot read it", async () => {
  await withServer({ scheme: 'L402', tokenParam: 'token' }, async (server, network) => {
    const { header, offer } = await challenge(`${server.url}/weather`);
    assert.match(header, /^L402 version="0", token="[^"]+", invoice="[^"]+"$/);
    assert.equal(decodeL402Macaroon(offer.macaroon).identifier.paymentHash, decodeBolt11(offer.invoice, { now: Date.now(), network: 'regtest' }).paymentHash);
    assert.throws(() => Lsat.fromHeader(header));
    const response = await fetch(`${server.url}/weather`, { headers: { authorization: formatL402Authorization('L402', offer.macaroon, await pay(network, offer)) } });
    assert.equal(response.status, 200);
    await response.text();
  });
});

test('attack: an invoice whose payment hash is not the macaroon\'s is visible before paying, and paying it buys nothing', async () => {
  await withServer({ attacks: { mismatchedPaymentHash: true } }, async (server, network) => {
    const { header, offer } = await challenge(`${server.url}/weather`);
    const macaroonHash = decodeL402Macaroon(offer.macaroon).identifier.paymentHash;
    const invoiceHash = decodeBolt11(offer.invoice, { now: Date.now(), network: 'regtest' }).paymentHash;
    assert.notEqual(macaroonHash, invoiceHash);
    assert.equal(server.issued[0]!.macaroonPaymentHash, macaroonHash);
    // lsat-js: fromHeader takes the invoice's hash and does not notice; fromMacaroon with the invoice does.
    assert.equal(Lsat.fromHeader(header).paymentHash, invoiceHash);
    assert.throws(() => Lsat.fromMacaroon(offer.macaroon, offer.invoice), /did not match/);

    const preimage = await pay(network, offer);
    const response = await fetch(`${server.url}/weather`, { headers: { authorization: formatL402Authorization('L402', offer.macaroon, preimage) } });
    assert.equal(response.status, 402);
    await response.text();
    assert.deepEqual(server.refusals, ['invalid_preimage']);
  });
});

test('attack: an expired invoice is refused by the decoder and cannot be paid', async () => {
  await withServer({ attacks: { expiredInvoice: true } }, async (server, network) => {
    const { offer } = await challenge(`${server.url}/weather`);
    assert.throws(() => decodeBolt11(offer.invoice, { now: Date.now(), network: 'regtest' }), (e: unknown) => isAirlockError(e) && e.code === 'invoice_expired');
    const hash = decodeL402Macaroon(offer.macaroon).identifier.paymentHash;
    assert.deepEqual(await network.settle(hash, PRICE_SAT * 1000n, MAX_FEE_MSAT), { status: 'failed', reason: 'incorrect_payment_details' });
  });
});

test('attack: the same challenge sent again after it was paid; paying it again is refused by the network', async () => {
  await withServer({ attacks: { repeatChallenge: true } }, async (server, network) => {
    const first = await challenge(`${server.url}/weather`);
    const second = await challenge(`${server.url}/weather`);
    assert.equal(second.header, first.header);
    const preimage = await pay(network, first.offer);
    const ok = await fetch(`${server.url}/weather`, { headers: { authorization: formatL402Authorization('L402', first.offer.macaroon, preimage) } });
    assert.equal(ok.status, 200);
    await ok.text();
    const third = await challenge(`${server.url}/weather`);
    assert.equal(third.header, first.header);
    const hash = decodeL402Macaroon(third.offer.macaroon).identifier.paymentHash;
    assert.deepEqual(await network.settle(hash, PRICE_SAT * 1000n, MAX_FEE_MSAT), { status: 'failed', reason: 'already_paid' });
    assert.equal(server.issued.length, 1);
    assert.deepEqual(server.stats, { challenges: 3, paidRequests: 1, distinctTokens: 1 });
  });
});

test("the double's V2 serialization equals js-macaroon's exportBinary where that still runs, and js-macaroon reads it back", () => {
  const identifier = new Uint8Array(66);
  for (const caveats of [[], ['services=weather:0']]) {
    const m = jsMacaroon.newMacaroon({ identifier, location: 'lsat', rootKey: new Uint8Array(32).fill(1), version: 2 });
    for (const c of caveats) m.addFirstPartyCaveat(c);
    assert.deepEqual(exportMacaroonV2(m), m.exportBinary());
  }
  const third = jsMacaroon.newMacaroon({ identifier, rootKey: new Uint8Array(32), version: 2 });
  third.addThirdPartyCaveat(new Uint8Array(32), 'is-authenticated', 'https://auth.example');
  assert.deepEqual(exportMacaroonV2(third), third.exportBinary());
  const many = jsMacaroon.newMacaroon({ identifier, location: 'lsat', rootKey: new Uint8Array(32).fill(2), version: 2 });
  for (let i = 0; i < 10; i++) many.addFirstPartyCaveat(`c${i}=${'x'.repeat(i * 20)}`);
  const back = jsMacaroon.importMacaroon(exportMacaroonV2(many));
  back.verify(new Uint8Array(32).fill(2), () => null);
  assert.equal(back.caveats.length, 10);
});
