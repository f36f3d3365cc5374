/**
 * LND's REST API for tests: a TEST DOUBLE of the calls Airlock's LND backend makes, over real HTTPS. It pays
 * through the simulated network of testing/lightning-network.ts (`network.settle`), so payees, preimages and
 * scripted outcomes (succeed, fail, hang, delay) are the network's.
 *
 * What it follows (lnd's source: lnrpc/routerrpc/router.yaml, router.proto, lightning.proto, router_server.go,
 * router_backend.go, payments/db, macaroons/service.go; and grpc-gateway v2.16, the REST proxy lnd embeds):
 * - TLS with a self-signed P-256 certificate shaped like lnd's tls.cert (tls-certificates.ts), made at start.
 * - The macaroon in the `Grpc-Metadata-macaroon` header (hex). Checked after the proxy has parsed the request
 *   (it is a gRPC interceptor in lnd), failing as lnd does with gRPC code 2 (HTTP 500): "expected 1 macaroon,
 *   got 0", Go's hex error, "verification failed: signature mismatch after caveat verification" for one it did
 *   not issue, "permission denied" for one without the permission (SendPaymentV2 offchain:write,
 *   TrackPaymentV2 and ChannelBalance offchain:read).
 * - `POST /v2/router/send` (SendPaymentV2) and `GET /v2/router/track/{payment_hash}` (TrackPaymentV2): HTTP
 *   200 and one `{"result": Payment}` line per state, the current state first (INITIATED shown as IN_FLIGHT,
 *   as with lnd's default routerrpc.usestatusinitiated=false), then the HTLC in flight, then the final state,
 *   and the end of the body; `no_inflight_updates` keeps only the final one. An error before the first line
 *   answers the gRPC code's HTTP status with an `{"error": {"code","message","details"}}` line; an error the
 *   proxy finds itself (a body or path parameter it cannot parse, an unknown path) the bare status object.
 * - SendPaymentV2's checks (extractIntentFromSendRequest): the invoice decoded for the node's network ("invoice
 *   not for current active network '…'"), its expiry ("invoice expired. Valid until …"), sat and msat amounts
 *   mutually exclusive, an amount required for an amountless invoice and refused for one with an amount.
 * - A payment table as lnd keeps it (paymentsdb): a new payment of a hash that is INITIATED, IN_FLIGHT or
 *   SUCCEEDED is refused with AlreadyExists (HTTP 409) "payment already exists", "payment is in transition",
 *   "invoice is already paid"; a FAILED one may be paid again. TrackPaymentV2 of an unknown hash answers
 *   NotFound (HTTP 404) "payment isn't initiated".
 * - fee_limit_msat / fee_limit_sat: a route whose fee is above the limit is not tried (FAILED, NO_ROUTE, no
 *   HTLC); 0 means zero-fee routes only, as in lnd. A payment larger than the local balance fails with
 *   INSUFFICIENT_BALANCE without an HTLC. Otherwise one HTLC is sent (network.settle) over a two-hop route.
 * - Payment JSON as lnd's REST proxy writes it (protojson, EmitUnpopulated, proto field names): 64-bit
 *   integers as strings, enums by name, bytes base64, payment_preimage hex (zeros until settled).
 * - `GET /v1/balance/channels` (ChannelBalance): the ChannelBalanceResponse, local_balance from the double's
 *   balance (lowered by every payment that succeeds, fee included).
 *
 * What it leaves out: every other RPC; multi-part payments (always one HTLC), retries over other routes,
 * mission control, the payment timeout (lnd only fails on it when no HTLC is in flight, and here the only
 * HTLC goes out at once); `cancelable`, keysend, AMP and the SendPaymentRequest fields Airlock does not use
 * (a call that sets one is refused with a message saying so, rather than silently ignored); real macaroons
 * (opaque hex tokens stand in for them: the double only compares what it issued); the WebSocket proxy; TLS
 * client certificates; persistence (the table lives as long as the server).
 *
 * Test hooks (one-shot, per route): `stall` (accept the call and never answer; a stalled send still pays),
 * `drop` (cut the TCP connection after n stream lines), `end` (end the body cleanly after n lines, as a proxy
 * closing long streams would), `shutdown` (lnd's error line after n lines when its router stops), `http_500`
 * (answer 500 before doing anything), and `wrong_preimage`, which lnd never does (a SUCCEEDED line with
 * another preimage, to show the client checks it).
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { decodeBolt11, type DecodedInvoice } from '../../packages/chains/src/lightning/bolt11.ts';
import { TestNode, type LightningNetwork, type Network, type Settlement } from '../lightning-network.ts';
import { makeCertificate, type TlsCertificate } from './tls-certificates.ts';

export type LndRoute = 'send' | 'track' | 'balance';
export type LndFault =
  /** Accept the call and write nothing, ever (a send still pays). */
  | { kind: 'stall' }
  /** Close the TCP connection after `afterLines` lines of the stream. */
  | { kind: 'drop'; afterLines: number }
  /** End the body cleanly after `afterLines` lines, before the final state (a proxy that closes long streams). */
  | { kind: 'end'; afterLines: number }
  /** After `afterLines` lines, the error line lnd writes when its router stops ("routerrpc server shutting down"). */
  | { kind: 'shutdown'; afterLines: number }
  /** Answer HTTP 500 before doing anything. */
  | { kind: 'http_500'; message?: string }
  /** NOT something lnd does: report SUCCEEDED with another preimage, to check the client does not believe it. */
  | { kind: 'wrong_preimage' };

