/**
 * Nostr Wallet Connect (NIP-47) as a LightningBackend: Airlock is the CLIENT of an operator's wallet service
 * (Alby Hub, a custodial wallet, …), holding only the connection secret from a `nostr+walletconnect://` string.
 *
 * Start-up refuses, before any payment, a wallet service that:
 * - publishes no info event (kind 13194) on its relays;
 * - does not offer NIP-44 (`nip44_v2` in the info event's `encryption` tag). NIP-04 is the deprecated scheme
 *   (AES-CBC without authentication, kept in NIP-47 for backward compatibility only); Airlock has no NIP-04 code
 *   outside its key backends, and a wallet service that has not moved on is refused rather than supported;
 * - lacks pay_invoice or lookup_invoice: without lookups no uncertain payment could ever be confirmed, and its
 *   hold would stay forever;
 * - says (get_info, when offered) it is on another network than the one Airlock was configured for.
 *
 * FEES: NIP-47 pay_invoice has no fee-limit parameter, so this backend CANNOT enforce `maxFeeMsat`
 * (`enforcesMaxFee` is false). The fee ceiling is whatever the wallet service's own budget and fee reserve for
 * this connection allow: configure it there. Airlock charges the fee the wallet reports (`fees_paid`) and the
 * payment service alerts when it is above the maximum. When the wallet reports none (neither in its answer nor in
 * its record), the fee is unknown (`feeUnreported`): the service charges the larger of the request's maximum and
 * its default fee limit for the amount, and alerts.
 *
 * How each answer maps to a payment status, and why: see nwc-outcomes.ts.
 */
import { AirlockError, type LightningBackend, type LightningNetwork, type LightningPayRequest, type LightningPaymentStatus } from '@airlock/core';
import { confirmedOutcome, confirmedRefusal, judgeLookupReply, judgePayReply } from './nwc-outcomes.ts';
import { NwcTransport, type NwcTransportStats, type WalletInfo } from './nwc-transport.ts';
import { parseNwcUri, type NwcConnection } from './nwc-uri.ts';

/** Everything the composition root needs to build the backend from a connection string. */
export interface NwcBackendOptions {
  /** `nostr+walletconnect://…` from the wallet service. Holds the connection secret: never logged or echoed. */
  connectionUri: string;
  /** The network the wallet pays on; checked against the wallet's get_info when it offers it. */
  network: LightningNetwork;
  /** Accept plain `ws://` relays on non-loopback hosts (default: refused). */
  allowInsecureRelays?: boolean;
  /** How long start-up waits for the wallet's info event. Default 10 s. */
  infoTimeoutMs?: number;
  /** How long lookup_invoice, get_balance and get_info wait for an answer. Default 30 s. */
  requestTimeoutMs?: number;
  /**
   * How much longer than the request's `timeoutSeconds` pay waits for the wallet's answer, and how long the
   * confirming lookup after an ambiguous answer may take: pay returns within timeoutSeconds + 2 x this. Default 5 s.
   */
  payGraceMs?: number;
  /** Connection trouble and dropped responses (never contents, never the secret). */
  log?: (message: string) => void;
}

const REQUIRED_METHODS = ['pay_invoice', 'lookup_invoice'] as const;
const HEX64 = /^[0-9a-f]{64}$/;
const NETWORK_NAMES: Record<string, LightningNetwork> = { mainnet: 'bitcoin', bitcoin: 'bitcoin', testnet: 'testnet', signet: 'signet', regtest: 'regtest' };

export class NwcBackend implements LightningBackend {
  readonly kind = 'nwc';
  readonly network: LightningNetwork;
  /** NIP-47 cannot carry a fee limit: the wallet service's own budget is the limit (see the file comment). */
  readonly enforcesMaxFee = false;
  /** The parsed connection (its toString and JSON leave the secret out). */
  readonly connection: NwcConnection;
  private readonly transport: NwcTransport;
  private readonly requestTimeoutMs: number;
  private readonly payGraceMs: number;
  private readonly log: (message: string) => void;

