/**
 * LND's REST API as a LightningBackend: pays with the router's SendPaymentV2 (`POST /v2/router/send`), looks
 * payments up with TrackPaymentV2 (`GET /v2/router/track/{payment_hash}`) and reads the channel balance
 * (`GET /v1/balance/channels`). Checked against lnd's source: lnrpc/routerrpc/router.yaml (paths),
 * router.proto and lightning.proto (fields, enums), router_server.go (errors), and grpc-gateway v2.16 (the
 * REST proxy lnd embeds: how streams and errors are written).
 *
 * What LND's REST proxy sends:
 * - A streaming call answers HTTP 200 with one JSON object per line, `{"result": Payment}`, written as the
 *   payment changes, then ends the body once the payment is final. A failure after the first line is a line
 *   `{"error": {"code", "message", "details"}}` (gRPC status) and the end of the body.
 * - A streaming call that fails before its first update answers the gRPC code's HTTP status (NotFound 404,
 *   AlreadyExists 409, Unknown 500, …) with the same `{"error": {...}}` line; a request the proxy refuses
 *   itself (bad body, unknown path) answers the bare status `{"code", "message", "details"}`.
 * - 64-bit integers are JSON strings, enums their names, `payment_preimage` lowercase hex (all zeros until
 *   settled), and every field is present (`EmitUnpopulated`).
 *
 * How answers map to the port (the DEFINITE-answer rule: only a definite failure releases a hold):
 *
 *   LND answer                                           pay()                  lookup()
 *   ---------------------------------------------------  ---------------------  ----------------------------
 *   Payment SUCCEEDED, sha256(preimage) = hash           succeeded              succeeded
 *   Payment SUCCEEDED, preimage missing or not matching  throw                  throw
 *   Payment FAILED + FAILURE_REASON_X (X ≠ NONE)         failed, reason x       failed, reason x
 *     (LND marks FAILED only once no HTLC is in flight and none settled: decidePaymentStatus)
 *   Payment FAILED without a reason, unknown status      throw                  throw
 *   Payment IN_FLIGHT / INITIATED                        keep reading           in_flight
 *   body ends, or our deadline passes, after an update   in_flight              -
 *   body ends, or our deadline passes, before any update throw                  throw
 *     (LND's proxy sends the status line with the first update, so a 200 without one is not LND talking)
 *   404 + {"error":{"code":5,"message":"payment isn't initiated"}}
 *                                                        -                      not_found
 *   409 code 6 "invoice is already paid"                 lookup's answer (a SUCCEEDED payment of ours)
 *   409 code 6 "payment is in transition"                lookup's answer (in flight already)
 *   409 code 6 "payment already exists"                  lookup's answer (initiated by another call;
 *                                                        a failure read back is marked evidence 'lookup')
 *     (these refuse THIS call only; the payment they name may well be ours, sent before a crash or a retry,
 *      so they are never a failure: the hash's real state is read and reported instead)
 *   500 code 2 "invoice expired. Valid until …", "amount must (not) be specified …" and the other checks
 *     of extractIntentFromSendRequest                    throw (the same checks run here first, so LND
 *                                                        only says this on a race, and a 500 never fails)
 *   500 code 2 "verification failed: …", "expected 1 macaroon, got 0", "permission denied" (macaroon)
 *                                                        throw                  throw
 *   any other status or body, {"error"} after updates,
 *   TLS failure, refused or dropped connection           throw                  throw
 *
 * Before calling LND, pay() decodes the invoice itself and answers `failed` without sending anything when
 * it is for another network, expired, malformed, for another payment hash than the request names, or when
 * the amount rules are broken (LND's own refusals of the same cases are 500s, which must throw).
 *
 * The credential: a macaroon that can do exactly these calls. Verified against lnd's permission map
 * (SendPaymentV2 needs offchain:write, TrackPaymentV2 and ChannelBalance offchain:read) and
 * `lncli bakemacaroon --help` (cmd/commands/cmd_macaroon.go), the tightest is bound to the three RPCs:
 *
 *   lncli bakemacaroon --save_to airlock-pay.macaroon \
 *     uri:/routerrpc.Router/SendPaymentV2 uri:/routerrpc.Router/TrackPaymentV2 uri:/lnrpc.Lightning/ChannelBalance
 *
 * The broader `lncli bakemacaroon offchain:read offchain:write info:read` also works (info:read is not used
 * here), but offchain:write lets its holder do other channel-side writes as well (SendToRouteV2, channel
 * policy updates). Never give Airlock the admin macaroon.
 */