export interface LndRestDoubleOptions {
  network: LightningNetwork;
  /** The chain lnd runs on; invoices for another are refused. Default regtest. */
  chain?: Network;
  /** Sum of our side of the channels. Default 10 000 000 sat. */
  localBalanceMsat?: bigint;
  /** lnd's routerrpc.usestatusinitiated: show INITIATED instead of IN_FLIGHT for a payment with no HTLC yet. */
  useStatusInitiated?: boolean;
  /** Serve this certificate (lnd's tlscertpath/tlskeypath) instead of a fresh self-signed one. */
  certificate?: TlsCertificate;
}

export interface LndRestDouble {
  /** https://127.0.0.1:<port> */
  url: string;
  /** The server's certificate (what an operator copies from lnd's tls.cert). */
  certPem: string;
  /** A macaroon with every permission, like admin.macaroon. */
  adminMacaroonHex: string;
  /** Issues a macaroon with exactly these permissions ("offchain:read", …). */
  bakeMacaroon(permissions: string[]): string;
  /** Makes the next call of `route` misbehave. */
  injectFault(route: LndRoute, fault: LndFault): void;
  /** Every request received: method, path and what it carried as macaroon header (for leak checks). */
  readonly requests: { method: string; path: string; macaroon: string | undefined }[];
  /** The payment table's status of a hash (lnd's names), for assertions. */
  paymentStatus(paymentHash: string): 'INITIATED' | 'IN_FLIGHT' | 'SUCCEEDED' | 'FAILED' | undefined;
  localBalanceMsat: bigint;
  close(): Promise<void>;
}

// gRPC codes and the HTTP status grpc-gateway maps them to (runtime.HTTPStatusFromCode).
const CODE = { InvalidArgument: 3, NotFound: 5, AlreadyExists: 6, Unimplemented: 12, Unknown: 2, Internal: 13 } as const;
const HTTP_STATUS: Record<number, number> = { 2: 500, 3: 400, 5: 404, 6: 409, 12: 501, 13: 500 };

const PERMISSION: Record<LndRoute, string> = { send: 'offchain:write', track: 'offchain:read', balance: 'offchain:read' };
const ALL_PERMISSIONS = ['onchain:read', 'onchain:write', 'offchain:read', 'offchain:write', 'address:read', 'address:write', 'message:read', 'message:write', 'peers:read', 'peers:write', 'info:read', 'info:write', 'invoices:read', 'invoices:write', 'signer:generate', 'macaroon:generate', 'macaroon:read', 'macaroon:write'];

