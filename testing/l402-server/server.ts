/**
 * A paid HTTP API for tests that answers as Aperture (lightninglabs/aperture), the reference L402 proxy,
 * does: a TEST DOUBLE, not a server to run. Invoices come from a payee of the simulated Lightning network
 * (testing/lightning-network.ts), so a payer settles them there and gets the preimage, as over Lightning.
 * Macaroons are minted and verified with js-macaroon (the `macaroon` npm package), which implements the same
 * V2 format and HMAC chain (with libmacaroons' key derivation) as the go-macaroon library Aperture uses
 * (serialized by ./js-macaroon.ts, which says why).
 *
 * What follows Aperture exactly:
 * - The challenge (auth/authenticator.go FreshChallengeHeader, proxy/proxy.go handlePaymentRequired):
 *   402, one `WWW-Authenticate` line per scheme, `LSAT` first then `L402` ("old loop software looks for LSAT
 *   in the first instance"), each `macaroon="<standard base64>", invoice="<bolt11>"`; `Cache-Control:
 *   no-store`; the body Go's http.Error writes: `payment required\n`, text/plain, nosniff.
 * - The macaroon (mint/mint.go MintL402, services.go): a fresh 32-byte root key per token, kept by
 *   sha256(identifier); location `lsat`; V2; identifier = uint16 big-endian 0 || payment hash || 32 random
 *   bytes; caveats `services=<name>:0`, `<name>_capabilities=<capabilities>` (always, even empty),
 *   `<name>_valid_until=<unix seconds>` when a lifetime is set. The price is in satoshis.
 * - Verification (l402/header.go FromHeader, mint.VerifyL402, auth.Accept): the last `Authorization` value
 *   must match `(LSAT|L402) (.*?):([a-f0-9]{64})` with a standard padded base64 macaroon; the preimage must
 *   hash to the identifier's payment hash; the root key must exist; the HMAC chain must verify; the
 *   `services` and `<service>_valid_until` caveats must hold (each one no wider than the one before, the last
 *   one deciding; caveats without "=" and other conditions skipped); the invoice must be settled. A request
 *   that fails any of these gets a fresh 402 challenge, as Aperture answers it (not 401).
 *
 * Beyond Aperture, for tests: `scheme` (`L402` or `LSAT` alone), `tokenParam: 'token'` (the current spec's
 * `L402 version="0", token="…", invoice="…"` form, which Aperture does not send yet), `refusals` (why each
 * presented credential was refused), counters, and attack hooks: an invoice whose payment hash is not the
 * macaroon's, an expired invoice, and the same challenge sent again on every 402.
 *
 * Differences: js-macaroon refuses bytes after a macaroon where go-macaroon ignores them; only the
 * `Authorization` header is read (not Aperture's `Grpc-Metadata-Macaroon` / `Macaroon` headers with a
 * `preimage` caveat); no gRPC, no proxying (a paid route answers a fixed JSON body), no rate limits, no MPP
 * `Payment` scheme. Root keys live in memory: a token minted by another instance is unknown here.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { LightningNetwork } from '../lightning-network.ts';
import { exportMacaroonV2, jsMacaroon as macaroons, type JsMacaroon } from './js-macaroon.ts';

export interface L402Route {
  /** Aperture prices services in whole satoshis. */
  priceSat: bigint;
  /** The Aperture service this route belongs to; a token is minted for, and only admits to, its service. */
  service?: string;
  /** The `<service>_capabilities` caveat value (Aperture always adds the caveat, empty by default). */
  capabilities?: string;
  /** The JSON body a paid request gets. */
  body?: unknown;
}