import { createHash, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { AirlockError, isAirlockError, type LightningBackend, type LightningNetwork, type LightningPayRequest, type LightningPaymentStatus } from '@airlock/core';
import { decodeBolt11, type DecodedInvoice } from '@airlock/chains';
import { LndDeadlineReached, LndTransport, type LndAnswer } from './lnd-rest-transport.ts';

export interface LndRestOptions {
  /** LND's REST listener (`restlisten`, port 8080 by default): https only, no credentials in it. */
  url: string;
  /**
   * The macaroon: its hex (as `xxd -p -c 1000 file.macaroon` prints it) or the path of the file `lncli
   * bakemacaroon --save_to` writes (binary; a file holding hex is read as hex). A path is read once, here.
   */
  macaroon: { hex: string } | { path: string };
  /**
   * LND's tls.cert (PEM text or its path), trusted as the only CA. The server presenting exactly this
   * certificate is accepted under any host name (LND's self-signed one names only localhost and the node's
   * own addresses); any certificate it issued must also carry the host name of `url`.
   */
  tlsCert: { pem: string } | { path: string };
  /** The network LND runs on; invoices for another are refused before paying. */
  network: LightningNetwork;
  /** How long pay() waits past the request's timeoutSeconds for LND's final answer. Default 30. */
  payGraceSeconds?: number;
  /** Deadline of lookup() and balance(). Default 15000. */
  requestTimeoutMs?: number;
  /** Deadline of the TCP and TLS handshake of every call. Default 10000. */
  connectTimeoutMs?: number;
}

/**
 * LND did not give an answer this backend can vouch for: the payment's outcome is unknown and its hold must
 * stay. Carries the stable code Airlock uses for it (`lightning_backend_unavailable`); it is not yet in
 * core's ERROR_CODES, so this class stands in for AirlockError until it is.
 */
export class LightningBackendError extends Error {
  readonly code = 'lightning_backend_unavailable';
  /** The HTTP status LND answered, when it answered. */
  readonly httpStatus?: number;
  /** The gRPC status code in LND's error body, when there was one. */
  readonly lndCode?: number;
  constructor(message: string, options: { cause?: unknown; httpStatus?: number; lndCode?: number } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'LightningBackendError';
    if (options.httpStatus !== undefined) this.httpStatus = options.httpStatus;
    if (options.lndCode !== undefined) this.lndCode = options.lndCode;
  }
}

// gRPC status codes LND's error bodies carry (google.golang.org/grpc/codes).
const GRPC_NOT_FOUND = 5;
const GRPC_ALREADY_EXISTS = 6;
// paymentsdb.ErrPaymentNotInitiated, the only NotFound TrackPaymentV2 gives (router_server.go subscribePayment).
// Matched exactly: a 404 from anything else (a wrong path, a proxy in front of LND) must not read as "never paid".
const PAYMENT_NOT_INITIATED = "payment isn't initiated";
const ZERO_PREIMAGE = '0'.repeat(64);
const INT32_MAX = 2 ** 31 - 1;
const INT64_MAX = 2n ** 63n - 1n;

export class LndRestBackend implements LightningBackend {
  readonly kind = 'lnd';
  readonly network: LightningNetwork;
  private readonly transport: LndTransport;
  private readonly macaroonHex: string;
  private readonly payGraceMs: number;
  private readonly requestTimeoutMs: number;

  constructor(options: LndRestOptions) {
    this.network = options.network;
    const baseUrl = parseBaseUrl(options.url);
    this.macaroonHex = loadMacaroonHex(options.macaroon);
    const certPem = loadCertificate(options.tlsCert);
    this.payGraceMs = positive(options.payGraceSeconds ?? 30, 'payGraceSeconds') * 1000;
    this.requestTimeoutMs = positive(options.requestTimeoutMs ?? 15_000, 'requestTimeoutMs');
    const connectTimeoutMs = positive(options.connectTimeoutMs ?? 10_000, 'connectTimeoutMs');
    this.transport = new LndTransport({ baseUrl, macaroonHex: this.macaroonHex, certPem, connectTimeoutMs });
  }

  async pay(request: LightningPayRequest): Promise<LightningPaymentStatus> {
    const checked = this.checkPayRequest(request);
    if ('refusal' in checked) return { status: 'failed', reason: checked.refusal };
    const body: Record<string, unknown> = {
      payment_request: request.invoice,
      fee_limit_msat: request.maxFeeMsat.toString(),
      timeout_seconds: request.timeoutSeconds,
      // The IN_FLIGHT updates are wanted: the first one is LND's word that the payment exists, which is what
      // lets a timeout answer `in_flight` rather than throw. `cancelable` stays false, so closing the stream
      // at our deadline leaves the payment running in LND for lookup() to find.
      no_inflight_updates: false,
    };
    if (checked.invoice.amountMsat === undefined) body.amt_msat = request.amountMsat!.toString();
    const deadline = Date.now() + request.timeoutSeconds * 1000 + this.payGraceMs;
    const answer = await this.call('the payment', () => this.transport.send('POST', 'v2/router/send', body, deadline));
    try {
      if (answer.status !== 200) {
        const error = await this.readError(answer);
        if (answer.status === 409 && error?.code === GRPC_ALREADY_EXISTS) return await this.stateAfterDuplicateRefusal(request.paymentHash, error.message);
        throw this.lndRefused('the payment', answer.status, error);
      }
      let updates = 0;
      try {
        for await (const line of answer.lines()) {
          const status = this.readUpdate(line, request.paymentHash, 'the payment');
          if (status.status !== 'in_flight') return status;
          updates++;
        }
      } catch (e) {
        if (e instanceof LightningBackendError) throw e;
        if (!(e instanceof LndDeadlineReached)) throw this.unavailable('the payment stream from LND broke off', e);
        if (updates === 0) throw this.unavailable('LND sent no payment update before the deadline', e);
        return { status: 'in_flight' };
      }
      if (updates === 0) throw this.unavailable('LND ended the payment stream without any update');
      return { status: 'in_flight' };
    } finally {
      answer.close();
    }
  }

  async lookup(paymentHash: string): Promise<LightningPaymentStatus> {
    if (!/^[0-9a-f]{64}$/.test(paymentHash)) throw new TypeError('the payment hash must be 32 bytes of lowercase hex');
    // grpc-gateway reads a bytes path parameter as standard, then URL-safe, base64, both padded
    // (runtime.Bytes); URL-safe keeps '/' out of the path.
    const pathHash = `${Buffer.from(paymentHash, 'hex').toString('base64url')}=`;
    const deadline = Date.now() + this.requestTimeoutMs;
    const answer = await this.call('the lookup', () => this.transport.send('GET', `v2/router/track/${pathHash}`, undefined, deadline));
    try {
      if (answer.status !== 200) {
        const error = await this.readError(answer);
        if (answer.status === 404 && error?.wrapped && error.code === GRPC_NOT_FOUND && error.message === PAYMENT_NOT_INITIATED) return { status: 'not_found' };
        throw this.lndRefused('the lookup', answer.status, error);
      }
      // TrackPaymentV2 first sends the payment's current state (controlTower.SubscribePayment), then waits
      // for changes; only that first line is wanted.
      try {
        for await (const line of answer.lines()) return this.readUpdate(line, paymentHash, 'the lookup');
      } catch (e) {
        if (e instanceof LightningBackendError) throw e;
        throw this.unavailable(e instanceof LndDeadlineReached ? 'LND sent no payment state before the deadline' : 'the lookup stream from LND broke off', e);
      }
      throw this.unavailable('LND ended the lookup stream without the payment state');
    } finally {
      answer.close();
    }
  }

  async balance(): Promise<{ msat: bigint }> {
    const deadline = Date.now() + this.requestTimeoutMs;
    const answer = await this.call('the balance request', () => this.transport.send('GET', 'v1/balance/channels', undefined, deadline));
    try {
      if (answer.status !== 200) throw this.lndRefused('the balance request', answer.status, await this.readError(answer));
      let text: string;
      try {
        text = await answer.text();
      } catch (e) {
        throw this.unavailable('the balance answer from LND broke off', e);
      }
      // local_balance is the sum of our side of every open channel; the channel reserves in it are not
      // spendable, so this is an upper bound of what can be paid.
      const msat = uint64(field(field(parseJson(text), 'local_balance'), 'msat'));
      if (msat === undefined) throw this.unavailable('LND answered the balance request without local_balance.msat');
      return { msat };
    } finally {
      answer.close();
    }
  }

  async close(): Promise<void> {
    this.transport.close();
  }

  /** The checks LND's extractIntentFromSendRequest makes, run here so that a refusal can be a definite one. */
  private checkPayRequest(request: LightningPayRequest): { invoice: DecodedInvoice } | { refusal: string } {
    if (request.maxFeeMsat < 0n || request.maxFeeMsat > INT64_MAX) return { refusal: 'invalid_fee_limit' };
    if (!Number.isInteger(request.timeoutSeconds) || request.timeoutSeconds < 1 || request.timeoutSeconds > INT32_MAX) return { refusal: 'invalid_timeout' };
    let invoice: DecodedInvoice;
    try {
      invoice = decodeBolt11(request.invoice, { now: Date.now(), network: this.network });
    } catch (e) {
      if (isAirlockError(e) && e.code.startsWith('invoice_')) return { refusal: e.code };
      throw e;
    }
    if (invoice.paymentHash !== request.paymentHash) return { refusal: 'payment_hash_mismatch' };
    if (invoice.amountMsat === undefined) {
      if (request.amountMsat === undefined) return { refusal: 'amount_required' };
      if (request.amountMsat <= 0n || request.amountMsat > INT64_MAX) return { refusal: 'invalid_amount' };
    } else if (request.amountMsat !== undefined && request.amountMsat !== invoice.amountMsat) {
      // LND refuses an amount beside an invoice that has one; the same amount is simply not sent.
      return { refusal: 'amount_mismatch' };
    }
    return { invoice };
  }

  /** One `{"result": Payment}` or `{"error": Status}` line of a payment stream, as the port's status. */
  private readUpdate(line: string, paymentHash: string, what: string): LightningPaymentStatus {
    const value = parseJson(line);
    const error = field(value, 'error');
    if (error !== undefined) throw this.lndRefused(what, 200, readStatus(error, true));
    const payment = field(value, 'result');
    if (payment === undefined || field(payment, 'payment_hash') !== paymentHash) throw this.unavailable(`LND answered ${what} with an update that is not for this payment`);
    const status = field(payment, 'status');
    switch (status) {
      case 'IN_FLIGHT':
      case 'INITIATED':
        return { status: 'in_flight' };
      case 'SUCCEEDED': {
        const preimage = field(payment, 'payment_preimage');
        const feeMsat = uint64(field(payment, 'fee_msat'));
        const amountMsat = uint64(field(payment, 'value_msat'));
        if (typeof preimage !== 'string' || !/^[0-9a-f]{64}$/.test(preimage) || preimage === ZERO_PREIMAGE) throw this.unavailable(`LND reported ${what} succeeded without a preimage`);
        if (createHash('sha256').update(Buffer.from(preimage, 'hex')).digest('hex') !== paymentHash) throw this.unavailable(`LND reported ${what} succeeded with a preimage that does not match the payment hash`);
        if (feeMsat === undefined) throw this.unavailable(`LND reported ${what} succeeded without fee_msat`);
        return { status: 'succeeded', preimage, feeMsat, ...(amountMsat !== undefined && amountMsat > 0n ? { amountMsat } : {}) };
      }
      case 'FAILED': {
        const reason = field(payment, 'failure_reason');
        if (typeof reason !== 'string' || !/^FAILURE_REASON_[A-Z_]+$/.test(reason) || reason === 'FAILURE_REASON_NONE') throw this.unavailable(`LND reported ${what} failed without a failure reason`);
        return { status: 'failed', reason: reason.slice('FAILURE_REASON_'.length).toLowerCase() };
      }
      default:
        throw this.unavailable(`LND reported a payment status this backend does not know (${typeof status === 'string' ? this.redact(status) : typeof status})`);
    }
  }

  /** LND refused this call because the hash already has a payment; that payment's state is the answer. */
  private async stateAfterDuplicateRefusal(paymentHash: string, message: string): Promise<LightningPaymentStatus> {
    const state = await this.lookup(paymentHash);
    if (state.status === 'not_found') throw this.unavailable(`LND refused the payment ("${this.redact(message)}") but has no record of it`);
    // A failure read back is LND's record of the hash, not this call's outcome: weighed as a lookup's. A payment
    // paid or in flight is someone's, maybe not Airlock's (the service decides: `evidence: 'duplicate'`).
    if (state.status === 'failed') return { ...state, evidence: 'lookup' };
    if (state.status === 'succeeded' || state.status === 'in_flight') return { ...state, evidence: 'duplicate' };
    return state;
  }

  private async call(what: string, send: () => Promise<LndAnswer>): Promise<LndAnswer> {
    try {
      return await send();
    } catch (e) {
      if (e instanceof LndDeadlineReached) throw this.unavailable(`LND did not answer ${what} in time`, e);
      throw this.unavailable(`could not reach LND for ${what}`, e);
    }
  }

  private async readError(answer: LndAnswer): Promise<LndStatus | undefined> {
    try {
      const value = parseJson(await answer.text());
      const wrapped = field(value, 'error');
      return wrapped !== undefined ? readStatus(wrapped, true) : readStatus(value, false);
    } catch {
      return undefined;
    }
  }

  private lndRefused(what: string, httpStatus: number, error: LndStatus | undefined): LightningBackendError {
    const detail = error ? `: ${this.redact(error.message)} (gRPC code ${error.code})` : '';
    return new LightningBackendError(`LND answered ${what} with HTTP ${httpStatus}${detail}`, { httpStatus, ...(error ? { lndCode: error.code } : {}) });
  }

  private unavailable(message: string, cause?: unknown): LightningBackendError {
    const reason = cause instanceof Error && !(cause instanceof LndDeadlineReached) ? `: ${this.redact(cause.message)}` : '';
    return new LightningBackendError(`${message}${reason}`, cause === undefined ? {} : { cause });
  }

  /** Text from LND or the network, shortened and with the macaroon cut out should anything ever echo it. */
  private redact(text: string): string {
    const cleaned = text.replace(new RegExp(this.macaroonHex, 'gi'), '[macaroon]').replace(/[\u0000-\u001f\u007f]/g, ' ');
    return cleaned.length > 300 ? `${cleaned.slice(0, 300)}…` : cleaned;
  }
}

interface LndStatus {
  code: number;
  message: string;
  /** Inside `{"error": …}` (a streaming call's error line) rather than the proxy's bare status. */
  wrapped: boolean;
}

function readStatus(value: unknown, wrapped: boolean): LndStatus | undefined {
  const code = field(value, 'code');
  const message = field(value, 'message');
  if (typeof code !== 'number' || typeof message !== 'string') return undefined;
  return { code, message, wrapped };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new LightningBackendError('LND sent a body that is not JSON');
  }
}