// SendPaymentRequest (router.proto): what the double acts on, and what it refuses to pretend to support.
const INT64_FIELDS = ['amt', 'amt_msat', 'fee_limit_sat', 'fee_limit_msat'];
const HANDLED_FIELDS = new Set(['payment_request', 'timeout_seconds', 'no_inflight_updates', 'max_parts', 'allow_self_payment', 'time_pref', ...INT64_FIELDS]);
const UNSIMULATED_FIELDS = new Set(['dest', 'payment_hash', 'final_cltv_delta', 'cltv_limit', 'route_hints', 'dest_custom_records', 'last_hop_pubkey', 'dest_features', 'outgoing_chan_ids', 'payment_addr', 'max_shard_size_msat', 'amp', 'cancelable', 'first_hop_custom_records']);

type Status = 'INITIATED' | 'IN_FLIGHT' | 'SUCCEEDED' | 'FAILED';

interface Htlc {
  attemptId: bigint;
  status: 'IN_FLIGHT' | 'SUCCEEDED' | 'FAILED';
  feeMsat: bigint;
  attemptTimeNs: bigint;
  resolveTimeNs: bigint;
  failureCode?: string;
  preimage?: string;
}

interface PaymentRecord {
  hash: string;
  invoice: DecodedInvoice;
  paymentRequest: string;
  valueMsat: bigint;
  creationTimeNs: bigint;
  index: bigint;
  htlcs: Htlc[];
  failureReason?: string;
  subscribers: Set<Subscriber>;
}

interface Subscriber {
  send(payment: PaymentRecord): void;
}