  private constructor(connection: NwcConnection, transport: NwcTransport, options: NwcBackendOptions) {
    this.connection = connection;
    this.transport = transport;
    this.network = options.network;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
    this.payGraceMs = options.payGraceMs ?? 5_000;
    this.log = options.log ?? (() => {});
  }

  /** Parses the connection string, connects to its relays and checks the wallet service (see the file comment). */
  static async connect(options: NwcBackendOptions): Promise<NwcBackend> {
    const connection = parseNwcUri(options.connectionUri, { allowInsecureRelays: options.allowInsecureRelays ?? false });
    const transport = new NwcTransport(connection, options.log);
    const info = await transport.open(options.infoTimeoutMs ?? 10_000);
    const backend = new NwcBackend(connection, transport, options);
    try {
      checkInfo(info);
      if (info.methods.has('get_info')) await backend.checkGetInfo();
    } catch (e) {
      transport.close();
      throw e;
    }
    return backend;
  }

  /** What arrived from the relays so far (dropped forgeries, stray responses, answers). */
  get stats(): Readonly<NwcTransportStats> {
    return this.transport.stats;
  }

  async pay(request: LightningPayRequest): Promise<LightningPaymentStatus> {
    const paymentHash = checkHash(request.paymentHash);
    if (!Number.isFinite(request.timeoutSeconds) || request.timeoutSeconds <= 0) throw new AirlockError('invalid_request', 'timeoutSeconds must be positive');
    const params: Record<string, unknown> = { invoice: request.invoice };
    if (request.amountMsat !== undefined) params.amount = jsonMsat(request.amountMsat);
    const reply = await this.transport.request('pay_invoice', params, {
      timeoutMs: request.timeoutSeconds * 1000 + this.payGraceMs,
      // A wallet that honours `expiration` will not start this payment if a relay hands it over after Airlock
      // stopped waiting. Not relied on: NIP-47 says "should", and not every wallet service checks it.
      expiresAt: Math.floor(Date.now() / 1000) + Math.ceil(request.timeoutSeconds),
    });
    const verdict = judgePayReply(reply, paymentHash);
    if (verdict.kind === 'paid') return verdict.status;
    const looked = await this.lookupForConfirmation(paymentHash);
    switch (verdict.kind) {
      case 'paid_fee_unknown':
        // The fee from the wallet's record when it reports one; otherwise it is unknown, and the service charges at
        // least its default fee limit for the amount (the request's maximum is the agent's choice, and may be 0).
        if (looked?.status === 'succeeded' && !looked.feeUnreported) return { status: 'succeeded', preimage: verdict.preimage, feeMsat: looked.feeMsat };
        return { status: 'succeeded', preimage: verdict.preimage, feeMsat: request.maxFeeMsat, feeUnreported: true };
      case 'refused': {
        // Noted here (the operator's log): the payment stays in flight until another copy of the request can no
        // longer arrive, and the reconciler's lookup then concludes it.
        const outcome = confirmedRefusal(verdict.status, looked);
        this.log(`nwc: pay_invoice refused (${verdict.status.reason}); lookup_invoice says ${looked?.status ?? 'nothing'}: ${outcome.status === 'failed' ? 'failed once the grace is over' : outcome.status}`);
        return outcome;
      }
      case 'confirm': {
        // Even the wallet's own error reply is about one copy of the request: another relay's copy may still be
        // taken up. A failure read back is weighed as a lookup's (after the grace) either way.
        const outcome = confirmedOutcome(looked);
        this.log(`nwc: pay_invoice: ${verdict.why}; lookup_invoice says ${looked?.status ?? 'nothing'}: ${outcome.status}`);
        return outcome;
      }
    }
  }

  lookup(paymentHash: string): Promise<LightningPaymentStatus> {
    return this.lookupWithin(checkHash(paymentHash), this.requestTimeoutMs);
  }