export interface L402ServerOptions {
  network: LightningNetwork;
  /** Paths (exact) to what they cost. Any other path is 404. */
  routes: Record<string, L402Route>;
  /** The service of routes that name none. Default `api`. */
  service?: string;
  /** `both` (the default) is what Aperture sends: an LSAT line, then an L402 line, with the same offer. */
  scheme?: 'L402' | 'LSAT' | 'both';
  /** `macaroon` (Aperture, the default) or `token` (the current spec, with `version="0"`). */
  tokenParam?: 'macaroon' | 'token';
  /** Seconds the `<service>_valid_until` caveat allows; `null` adds no caveat (Aperture without `timeout`). Default 3600. */
  caveatLifetimeSeconds?: number | null;
  /** The invoice's `x` field. Default 3600. */
  invoiceExpirySeconds?: number;
  /** Milliseconds since the epoch; the caveat clock (minting and checking). Default Date.now. */
  now?: () => number;
  attacks?: {
    /** The invoice pays a different payment hash than the macaroon commits to: paying it buys nothing. */
    mismatchedPaymentHash?: boolean;
    /** The invoice expired before it was sent. */
    expiredInvoice?: boolean;
    /** Every 402 repeats the first challenge (same macaroon, same invoice), even after it was paid. */
    repeatChallenge?: boolean;
  };
}

export type L402Refusal =
  | 'malformed_authorization'
  | 'malformed_macaroon'
  | 'unknown_identifier_version'
  | 'invalid_preimage'
  | 'unknown_root_key'
  | 'bad_signature'
  | 'service_not_authorized'
  | 'token_expired'
  | 'invalid_caveat'
  | 'invoice_not_settled';

export interface IssuedChallenge {
  /** Standard base64, as sent. */
  macaroon: string;
  invoice: string;
  /** The payment hash the macaroon commits to (differs from the invoice's under `mismatchedPaymentHash`). */
  macaroonPaymentHash: string;
  invoicePaymentHash: string;
}

export interface L402TestServer {
  url: string;
  /** Every challenge minted, in order (a repeated challenge is not minted again). */
  readonly issued: IssuedChallenge[];
  /** Why each presented credential was refused, in order. */
  readonly refusals: L402Refusal[];
  readonly stats: {
    /** 402 answers sent. */
    challenges: number;
    /** Requests served because their credential verified. */
    paidRequests: number;
    /** Distinct tokens (payment hashes) among those requests. */
    distinctTokens: number;
  };
  close(): Promise<void>;
}

const ROOT_KEY_BYTES = 32;
const TOKEN_ID_BYTES = 32;
const SERVICES_CONDITION = 'services';
const CAPABILITIES_SUFFIX = '_capabilities';
const TIMEOUT_SUFFIX = '_valid_until';
// Aperture's FromHeader pattern, unanchored and lazy as in l402/header.go.
const AUTHORIZATION_PATTERN = /(LSAT|L402) (.*?):([a-f0-9]{64})/;