export async function startLndRestDouble(options: LndRestDoubleOptions): Promise<LndRestDouble> {
  const { network } = options;
  const chain = options.chain ?? 'regtest';
  const tls = options.certificate ?? makeCertificate();
  const macaroons = new Map<string, Set<string>>();
  const bakeMacaroon = (permissions: string[]) => {
    const hex = `0201036c6e64${randomBytes(40).toString('hex')}`; // version 2, location "lnd", then opaque
    macaroons.set(hex, new Set(permissions));
    return hex;
  };
  const adminMacaroonHex = bakeMacaroon(ALL_PERMISSIONS);
  const faults = new Map<LndRoute, LndFault>();
  const payments = new Map<string, PaymentRecord>();
  const requests: LndRestDouble['requests'] = [];
  const routerNode = new TestNode();
  let nextIndex = 1n;
  let nextAttemptId = 1n;

  const double: LndRestDouble = {
    url: '',
    certPem: tls.certPem,
    adminMacaroonHex,
    bakeMacaroon,
    injectFault: (route, fault) => void faults.set(route, fault),
    requests,
    paymentStatus: (hash) => {
      const record = payments.get(hash);
      return record && statusOf(record);
    },
    localBalanceMsat: options.localBalanceMsat ?? 10_000_000_000n,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };

  const server: Server = createServer({ key: tls.keyPem, cert: tls.certPem }, (req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) bareError(res, CODE.Internal, `lnd-rest-double: ${String(error)}`);
      else res.destroy();
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'https://lnd');
    const macaroonHeader = req.headers['grpc-metadata-macaroon'];
    requests.push({ method: req.method ?? '', path: url.pathname, macaroon: typeof macaroonHeader === 'string' ? macaroonHeader : undefined });
    const body = await readBody(req);
    const route = routeOf(url.pathname);
    if (!route) return bareError(res, CODE.NotFound, 'Not Found');
    if (req.method !== (route === 'send' ? 'POST' : 'GET')) return bareError(res, CODE.Unimplemented, 'Method Not Allowed');
    const fault = faults.get(route);
    faults.delete(route);
    const stream = route === 'balance' ? undefined : new StreamWriter(res, fault);
    if (fault?.kind === 'http_500') return stream ? stream.error(CODE.Unknown, fault.message ?? 'routerrpc server shutting down') : bareError(res, CODE.Unknown, fault.message ?? 'server shutting down');
    if (fault?.kind === 'stall' && route !== 'send') return; // never answers; the client's deadline ends it

    // The REST proxy parses the request before lnd's gRPC server (and its macaroon interceptor) sees it.
    let parsed: { send?: SendRequest; trackHash?: Buffer; noInflightUpdates?: boolean };
    try {
      if (route === 'send') parsed = { send: parseSendRequest(body) };
      else if (route === 'track') parsed = parseTrackRequest(url);
      else parsed = {};
    } catch (e) {
      return bareError(res, CODE.InvalidArgument, (e as Error).message);
    }

    const denied = checkMacaroon(req.headers['grpc-metadata-macaroon'], PERMISSION[route]);
    if (denied) return stream ? stream.error(CODE.Unknown, denied) : bareError(res, CODE.Unknown, denied);

    if (route === 'balance') return writeJson(res, 200, channelBalance(double.localBalanceMsat));
    if (route === 'track') return track(parsed.trackHash!, parsed.noInflightUpdates ?? false, stream!);
    return send(parsed.send!, stream!);
  }

  function checkMacaroon(header: string | string[] | undefined, permission: string): string | undefined {
    const values = header === undefined ? [] : Array.isArray(header) ? header : [header];
    if (values.length !== 1) return `expected 1 macaroon, got ${values.length}`;
    const hex = values[0]!;
    const bad = /[^0-9a-fA-F]/.exec(hex);
    if (bad) return `encoding/hex: invalid byte: U+${bad[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')} '${bad[0]}'`;
    if (hex.length % 2 === 1) return 'encoding/hex: odd length hex string';
    const permissions = macaroons.get(hex.toLowerCase());
    if (!permissions) return 'verification failed: signature mismatch after caveat verification';
    if (!permissions.has(permission)) return 'permission denied';
    return undefined;
  }

  function send(request: SendRequest, stream: StreamWriter): void {
    let intent: { invoice: DecodedInvoice; valueMsat: bigint; feeLimitMsat: bigint };
    try {
      intent = extractIntent(request, chain);
    } catch (e) {
      return stream.error(CODE.Unknown, (e as Error).message);
    }
    const { invoice, valueMsat, feeLimitMsat } = intent;
    const existing = payments.get(invoice.paymentHash);
    if (existing) {
      const refusal = { INITIATED: 'payment already exists', IN_FLIGHT: 'payment is in transition', SUCCEEDED: 'invoice is already paid', FAILED: undefined }[statusOf(existing)];
      if (refusal) return stream.error(CODE.AlreadyExists, refusal);
    }
    const record: PaymentRecord = {
      hash: invoice.paymentHash,
      invoice,
      paymentRequest: request.paymentRequest,
      valueMsat,
      creationTimeNs: BigInt(Date.now()) * 1_000_000n,
      index: nextIndex++,
      htlcs: [],
      subscribers: new Set(),
    };
    payments.set(record.hash, record);
    subscribe(record, request.noInflightUpdates, stream);
    void pay(record, feeLimitMsat);
  }

  async function pay(record: PaymentRecord, feeLimitMsat: bigint): Promise<void> {
    // Path finding first: no HTLC leaves when no route fits the balance or the fee limit.
    const routeFee = network.feeFor(record.valueMsat);
    if (record.valueMsat > double.localBalanceMsat) return fail(record, 'INSUFFICIENT_BALANCE');
    if (routeFee > feeLimitMsat) return fail(record, 'NO_ROUTE');
    const htlc: Htlc = { attemptId: nextAttemptId++, status: 'IN_FLIGHT', feeMsat: routeFee, attemptTimeNs: nowNs(), resolveTimeNs: 0n };
    record.htlcs.push(htlc);
    notify(record);
    let settlement: Settlement;
    try {
      settlement = await network.settle(record.hash, record.valueMsat, feeLimitMsat);
    } catch {
      settlement = { status: 'failed', reason: 'error' };
    }
    htlc.resolveTimeNs = nowNs();
    if (settlement.status === 'succeeded') {
      Object.assign(htlc, { status: 'SUCCEEDED', feeMsat: settlement.feeMsat, preimage: settlement.preimage });
      double.localBalanceMsat -= record.valueMsat + settlement.feeMsat;
      return notify(record);
    }
    const [failureCode, reason] = HTLC_FAILURE[settlement.reason] ?? ['UNKNOWN_FAILURE', 'ERROR'];
    Object.assign(htlc, { status: 'FAILED', failureCode });
    notify(record); // the attempt failed, the payment not yet: shown as in flight (INITIATED)
    fail(record, reason);
  }

  function fail(record: PaymentRecord, reason: string): void {
    record.failureReason = reason;
    notify(record);
  }

  function track(hashBytes: Buffer, noInflightUpdates: boolean, stream: StreamWriter): void {
    if (hashBytes.length !== 32) return stream.error(CODE.Unknown, `invalid hash length of ${hashBytes.length}, want 32`);
    const record = payments.get(hashBytes.toString('hex'));
    if (!record) return stream.error(CODE.NotFound, "payment isn't initiated");
    subscribe(record, noInflightUpdates, stream);
  }

  /** controlTower.SubscribePayment + trackPaymentStream: the current state now, changes until final. */
  function subscribe(record: PaymentRecord, noInflightUpdates: boolean, stream: StreamWriter): void {
    const subscriber: Subscriber = {
      send: (payment) => {
        const status = statusOf(payment);
        const final = status === 'SUCCEEDED' || status === 'FAILED';
        if (!final && noInflightUpdates) return;
        stream.result(marshalPayment(payment, options.useStatusInitiated ?? false));
        if (final) {
          record.subscribers.delete(subscriber);
          stream.end();
        }
      },
    };
    record.subscribers.add(subscriber);
    stream.onClose(() => record.subscribers.delete(subscriber));
    subscriber.send(record);
  }

  function notify(record: PaymentRecord): void {
    for (const subscriber of [...record.subscribers]) subscriber.send(record);
  }

  const address = await new Promise<AddressInfo>((resolve) => server.listen(0, '127.0.0.1', () => resolve(server.address() as AddressInfo)));
  double.url = `https://127.0.0.1:${address.port}`;
  return double;

  function marshalPayment(record: PaymentRecord, useStatusInitiated: boolean): Record<string, unknown> {
    const settled = record.htlcs.filter((h) => h.status === 'SUCCEEDED');
    const feeMsat = settled.reduce((sum, h) => sum + h.feeMsat, 0n);
    const status = statusOf(record);
    const creationSeconds = record.creationTimeNs / 1_000_000_000n;
    return {
      payment_hash: record.hash,
      value: String(record.valueMsat / 1000n),
      creation_date: String(creationSeconds),
      fee: String(feeMsat / 1000n),
      payment_preimage: settled.at(-1)?.preimage ?? '0'.repeat(64),
      value_sat: String(record.valueMsat / 1000n),
      value_msat: String(record.valueMsat),
      payment_request: record.paymentRequest,
      status: status === 'INITIATED' && !useStatusInitiated ? 'IN_FLIGHT' : status,
      fee_sat: String(feeMsat / 1000n),
      fee_msat: String(feeMsat),
      creation_time_ns: String(record.creationTimeNs),
      htlcs: record.htlcs.map((h) => marshalHtlc(record, h)),
      payment_index: String(record.index),
      failure_reason: record.failureReason ? `FAILURE_REASON_${record.failureReason}` : 'FAILURE_REASON_NONE',
      first_hop_custom_records: {},
    };
  }

  function marshalHtlc(record: PaymentRecord, htlc: Htlc): Record<string, unknown> {
    const amount = record.valueMsat;
    const hop = (pubKey: string, forwardMsat: bigint, feeMsat: bigint, last: boolean) => ({
      chan_id: String(BigInt(`0x${randomBytes(7).toString('hex')}`)),
      chan_capacity: '0',
      amt_to_forward: String(forwardMsat / 1000n),
      fee: String(feeMsat / 1000n),
      expiry: 600,
      amt_to_forward_msat: String(forwardMsat),
      fee_msat: String(feeMsat),
      pub_key: pubKey,
      tlv_payload: true,
      mpp_record: last && record.invoice.paymentSecret ? { payment_addr: Buffer.from(record.invoice.paymentSecret, 'hex').toString('base64'), total_amt_msat: String(amount) } : null,
      amp_record: null,
      custom_records: {},
      metadata: '',
      blinding_point: '',
      encrypted_data: '',
      total_amt_msat: '0',
    });
    return {
      attempt_id: String(htlc.attemptId),
      status: htlc.status,
      route: {
        total_time_lock: 640,
        total_fees: String(htlc.feeMsat / 1000n),
        total_amt: String((amount + htlc.feeMsat) / 1000n),
        hops: [hop(routerNode.nodeId, amount, htlc.feeMsat, false), hop(record.invoice.payee, amount, 0n, true)],
        total_fees_msat: String(htlc.feeMsat),
        total_amt_msat: String(amount + htlc.feeMsat),
        first_hop_amount_msat: String(amount + htlc.feeMsat),
        custom_channel_data: '',
      },
      attempt_time_ns: String(htlc.attemptTimeNs),
      resolve_time_ns: String(htlc.resolveTimeNs),
      failure: htlc.failureCode
        ? { code: htlc.failureCode, channel_update: null, htlc_msat: '0', onion_sha_256: '', cltv_expiry: 0, flags: 0, failure_source_index: 2, height: 0 }
        : null,
      preimage: htlc.preimage ? Buffer.from(htlc.preimage, 'hex').toString('base64') : '',
    };
  }
}