  private async lookupWithin(paymentHash: string, timeoutMs: number): Promise<LightningPaymentStatus> {
    return judgeLookupReply(await this.transport.request('lookup_invoice', { payment_hash: paymentHash }, { timeoutMs }), paymentHash);
  }

  async balance(): Promise<{ msat: bigint }> {
    if (!this.transport.info?.methods.has('get_balance')) throw new AirlockError('internal', 'NWC: the wallet service does not offer get_balance');
    const reply = await this.transport.request('get_balance', {}, { timeoutMs: this.requestTimeoutMs });
    if (!reply) throw new AirlockError('internal', 'NWC: the wallet did not answer get_balance in time');
    if (reply.error) throw new AirlockError('internal', 'NWC: the wallet refused get_balance');
    const balance = reply.result?.balance;
    if (typeof balance !== 'number' || !Number.isSafeInteger(balance) || balance < 0) throw new AirlockError('internal', 'NWC: get_balance answered without a valid balance');
    return { msat: BigInt(balance) };
  }

  async close(): Promise<void> {
    this.transport.close();
  }

  /** The lookup after an ambiguous pay answer: undefined when it could not answer (the caller keeps the hold). */
  private async lookupForConfirmation(paymentHash: string): Promise<LightningPaymentStatus | undefined> {
    try {
      return await this.lookupWithin(paymentHash, this.payGraceMs);
    } catch (e) {
      this.log(`nwc: confirming lookup_invoice failed: ${e instanceof Error ? e.message : 'unknown error'}`);
      return undefined;
    }
  }

  /** get_info carries the connection's own methods and the wallet's network: both checked when present. */
  private async checkGetInfo(): Promise<void> {
    const reply = await this.transport.request('get_info', {}, { timeoutMs: this.requestTimeoutMs }).catch(() => undefined);
    if (!reply || reply.error) {
      this.log('nwc: get_info did not answer; the wallet network and this connection\'s methods are unchecked');
      return;
    }
    const { network, methods } = reply.result!;
    if (Array.isArray(methods)) {
      const missing = REQUIRED_METHODS.filter((m) => !methods.includes(m));
      if (missing.length > 0) throw refuse(`this connection may not use ${missing.join(' and ')} (get_info)`);
    }
    if (typeof network === 'string' && network !== '') {
      const theirs = NETWORK_NAMES[network];
      if (theirs !== this.network) throw refuse(`the wallet is on ${theirs ?? 'an unknown network'}, Airlock is configured for ${this.network}`);
    }
  }
}

function checkInfo(info: WalletInfo): void {
  if (!info.encryption.has('nip44_v2')) {
    throw refuse('the wallet service does not offer NIP-44 encryption (nip44_v2); NIP-04-only wallet services are not supported', [
      'Update the wallet service: NIP-47 has used NIP-44 since 2025 and NIP-04 is deprecated.',
    ]);
  }
  const missing = REQUIRED_METHODS.filter((m) => !info.methods.has(m));
  if (missing.length > 0) {
    throw refuse(`the wallet service does not offer ${missing.join(' and ')}`, ['Airlock needs pay_invoice, and lookup_invoice to confirm a payment whose outcome is uncertain.']);
  }
}

function refuse(problem: string, hints: string[] = []): AirlockError {
  return new AirlockError('config_invalid', `NWC: ${problem}`, { hints });
}

function checkHash(paymentHash: string): string {
  if (typeof paymentHash !== 'string' || !HEX64.test(paymentHash)) throw new AirlockError('invalid_hex', 'paymentHash must be 32 bytes of lowercase hex');
  return paymentHash;
}

/** NIP-47 amounts are JSON numbers: refuse what a number cannot hold exactly rather than round money. */
function jsonMsat(amountMsat: bigint): number {
  if (amountMsat <= 0n || amountMsat > BigInt(Number.MAX_SAFE_INTEGER)) throw new AirlockError('invalid_amount', 'amountMsat must be positive and at most 2^53-1');
  return Number(amountMsat);
}
