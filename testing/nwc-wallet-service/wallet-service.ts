/**
 * A Nostr Wallet Connect (NIP-47) wallet service for tests: a TEST DOUBLE of an operator's wallet (Alby Hub or a
 * custodial NWC wallet), with Airlock as its client.
 *
 * The protocol side is NOT ours: it is `NWCWalletService` from @getalby/sdk (Alby's JavaScript NWC library,
 * getAlby/js-sdk; v8). The library publishes the info event (kind 13194, `encryption: nip04 nip44_v2`),
 * subscribes to requests (kind 23194 from the client key, `#p` = wallet key), decrypts them (NIP-44 or NIP-04 per
 * the request's `encryption` tag), calls our handler, and publishes the response (kind 23195 with `e` = request
 * id and `p` = client, `{result_type, result | error}` encrypted the same way). It works on Node 24 as is: it
 * uses the global WebSocket (Node 22+) and bundles nostr-tools. Observed library behaviour the tests rely on:
 * - each request is handled as it arrives, concurrently: a lookup is answered while a payment still hangs;
 * - the `expiration` tag of a request is not checked (the spec says "should"): a late request is still served;
 * - its info event always advertises `nip04 nip44_v2`; a NIP-04-only wallet is simulated by publishing our own
 *   info event (signed with the wallet key, as the library would) instead.
 *
 * The handler is the wallet itself: a balance, a fee reserve held while a payment is out (1 %, at least 10 sat:
 * the wallet's own fee limit, which NIP-47 gives the client no way to set), one record per outgoing payment (what lookup_invoice reports), and payments routed through
 * testing/lightning-network.ts (`network.settle`), so tests script what the Lightning network does.
 * With `sendTimeoutMs` it behaves like a wallet that stops waiting on its node: it answers PAYMENT_FAILED
 * ("timed out") while the payment stays pending, the case NIP-47 warns of ("may be due to a timeout").
 */
import { decodeBolt11 } from '@airlock/chains';
import { NWCWalletService, NWCWalletServiceKeyPair, type NWCWalletServiceRequestHandler, type Nip47SingleMethod, type Nip47Transaction } from '@getalby/sdk/nwc';
import { schnorr } from '@noble/curves/secp256k1.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { finalizeEvent } from 'nostr-tools';
import type { LightningNetwork, Network } from '../lightning-network.ts';
import type { TestRelay } from '../nostr-relay/relay.ts';

export interface TestWalletServiceOptions {
  relay: TestRelay;
  /** Where payments are routed. */
  lightning: LightningNetwork;
  /** The chain the wallet is on (invoices for another are refused); default regtest. */
  chain?: Network;
  /** What get_info reports as `network` (NIP-47 names: mainnet, testnet, signet, regtest); default from `chain`. */
  reportedNetwork?: string;
  balanceMsat?: bigint;
  /** Methods in the info event and get_info; default pay_invoice lookup_invoice get_balance get_info. */
  methods?: Nip47SingleMethod[];
  /** Publish our own info event with this `encryption` tag (null: no tag, i.e. NIP-04 only) instead of the library's. */
  infoEncryption?: string | null;
  /** Publish no info event at all. */
  withoutInfo?: boolean;
  /** Answer PAYMENT_FAILED after this long while the payment stays pending. */
  sendTimeoutMs?: number;
  /** Leave `fees_paid` out of pay_invoice results and lookup_invoice records (optional in NIP-47: some wallets do). */
  omitFeesPaid?: boolean;
}

/** One outgoing payment, as the wallet keeps it. */
export interface OutgoingPayment {
  paymentHash: string;
  invoice: string;
  amountMsat: bigint;
  state: 'pending' | 'settled' | 'failed';
  feeMsat?: bigint;
  preimage?: string;
  createdAt: number;
  settledAt?: number;
}

type Reply<T> = Promise<{ result: T | undefined; error: { code: string; message: string } | undefined }>;

const DEFAULT_METHODS: Nip47SingleMethod[] = ['pay_invoice', 'lookup_invoice', 'get_balance', 'get_info'];
const NETWORK_NAMES: Record<Network, string> = { bitcoin: 'mainnet', testnet: 'testnet', signet: 'signet', regtest: 'regtest' };