/** The network's failure words, as the HTLC failure the payee or a hop sends and the reason lnd records. */
const HTLC_FAILURE: Record<string, [string, string]> = {
  no_route: ['TEMPORARY_CHANNEL_FAILURE', 'NO_ROUTE'],
  incorrect_payment_details: ['INCORRECT_OR_UNKNOWN_PAYMENT_DETAILS', 'INCORRECT_PAYMENT_DETAILS'],
  // The payee already settled this hash for another payer: it refuses the HTLC like an unknown one.
  already_paid: ['INCORRECT_OR_UNKNOWN_PAYMENT_DETAILS', 'INCORRECT_PAYMENT_DETAILS'],
  timeout: ['MPP_TIMEOUT', 'TIMEOUT'],
  insufficient_balance: ['TEMPORARY_CHANNEL_FAILURE', 'INSUFFICIENT_BALANCE'],
};

/** paymentsdb decidePaymentStatus: in-flight HTLCs first, then a settled one, then the failure reason. */
function statusOf(record: PaymentRecord): Status {
  if (record.htlcs.some((h) => h.status === 'IN_FLIGHT')) return 'IN_FLIGHT';
  if (record.htlcs.some((h) => h.status === 'SUCCEEDED')) return 'SUCCEEDED';
  if (record.failureReason) return 'FAILED';
  return 'INITIATED';
}