export async function startL402Server(options: L402ServerOptions): Promise<L402TestServer> {
  const payee = options.network.payee();
  const now = options.now ?? Date.now;
  const scheme = options.scheme ?? 'both';
  const tokenParam = options.tokenParam ?? 'macaroon';
  const lifetime = options.caveatLifetimeSeconds === undefined ? 3600 : options.caveatLifetimeSeconds;
  const invoiceExpirySeconds = options.invoiceExpirySeconds ?? 3600;
  const attacks = options.attacks ?? {};
  const rootKeys = new Map<string, Uint8Array>(); // sha256(identifier) hex -> root key
  const servedTokens = new Set<string>();
  const issued: IssuedChallenge[] = [];
  const refusals: L402Refusal[] = [];
  const stats = { challenges: 0, paidRequests: 0, distinctTokens: 0 };

  function mint(route: L402Route, serviceName: string): IssuedChallenge {
    const nowSeconds = Math.floor(now() / 1000);
    const invoice = payee.invoice({
      amountMsat: route.priceSat * 1000n,
      description: `L402 ${serviceName}`,
      expirySeconds: invoiceExpirySeconds,
      ...(attacks.expiredInvoice ? { timestamp: nowSeconds - invoiceExpirySeconds - 60 } : {}),
    });
    const macaroonPaymentHash = attacks.mismatchedPaymentHash ? sha256Hex(randomBytes(32)) : invoice.paymentHash;
    const identifier = Buffer.concat([Buffer.from([0, 0]), Buffer.from(macaroonPaymentHash, 'hex'), randomBytes(TOKEN_ID_BYTES)]);
    const rootKey = randomBytes(ROOT_KEY_BYTES);
    rootKeys.set(sha256Hex(identifier), rootKey);
    const macaroon = macaroons.newMacaroon({ identifier, location: 'lsat', rootKey, version: 2 });
    // mint.caveatsForServices: services, then capabilities, then constraints (none here), then timeouts.
    macaroon.addFirstPartyCaveat(`${SERVICES_CONDITION}=${serviceName}:0`);
    macaroon.addFirstPartyCaveat(`${serviceName}${CAPABILITIES_SUFFIX}=${route.capabilities ?? ''}`);
    if (lifetime !== null) macaroon.addFirstPartyCaveat(`${serviceName}${TIMEOUT_SUFFIX}=${nowSeconds + lifetime}`);
    const challenge = { macaroon: Buffer.from(exportMacaroonV2(macaroon)).toString('base64'), invoice: invoice.invoice, macaroonPaymentHash, invoicePaymentHash: invoice.paymentHash };
    issued.push(challenge);
    return challenge;
  }

  function sendChallenge(res: ServerResponse, route: L402Route, serviceName: string): void {
    const challenge = attacks.repeatChallenge && issued[0] ? issued[0] : mint(route, serviceName);
    const params = tokenParam === 'token' ? `version="0", token="${challenge.macaroon}", invoice="${challenge.invoice}"` : `macaroon="${challenge.macaroon}", invoice="${challenge.invoice}"`;
    const schemes = scheme === 'both' ? ['LSAT', 'L402'] : [scheme];
    stats.challenges += 1;
    res.writeHead(402, {
      'WWW-Authenticate': schemes.map((s) => `${s} ${params}`),
      'Cache-Control': 'no-store',
      'Content-Type': 'text/plain; charset=utf-8',
      'X-Content-Type-Options': 'nosniff',
    });
    res.end('payment required\n');
  }

  /** auth.Accept: FromHeader, mint.VerifyL402, then the invoice's settlement. Returns the payment hash or why not. */
  function verify(req: IncomingMessage, serviceName: string): { paymentHash: string } | { refusal: L402Refusal } {
    // FromHeader keeps the match of the last Authorization value it reads.
    const values = req.headersDistinct['authorization'] ?? [];
    const match = AUTHORIZATION_PATTERN.exec(values[values.length - 1] ?? '');
    if (match === null) return { refusal: 'malformed_authorization' };
    const macaroonBytes = decodeStandardBase64(match[2]!);
    if (macaroonBytes === undefined) return { refusal: 'malformed_authorization' };
    let macaroon: JsMacaroon;
    try {
      macaroon = macaroons.importMacaroon(macaroonBytes);
    } catch {
      return { refusal: 'malformed_macaroon' };
    }
    const preimage = Buffer.from(match[3]!, 'hex');

    // VerifyL402: identifier, preimage, root key, signature, caveats, in that order.
    const identifier = Buffer.from(macaroon.identifier);
    if (identifier.length < 2 || identifier.readUInt16BE(0) !== 0) return { refusal: 'unknown_identifier_version' };
    if (identifier.length !== 2 + 32 + TOKEN_ID_BYTES) return { refusal: 'malformed_macaroon' };
    const paymentHash = identifier.subarray(2, 34);
    if (!timingSafeEqual(createHash('sha256').update(preimage).digest(), paymentHash)) return { refusal: 'invalid_preimage' };
    const rootKey = rootKeys.get(sha256Hex(identifier));
    if (rootKey === undefined) return { refusal: 'unknown_root_key' };
    try {
      // The chain only (a third-party caveat fails here: no discharge); caveats are judged below, as Aperture does.
      macaroon.verify(rootKey, () => null);
    } catch {
      return { refusal: 'bad_signature' };
    }
    const caveatRefusal = checkCaveats(macaroon.caveats.map((c) => Buffer.from(c.identifier).toString('utf8')), serviceName, now());
    if (caveatRefusal !== undefined) return { refusal: caveatRefusal };

    // auth.Accept: the node must hold the invoice as settled.
    const hashHex = paymentHash.toString('hex');
    if (!options.network.isPaid(hashHex)) return { refusal: 'invoice_not_settled' };
    return { paymentHash: hashHex };
  }

  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    const route = Object.hasOwn(options.routes, path) ? options.routes[path] : undefined;
    if (route === undefined) {
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('404 page not found\n');
      return;
    }
    const serviceName = route.service ?? options.service ?? 'api';
    if (req.headers.authorization === undefined) {
      sendChallenge(res, route, serviceName);
      return;
    }
    const outcome = verify(req, serviceName);
    if ('refusal' in outcome) {
      refusals.push(outcome.refusal);
      sendChallenge(res, route, serviceName);
      return;
    }
    stats.paidRequests += 1;
    servedTokens.add(outcome.paymentHash);
    stats.distinctTokens = servedTokens.size;
    res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(route.body ?? { path, paid: true }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    issued,
    refusals,
    stats,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}

/**
 * mint.VerifyL402 via l402.VerifyCaveats with the services and timeout satisfiers: caveats grouped by
 * condition (only those two conditions), each one no wider than the one before it, the last one deciding.
 */
function checkCaveats(caveats: string[], serviceName: string, nowMs: number): L402Refusal | undefined {
  const groups = new Map<string, string[]>();
  for (const caveat of caveats) {
    const equals = caveat.indexOf('=');
    if (equals < 0) continue; // DecodeCaveat fails: skipped
    const condition = caveat.slice(0, equals);
    if (condition !== SERVICES_CONDITION && condition !== serviceName + TIMEOUT_SUFFIX) continue;
    groups.set(condition, [...(groups.get(condition) ?? []), caveat.slice(equals + 1)]);
  }
  const services = groups.get(SERVICES_CONDITION) ?? [];
  for (let i = 0; i < services.length; i++) {
    const names = decodeServices(services[i]!);
    if (names === undefined) return 'invalid_caveat';
    if (i > 0) {
      const previous = decodeServices(services[i - 1]!)!;
      if (names.some((name) => !previous.includes(name))) return 'service_not_authorized';
    }
    if (i === services.length - 1 && !names.includes(serviceName)) return 'service_not_authorized';
  }
  const timeouts = groups.get(serviceName + TIMEOUT_SUFFIX) ?? [];
  for (let i = 0; i < timeouts.length; i++) {
    // strconv.ParseInt(value, 10, 64): an optional sign and decimal digits.
    if (!/^[+-]?\d{1,18}$/.test(timeouts[i]!)) return 'invalid_caveat';
    const expiresAt = Number(timeouts[i]) * 1000;
    if (i > 0 && Number(timeouts[i - 1]) * 1000 < expiresAt) return 'invalid_caveat';
    if (i === timeouts.length - 1 && !(nowMs < expiresAt)) return 'token_expired';
  }
  return undefined;
}

/** l402.decodeServicesCaveatValue: `name:tier` pairs, comma-separated, a non-empty name and an integer tier. */
function decodeServices(value: string): string[] | undefined {
  if (value === '') return undefined;
  const names: string[] = [];
  for (const service of value.split(',')) {
    const parts = service.split(':');
    if (parts.length !== 2 || parts[0] === '' || !/^[+-]?\d+$/.test(parts[1]!)) return undefined;
    names.push(parts[0]!);
  }
  return names;
}

/** Go's base64.StdEncoding.DecodeString: the standard alphabet with padding, nothing else. */
function decodeStandardBase64(text: string): Buffer | undefined {
  if (text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) return undefined;
  const bytes = Buffer.from(text, 'base64');
  return bytes.toString('base64') === text ? bytes : undefined;
}

function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}