export class TestWalletService {
  /** The connection string a client (Airlock) is configured with. */
  readonly uri: string;
  readonly walletPubkey: string;
  /** Hex. Tests use it to forge responses only the wallet could sign. */
  readonly walletSecret: string;
  readonly clientPubkey: string;
  balanceMsat: bigint;
  readonly payments = new Map<string, OutgoingPayment>();
  /** Every request the wallet handled, in order. */
  readonly received: { method: string; params: unknown }[] = [];
  private readonly refusals = new Map<string, { code: string; message: string; payingAnyway?: boolean }>();
  /** Hashes whose lookup_invoice the wallet does not answer (too busy, or a relay dropped the reply). */
  private readonly silentLookups = new Set<string>();
  /** Amounts lookup_invoice reports instead of what was paid (a wallet that misreports, or another payment's record). */
  private readonly reportedAmounts = new Map<string, bigint>();
  private readonly options: TestWalletServiceOptions;
  private readonly service: NWCWalletService;
  private unsubscribe: (() => void) | undefined;

  private constructor(options: TestWalletServiceOptions) {
    this.options = options;
    const walletKey = schnorr.utils.randomSecretKey();
    const clientKey = schnorr.utils.randomSecretKey();
    this.walletSecret = bytesToHex(walletKey);
    this.walletPubkey = bytesToHex(schnorr.getPublicKey(walletKey));
    this.clientPubkey = bytesToHex(schnorr.getPublicKey(clientKey));
    this.uri = `nostr+walletconnect://${this.walletPubkey}?relay=${encodeURIComponent(options.relay.url)}&secret=${bytesToHex(clientKey)}`;
    this.balanceMsat = options.balanceMsat ?? 10_000_000n;
    this.service = new NWCWalletService({ relayUrls: [options.relay.url] });
  }

  /** Publishes the info event and subscribes; resolves once the relay holds the wallet's subscription. */
  static async start(options: TestWalletServiceOptions): Promise<TestWalletService> {
    const wallet = new TestWalletService(options);
    const methods = options.methods ?? DEFAULT_METHODS;
    if (options.withoutInfo) {
      // nothing published
    } else if (options.infoEncryption !== undefined) {
      const tags = options.infoEncryption === null ? [] : [['encryption', options.infoEncryption]];
      const info = finalizeEvent({ kind: 13194, created_at: Math.floor(Date.now() / 1000), tags, content: methods.join(' ') }, Buffer.from(wallet.walletSecret, 'hex'));
      await Promise.any(wallet.service.pool.publish(wallet.service.relayUrls, info));
    } else {
      await wallet.service.publishWalletServiceInfoEvent(wallet.walletSecret, methods, []);
    }
    wallet.unsubscribe = await wallet.service.subscribe(new NWCWalletServiceKeyPair(wallet.walletSecret, wallet.clientPubkey), wallet.handler(methods));
    const deadline = Date.now() + 5_000;
    while (!options.relay.listensFor(wallet.walletPubkey)) {
      if (Date.now() > deadline) throw new Error('the wallet service did not subscribe on the relay');
      await new Promise((r) => setTimeout(r, 10));
    }
    return wallet;
  }

  /** The next pay_invoice for this hash is refused with this NIP-47 error before anything is tried. */
  refuse(paymentHash: string, code: string, message = 'refused by the test'): void {
    this.refusals.set(paymentHash, { code, message });
  }

  /**
   * The next pay_invoice for this hash is paid, as the copy of the request another relay delivered would be, and
   * answered with this NIP-47 refusal: what a wallet that rate-limits before it de-duplicates requests does.
   */
  refuseWhilePaying(paymentHash: string, code: string, message = 'refused by the test'): void {
    this.refusals.set(paymentHash, { code, message, payingAnyway: true });
  }

  /** lookup_invoice for this hash gets no answer until `answerLookups`. */
  silenceLookups(paymentHash: string): void {
    this.silentLookups.add(paymentHash);
  }

  answerLookups(paymentHash: string): void {
    this.silentLookups.delete(paymentHash);
  }

  /** lookup_invoice reports this amount for the hash, whatever was paid. */
  reportAmount(paymentHash: string, amountMsat: bigint): void {
    this.reportedAmounts.set(paymentHash, amountMsat);
  }

  close(): void {
    this.unsubscribe?.();
    this.service.close();
  }