interface SendRequest {
  paymentRequest: string;
  amtSat: bigint;
  amtMsat: bigint;
  feeLimitSat: bigint;
  feeLimitMsat: bigint;
  noInflightUpdates: boolean;
}

/** protojson's reading of a SendPaymentRequest: proto or lowerCamel names, int64 as string or number. */
function parseSendRequest(body: string): SendRequest {
  let value: unknown;
  try {
    value = body.trim() === '' ? {} : JSON.parse(body);
  } catch {
    throw new Error('proto: syntax error: unexpected token');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new Error('proto: syntax error: expected object');
  const fields: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    const name = key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
    if (!HANDLED_FIELDS.has(name) && !UNSIMULATED_FIELDS.has(name)) throw new Error(`proto: unknown field "${key}"`);
    fields[name] = v;
  }
  for (const name of UNSIMULATED_FIELDS) {
    const v = fields[name];
    if (v !== undefined && v !== null && v !== false && v !== 0 && v !== '0' && v !== '' && !(Array.isArray(v) && v.length === 0)) throw new Error(`lnd-rest-double does not simulate SendPaymentRequest.${name}`);
  }
  const int64 = (name: string): bigint => {
    const v = fields[name];
    if (v === undefined || v === null) return 0n;
    if ((typeof v === 'string' && /^-?\d+$/.test(v)) || (typeof v === 'number' && Number.isInteger(v))) return BigInt(v);
    throw new Error(`proto: invalid value for int64 field ${name}: ${JSON.stringify(v)}`);
  };
  const paymentRequest = fields.payment_request ?? '';
  if (typeof paymentRequest !== 'string') throw new Error('proto: invalid value for string field payment_request');
  const noInflight = fields.no_inflight_updates ?? false;
  if (typeof noInflight !== 'boolean') throw new Error('proto: invalid value for bool field no_inflight_updates');
  return { paymentRequest, amtSat: int64('amt'), amtMsat: int64('amt_msat'), feeLimitSat: int64('fee_limit_sat'), feeLimitMsat: int64('fee_limit_msat'), noInflightUpdates: noInflight };
}