/** An own member of a JSON object, or undefined. */
function field(value: unknown, key: string): unknown {
  if (value === null || typeof value !== 'object' || Array.isArray(value) || !Object.hasOwn(value, key)) return undefined;
  return (value as Record<string, unknown>)[key];
}

/** A protobuf uint64/int64 as LND's REST proxy writes it (a decimal string), or undefined. */
function uint64(value: unknown): bigint | undefined {
  if (typeof value === 'string' && /^\d{1,20}$/.test(value)) return BigInt(value);
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return BigInt(value);
  return undefined;
}

function parseBaseUrl(url: string): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new AirlockError('config_invalid', 'the LND REST URL is not a URL');
  }
  if (parsed.protocol !== 'https:') throw new AirlockError('config_invalid', 'the LND REST URL must be https (LND serves REST over TLS only)');
  if (parsed.username || parsed.password) throw new AirlockError('config_invalid', 'the LND REST URL must not carry credentials (the macaroon is given separately)');
  if (parsed.search || parsed.hash) throw new AirlockError('config_invalid', 'the LND REST URL must not have a query or fragment');
  // Paths are resolved against the base, so a prefix (LND behind a reverse proxy at /lnd/) is kept.
  if (!parsed.pathname.endsWith('/')) parsed.pathname += '/';
  return parsed;
}