  private handler(methods: Nip47SingleMethod[]): NWCWalletServiceRequestHandler {
    const chain = this.options.chain ?? 'regtest';
    return {
      payInvoice: (request) => this.pay(request.invoice, request.amount, chain),
      lookupInvoice: async (request) => {
        this.received.push({ method: 'lookup_invoice', params: request });
        // No reply at all: the wallet service sends nothing for a handler that never settles.
        if (request.payment_hash && this.silentLookups.has(request.payment_hash)) return new Promise<never>(() => {});
        const payment = request.payment_hash ? this.payments.get(request.payment_hash) : undefined;
        if (!payment) return fail('NOT_FOUND', 'invoice not found');
        const reported = this.reportedAmounts.get(payment.paymentHash);
        const record = transaction(reported === undefined ? payment : { ...payment, amountMsat: reported });
        return ok(this.options.omitFeesPaid ? withoutFee(record) : record);
      },
      getBalance: async () => {
        this.received.push({ method: 'get_balance', params: {} });
        return ok({ balance: Number(this.balanceMsat) });
      },
      getInfo: async () => {
        this.received.push({ method: 'get_info', params: {} });
        const network = this.options.reportedNetwork ?? NETWORK_NAMES[chain];
        return ok({ alias: 'airlock test wallet', color: '#000000', pubkey: this.walletPubkey, network, block_height: 1, block_hash: '00'.repeat(32), methods });
      },
    };
  }

  private async pay(invoice: string, amount: number | undefined, chain: Network): Reply<{ preimage: string; fees_paid: number }> {
    this.received.push({ method: 'pay_invoice', params: { invoice, ...(amount !== undefined ? { amount } : {}) } });
    let decoded;
    try {
      decoded = decodeBolt11(invoice, { now: Date.now(), network: chain });
    } catch {
      return fail('OTHER', 'invalid invoice');
    }
    const hash = decoded.paymentHash;
    const refusal = this.refusals.get(hash);
    if (refusal) {
      this.refusals.delete(hash);
      if (refusal.payingAnyway) void this.pay(invoice, amount, chain);
      return fail(refusal.code, refusal.message);
    }
    const earlier = this.payments.get(hash);
    if (earlier && earlier.state !== 'failed') return fail('OTHER', 'this invoice is paid or being paid already');
    const amountMsat = decoded.amountMsat ?? (amount === undefined ? undefined : BigInt(amount));
    if (amountMsat === undefined) return fail('OTHER', 'an amountless invoice needs an amount');
    const reserve = feeReserve(amountMsat);
    if (amountMsat + reserve > this.balanceMsat) return fail('INSUFFICIENT_BALANCE', 'not enough balance to cover the payment and its fee reserve');

    this.balanceMsat -= amountMsat + reserve;
    const payment: OutgoingPayment = { paymentHash: hash, invoice, amountMsat, state: 'pending', createdAt: now() };
    this.payments.set(hash, payment);
    const settled = this.options.lightning.settle(hash, amountMsat, reserve).then((s) => {
      if (s.status === 'succeeded') {
        this.balanceMsat += reserve - s.feeMsat;
        Object.assign(payment, { state: 'settled', feeMsat: s.feeMsat, preimage: s.preimage, settledAt: now() });
      } else {
        this.balanceMsat += amountMsat + reserve;
        payment.state = 'failed';
      }
      return s;
    });
    const gaveUp = this.options.sendTimeoutMs === undefined ? undefined : new Promise<undefined>((r) => setTimeout(() => r(undefined), this.options.sendTimeoutMs));
    const outcome = await (gaveUp ? Promise.race([settled, gaveUp]) : settled);
    if (!outcome) return fail('PAYMENT_FAILED', 'payment timed out');
    if (outcome.status === 'failed') return fail('PAYMENT_FAILED', `payment failed: ${outcome.reason}`);
    const result = { preimage: outcome.preimage, fees_paid: Number(outcome.feeMsat) };
    return ok(this.options.omitFeesPaid ? withoutFee(result) : result);
  }
}

/** `value` without its `fees_paid` (typed as still having it: the library's types make it required, NIP-47 does not). */
function withoutFee<T extends { fees_paid: number }>(value: T): T {
  const { fees_paid: _omitted, ...rest } = value;
  return rest as T;
}

/** Held back for routing fees while a payment is out, and passed to the network as the fee limit. */
function feeReserve(amountMsat: bigint): bigint {
  const onePercent = amountMsat / 100n;
  return onePercent > 10_000n ? onePercent : 10_000n;
}

function transaction(p: OutgoingPayment): Nip47Transaction {
  return {
    type: 'outgoing',
    state: p.state,
    invoice: p.invoice,
    description: '',
    description_hash: '',
    preimage: p.preimage ?? '',
    payment_hash: p.paymentHash,
    amount: Number(p.amountMsat),
    fees_paid: Number(p.feeMsat ?? 0n),
    settled_at: p.settledAt ?? 0,
    created_at: p.createdAt,
    expires_at: 0,
  };
}

function now(): number {
  return Math.floor(Date.now() / 1000);
}

async function ok<T>(result: T): Reply<T> {
  return { result, error: undefined };
}

async function fail<T>(code: string, message: string): Reply<T> {
  return { result: undefined, error: { code, message } };
}