/** extractIntentFromSendRequest, for the fields the double handles. */
function extractIntent(request: SendRequest, chain: Network): { invoice: DecodedInvoice; valueMsat: bigint; feeLimitMsat: bigint } {
  const feeLimitMsat = unmarshallAmount(request.feeLimitSat, request.feeLimitMsat);
  const requestedMsat = unmarshallAmount(request.amtSat, request.amtMsat);
  if (request.paymentRequest === '') throw new Error('lnd-rest-double only pays payment requests');
  let invoice: DecodedInvoice;
  try {
    // Expiry is lnd's next check (ValidatePayReqExpiry), with its own message: decode as of the invoice's birth.
    invoice = decodeBolt11(request.paymentRequest, { now: 0, network: chain });
  } catch (e) {
    const code = (e as { code?: string }).code;
    throw new Error(code === 'invoice_wrong_network' ? `invoice not for current active network '${chain}'` : `invalid payment request: ${(e as Error).message}`);
  }
  if (invoice.expiresAt <= Date.now()) throw new Error(`invoice expired. Valid until ${new Date(invoice.expiresAt).toISOString()}`);
  if (invoice.paymentSecret === undefined) throw new Error('payment request must contain either a payment address or blinded paths');
  if (invoice.amountMsat === undefined) {
    if (requestedMsat === 0n) throw new Error('amount must be specified when paying a zero amount invoice');
    return { invoice, valueMsat: requestedMsat, feeLimitMsat };
  }
  if (requestedMsat !== 0n) throw new Error('amount must not be specified when paying a non-zero amount invoice');
  return { invoice, valueMsat: invoice.amountMsat, feeLimitMsat };
}

/** lnrpc.UnmarshallAmt: sat or msat, never both, never negative. */
function unmarshallAmount(sat: bigint, msat: bigint): bigint {
  if (sat !== 0n && msat !== 0n) throw new Error('sat and msat arguments are mutually exclusive');
  if (sat < 0n || msat < 0n) throw new Error('amount cannot be negative');
  return sat !== 0n ? sat * 1000n : msat;
}