function loadMacaroonHex(source: LndRestOptions['macaroon']): string {
  let hex: string;
  if ('hex' in source) {
    hex = source.hex.trim().toLowerCase();
  } else {
    let bytes: Buffer;
    try {
      bytes = readFileSync(source.path);
    } catch (cause) {
      throw new AirlockError('config_invalid', `cannot read the LND macaroon file ${source.path}`, { cause });
    }
    const text = bytes.toString('latin1').trim();
    hex = /^[0-9a-fA-F]+$/.test(text) ? text.toLowerCase() : bytes.toString('hex');
  }
  // LND accepts only version 2 macaroons (macaroons.CheckMacAuth), whose binary form starts with the byte 2.
  // Checked here so that a wrong file (tls.cert, a key) is a configuration error, not a failed call later.
  if (!/^(?:[0-9a-f]{2})+$/.test(hex) || !hex.startsWith('02')) throw new AirlockError('config_invalid', 'the LND macaroon is not a version 2 macaroon (hex or the binary file lncli writes)');
  return hex;
}

function loadCertificate(source: LndRestOptions['tlsCert']): string {
  let pem: string;
  if ('pem' in source) {
    pem = source.pem;
  } else {
    try {
      pem = readFileSync(source.path, 'utf8');
    } catch (cause) {
      throw new AirlockError('config_invalid', `cannot read LND's TLS certificate ${source.path}`, { cause });
    }
  }
  try {
    new X509Certificate(pem);
  } catch (cause) {
    throw new AirlockError('config_invalid', "LND's TLS certificate is not a PEM certificate", { cause });
  }
  return pem;
}

function positive(value: number, name: string): number {
  if (!Number.isFinite(value) || value <= 0) throw new AirlockError('config_invalid', `${name} must be a positive number`);
  return value;
}