function parseTrackRequest(url: URL): { trackHash: Buffer; noInflightUpdates: boolean } {
  const encoded = url.pathname.slice('/v2/router/track/'.length);
  const decoded = decodeURIComponent(encoded);
  // runtime.Bytes: standard base64, else URL-safe base64; both padded.
  const std = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
  const urlSafe = /^(?:[A-Za-z0-9\-_]{4})*(?:[A-Za-z0-9\-_]{2}==|[A-Za-z0-9\-_]{3}=)?$/;
  if (!std.test(decoded) && !urlSafe.test(decoded)) throw new Error(`type mismatch, parameter: payment_hash, error: illegal base64 data at input byte ${decoded.length}`);
  const trackHash = Buffer.from(decoded.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  let noInflightUpdates = false;
  for (const [key, value] of url.searchParams) {
    if (key !== 'no_inflight_updates' && key !== 'noInflightUpdates') throw new Error(`proto: unknown query parameter ${key}`);
    const parsed = { '1': true, t: true, T: true, TRUE: true, true: true, True: true, '0': false, f: false, F: false, FALSE: false, false: false, False: false }[value];
    if (parsed === undefined) throw new Error(`strconv.ParseBool: parsing ${JSON.stringify(value)}: invalid syntax`);
    noInflightUpdates = parsed;
  }
  return { trackHash, noInflightUpdates };
}

function routeOf(pathname: string): LndRoute | undefined {
  if (pathname === '/v2/router/send') return 'send';
  if (pathname === '/v1/balance/channels') return 'balance';
  if (/^\/v2\/router\/track\/[^/]+$/.test(pathname)) return 'track';
  return undefined;
}

function channelBalance(localMsat: bigint): Record<string, unknown> {
  const amount = (msat: bigint) => ({ sat: String(msat / 1000n), msat: String(msat) });
  return {
    balance: String(localMsat / 1000n),
    pending_open_balance: '0',
    local_balance: amount(localMsat),
    remote_balance: amount(0n),
    unsettled_local_balance: amount(0n),
    unsettled_remote_balance: amount(0n),
    pending_open_local_balance: amount(0n),
    pending_open_remote_balance: amount(0n),
    custom_channel_data: '',
  };
}

/** grpc-gateway's ForwardResponseStream: headers go out with the first line; an error is a last line. */
class StreamWriter {
  private lines = 0;
  private ended = false;
  private readonly res: ServerResponse;
  private fault: LndFault | undefined;
  constructor(res: ServerResponse, fault: LndFault | undefined) {
    this.res = res;
    this.fault = fault;
  }

  result(message: Record<string, unknown>): void {
    const tampered = this.fault?.kind === 'wrong_preimage' && message.status === 'SUCCEEDED' ? { ...message, payment_preimage: randomBytes(32).toString('hex') } : message;
    this.write(JSON.stringify({ result: tampered }));
    if (this.ended || this.fault === undefined || !('afterLines' in this.fault) || this.lines < this.fault.afterLines) return;
    if (this.fault.kind === 'end') this.end();
    if (this.fault.kind === 'shutdown') this.error(CODE.Unknown, 'routerrpc server shutting down');
  }

  error(code: number, message: string): void {
    if (this.ended || this.fault?.kind === 'stall') return;
    this.fault = undefined; // the error line itself is written as is
    if (this.lines === 0) this.res.writeHead(HTTP_STATUS[code] ?? 500, { 'Content-Type': 'application/json' });
    this.write(JSON.stringify({ error: { code, message, details: [] } }));
    this.end();
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    if (this.fault?.kind === 'stall' || this.res.destroyed) return;
    if (!this.res.headersSent) this.res.writeHead(200, { 'Content-Type': 'application/json', 'Grpc-Metadata-Content-Type': 'application/grpc' });
    this.res.end();
  }

  onClose(listener: () => void): void {
    this.res.on('close', listener);
  }

  private write(line: string): void {
    if (this.ended || this.res.destroyed || this.fault?.kind === 'stall') return;
    if (!this.res.headersSent) this.res.writeHead(200, { 'Content-Type': 'application/json', 'Grpc-Metadata-Content-Type': 'application/grpc' });
    this.lines++;
    if (this.fault?.kind === 'drop' && this.lines >= this.fault.afterLines) {
      this.ended = true;
      // Once the line is out, the connection goes, mid-body: the client holds an incomplete chunked response.
      const socket = this.res.socket;
      this.res.write(`${line}\n`, () => socket?.destroy());
      return;
    }
    this.res.write(`${line}\n`);
  }
}

function bareError(res: ServerResponse, code: number, message: string): void {
  writeJson(res, HTTP_STATUS[code] ?? 500, { code, message, details: [] });
}

function writeJson(res: ServerResponse, status: number, value: unknown): void {
  res.writeHead(status, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify(value));
}

async function readBody(req: IncomingMessage): Promise<string> {
  let body = '';
  for await (const chunk of req) body += chunk;
  return body;
}

function nowNs(): bigint {
  return BigInt(Date.now()) * 1_000_000n;
}
