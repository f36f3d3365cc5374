/**
 * A simulated Lightning network for tests: a TEST DOUBLE. No Lightning node can run on the CI machines, so the
 * payees (an L402 server, a test merchant) and the payers (the LND REST double, the NWC wallet service) meet
 * here: a payee issues a real BOLT 11 invoice signed by its node key and keeps the preimage; a payer "routes"
 * a payment by asking the network to settle the payment hash, which reveals the preimage exactly as a real
 * payee would when the HTLC arrives. Tests script what a payment does (succeed, fail, stay in flight, succeed
 * after a delay) to drive Airlock's holds through every outcome.
 *
 * The invoice encoder follows BOLT 11 (bech32 data words, tagged fields, a recoverable signature over
 * sha256(hrp || data)); Airlock's decoder checks it like any other invoice.
 */
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, hexToBytes, randomBytes } from '@noble/hashes/utils.js';
import { bech32 } from '@scure/base';

export type Network = 'bitcoin' | 'testnet' | 'signet' | 'regtest';
const PREFIX: Record<Network, string> = { bitcoin: 'bc', testnet: 'tb', signet: 'tbs', regtest: 'bcrt' };

export interface InvoiceOptions {
  /** Omit for an amountless invoice. */
  amountMsat?: bigint;
  description?: string;
  /** Seconds (the `x` field); default 3600. */
  expirySeconds?: number;
  /** Unix seconds the invoice says it was created; default now. */
  timestamp?: number;
  network?: Network;
  /** Include the payee node id (`n` field). */
  withPayeeField?: boolean;
  /** Use this preimage (hex) instead of a random one. */
  preimage?: string;
  /** Route hints (`r` fields): one path of hops each, towards the payee. */
  routeHints?: { pubkey: string; shortChannelId?: bigint; feeBaseMsat: number; feeProportionalMillionths: number; cltvExpiryDelta?: number }[][];
}

export interface IssuedInvoice {
  invoice: string;
  paymentHash: string;
  preimage: string;
  payee: string;
  amountMsat?: bigint;
  expiresAt: number; // ms
}

/** A Lightning node's identity: signs invoices. */
export class TestNode {
  readonly privateKey: Uint8Array;
  readonly nodeId: string;
  constructor(privateKey: Uint8Array = secp256k1.utils.randomSecretKey()) {
    this.privateKey = privateKey;
    this.nodeId = bytesToHex(secp256k1.getPublicKey(privateKey, true));
  }

  /** A BOLT 11 invoice signed by this node. */
  invoice(options: InvoiceOptions = {}): IssuedInvoice {
    const preimage = options.preimage ?? bytesToHex(randomBytes(32));
    const paymentHash = bytesToHex(sha256(hexToBytes(preimage)));
    const timestamp = options.timestamp ?? Math.floor(Date.now() / 1000);
    const expiry = options.expirySeconds ?? 3600;
    const network = options.network ?? 'regtest';
    const hrp = `ln${PREFIX[network]}${options.amountMsat === undefined ? '' : encodeAmount(options.amountMsat)}`;
    const words: number[] = [...integerWords(timestamp, 7)];
    const field = (tag: number, data: number[]) => words.push(tag, data.length >> 5, data.length & 31, ...data);
    field(1, bech32.toWords(hexToBytes(paymentHash)));
    field(16, bech32.toWords(randomBytes(32))); // payment secret
    field(13, bech32.toWords(new TextEncoder().encode(options.description ?? 'test payment')));
    field(6, integerWords(expiry));
    field(24, integerWords(18)); // min_final_cltv_expiry_delta
    if (options.withPayeeField) field(19, bech32.toWords(hexToBytes(this.nodeId)));
    for (const path of options.routeHints ?? []) {
      // BOLT 11 `r`: per hop pubkey (33), short_channel_id (8), fee_base_msat (u32), fee_proportional_millionths (u32), cltv_expiry_delta (u16).
      const bytes = new Uint8Array(51 * path.length);
      const view = new DataView(bytes.buffer);
      path.forEach((hop, i) => {
        bytes.set(hexToBytes(hop.pubkey), 51 * i);
        view.setBigUint64(51 * i + 33, hop.shortChannelId ?? 0x0001000002000003n);
        view.setUint32(51 * i + 41, hop.feeBaseMsat);
        view.setUint32(51 * i + 45, hop.feeProportionalMillionths);
        view.setUint16(51 * i + 49, hop.cltvExpiryDelta ?? 40);
      });
      field(3, bech32.toWords(bytes));
    }
    field(5, featureWords([8, 14])); // var_onion_optin, payment_secret (both required bits' optional forms)
    const signed = new Uint8Array([...new TextEncoder().encode(hrp), ...wordsToPaddedBytes(words)]);
    const sig = secp256k1.sign(sha256(signed), this.privateKey, { prehash: false, format: 'recovered' });
    // noble's recovered format is recovery || r || s; BOLT 11 wants r || s || recovery.
    const signature = new Uint8Array([...sig.subarray(1), sig[0]!]);
    const invoice = bech32.encode(hrp, [...words, ...bech32.toWords(signature)], 10_000);
    return { invoice, paymentHash, preimage, payee: this.nodeId, ...(options.amountMsat !== undefined ? { amountMsat: options.amountMsat } : {}), expiresAt: (timestamp + expiry) * 1000 };
  }
}

/** What the network does with one payment: decided by the test. */
export type Behaviour =
  | { kind: 'succeed'; feeMsat?: bigint; afterMs?: number }
  | { kind: 'fail'; reason: 'no_route' | 'incorrect_payment_details' | 'timeout' | 'insufficient_balance'; afterMs?: number }
  /** Stays in flight until the test calls `release(hash, ...)`. */
  | { kind: 'hang' };

export type Settlement = { status: 'succeeded'; preimage: string; feeMsat: bigint } | { status: 'failed'; reason: string };

/**
 * The network: payees register invoices, payers settle payment hashes. One per test (no global state).
 */
export class LightningNetwork {
  private readonly invoices = new Map<string, IssuedInvoice>();
  private readonly behaviours = new Map<string, Behaviour>();
  private readonly waiting = new Map<string, { resolve: (s: Settlement) => void }[]>();
  private readonly results = new Map<string, Settlement>();
  /** Default routing fee: base + proportional (ppm), as a node's channel policy would charge. */
  feeBaseMsat = 1_000n;
  feePpm = 1_000n;
  /** Every payment hash a payer tried to settle, in order (what tests assert "was paid" on). */
  readonly attempts: string[] = [];

  /** A node of this network that issues invoices the network knows. */
  payee(node = new TestNode()): { node: TestNode; invoice(options?: InvoiceOptions): IssuedInvoice } {
    return { node, invoice: (options = {}) => this.register(node.invoice(options)) };
  }

  register(issued: IssuedInvoice): IssuedInvoice {
    this.invoices.set(issued.paymentHash, issued);
    return issued;
  }

  /** Scripts what the next payment of `paymentHash` does (default: succeed at once with the default fee). */
  script(paymentHash: string, behaviour: Behaviour): void {
    this.behaviours.set(paymentHash, behaviour);
  }

  /** The routing fee the network charges for `amountMsat`. */
  feeFor(amountMsat: bigint): bigint {
    return this.feeBaseMsat + (amountMsat * this.feePpm) / 1_000_000n;
  }

  /** The amount an invoice of this network asks for (undefined: unknown or amountless). */
  invoiceAmount(paymentHash: string): bigint | undefined {
    return this.invoices.get(paymentHash)?.amountMsat;
  }

  /** Whether the payee has been paid (its preimage revealed to a payer). */
  isPaid(paymentHash: string): boolean {
    return this.results.get(paymentHash)?.status === 'succeeded';
  }

  /** The outcome so far of a payment hash (undefined while in flight or never tried). */
  outcome(paymentHash: string): Settlement | undefined {
    return this.results.get(paymentHash);
  }

  /**
   * Routes a payment: resolves with the outcome the script says. A fee above `maxFeeMsat` fails with
   * `no_route` (a real node finds no route within the fee limit). An invoice already paid fails with
   * `already_paid` (a real node refuses to pay a settled hash twice).
   */
  async settle(paymentHash: string, amountMsat: bigint, maxFeeMsat: bigint): Promise<Settlement> {
    this.attempts.push(paymentHash);
    if (this.isPaid(paymentHash)) return { status: 'failed', reason: 'already_paid' };
    const issued = this.invoices.get(paymentHash);
    if (!issued) return this.finish(paymentHash, { status: 'failed', reason: 'incorrect_payment_details' });
    if (issued.amountMsat !== undefined && amountMsat < issued.amountMsat) return this.finish(paymentHash, { status: 'failed', reason: 'incorrect_payment_details' });
    if (issued.expiresAt <= Date.now()) return this.finish(paymentHash, { status: 'failed', reason: 'incorrect_payment_details' });
    const behaviour = this.behaviours.get(paymentHash) ?? { kind: 'succeed' };
    this.results.delete(paymentHash);
    if (behaviour.kind === 'hang') return new Promise((resolve) => this.waiting.set(paymentHash, [...(this.waiting.get(paymentHash) ?? []), { resolve }]));
    if (behaviour.afterMs) await new Promise((r) => setTimeout(r, behaviour.afterMs));
    if (behaviour.kind === 'fail') return this.finish(paymentHash, { status: 'failed', reason: behaviour.reason });
    const feeMsat = behaviour.feeMsat ?? this.feeFor(amountMsat);
    if (feeMsat > maxFeeMsat) return this.finish(paymentHash, { status: 'failed', reason: 'no_route' });
    return this.finish(paymentHash, { status: 'succeeded', preimage: issued.preimage, feeMsat });
  }

  /** Whether a payment of this hash is hanging (waiting for `release`). */
  isHanging(paymentHash: string): boolean {
    return (this.waiting.get(paymentHash)?.length ?? 0) > 0;
  }

  /** Ends a hanging payment (the test decides how); a hash that is not hanging is left as it is. */
  release(paymentHash: string, outcome: { succeed: true; feeMsat?: bigint } | { succeed: false; reason: string }): void {
    if (!this.isHanging(paymentHash)) return;
    const issued = this.invoices.get(paymentHash);
    const settlement: Settlement = outcome.succeed && issued
      ? { status: 'succeeded', preimage: issued.preimage, feeMsat: outcome.feeMsat ?? this.feeFor(issued.amountMsat ?? 0n) }
      : { status: 'failed', reason: outcome.succeed ? 'incorrect_payment_details' : outcome.reason };
    this.finish(paymentHash, settlement);
    for (const w of this.waiting.get(paymentHash) ?? []) w.resolve(settlement);
    this.waiting.delete(paymentHash);
  }

  private finish(paymentHash: string, settlement: Settlement): Settlement {
    this.results.set(paymentHash, settlement);
    return settlement;
  }
}

function encodeAmount(msat: bigint): string {
  // The shortest exact form: milli-, micro-, nano-bitcoin, else pico (10 pico = 1 msat).
  for (const [unit, msatPerUnit] of [['m', 100_000_000n], ['u', 100_000n], ['n', 100n]] as const) {
    if (msat % msatPerUnit === 0n) return `${msat / msatPerUnit}${unit}`;
  }
  return `${msat * 10n}p`;
}

/** A BOLT 11 integer as 5-bit words, big-endian (`width`: zero-padded to that many words). */
export function integerWords(value: number, width?: number): number[] {
  const words: number[] = [];
  let v = value;
  do {
    words.unshift(v % 32);
    v = Math.floor(v / 32);
  } while (v > 0);
  while (width !== undefined && words.length < width) words.unshift(0);
  return words;
}

function featureWords(bits: number[]): number[] {
  const top = Math.max(...bits);
  const words = new Array<number>(Math.floor(top / 5) + 1).fill(0);
  for (const bit of bits) words[words.length - 1 - Math.floor(bit / 5)]! |= 1 << (bit % 5);
  return words;
}

/** 5-bit words as bytes, the last one zero-padded: the form the invoice signature covers. */
export function wordsToPaddedBytes(words: number[]): Uint8Array {
  const out: number[] = [];
  let acc = 0;
  let bits = 0;
  for (const w of words) {
    acc = ((acc << 5) | w) & 0xfff;
    bits += 5;
    while (bits >= 8) {
      bits -= 8;
      out.push((acc >> bits) & 0xff);
    }
  }
  if (bits > 0) out.push((acc << (8 - bits)) & 0xff);
  return Uint8Array.from(out);
}

/**
 * The LightningBackend port straight onto the simulated network, for tests of the payment service (holds,
 * policy, crashes) that are not about a backend's wire protocol. The LND REST and NWC backends have their own
 * tests against doubles of their real APIs. `unreachable` makes every call throw (a backend that is down);
 * `payments` is what the "node" remembers (lookup answers from it, as a node's payment database does).
 */
export class SimulatedBackend {
  readonly kind = 'simulated';
  readonly network: Network;
  unreachable = false;
  /** The longest a pay call waits before answering in flight (tests that hang many payments shorten it). */
  maxWaitMs = Number.POSITIVE_INFINITY;
  /** Set: a success is reported with a made-up preimage (a compromised proxy or wallet lying about a payment). */
  forgePreimage = false;
  /** Set: the pay call throws after handing the payment to the network (the answer is lost on the way back). */
  loseAnswers = false;
  readonly payments = new Map<string, { status: 'in_flight' } | Settlement>();
  readonly calls: { method: 'pay' | 'lookup'; paymentHash: string }[] = [];
  private readonly ln: LightningNetwork;

  constructor(ln: LightningNetwork, network: Network = 'regtest') {
    this.ln = ln;
    this.network = network;
  }

  async pay(request: { invoice: string; paymentHash: string; amountMsat?: bigint; maxFeeMsat: bigint; timeoutSeconds: number }): Promise<{ status: 'succeeded'; preimage: string; feeMsat: bigint } | { status: 'failed'; reason: string } | { status: 'in_flight' }> {
    this.calls.push({ method: 'pay', paymentHash: request.paymentHash });
    if (this.unreachable) throw new Error('connect ECONNREFUSED');
    const previous = this.payments.get(request.paymentHash);
    if (previous?.status === 'in_flight' || previous?.status === 'succeeded') throw new Error('payment is in transition or already paid');
    this.payments.set(request.paymentHash, { status: 'in_flight' });
    const amount = request.amountMsat ?? this.ln.invoiceAmount(request.paymentHash) ?? 0n;
    const settling = this.ln.settle(request.paymentHash, amount, request.maxFeeMsat).then((s) => {
      this.payments.set(request.paymentHash, s);
      return s;
    });
    const waitMs = Math.min(request.timeoutSeconds * 1000, this.maxWaitMs);
    const timeout = new Promise<{ status: 'in_flight' }>((resolve) => setTimeout(() => resolve({ status: 'in_flight' }), waitMs).unref());
    const answer = await Promise.race([settling, timeout]);
    if (this.loseAnswers) throw new Error('socket hang up');
    return this.forgePreimage ? this.forged(answer) : answer;
  }

  async lookup(paymentHash: string): Promise<{ status: 'succeeded'; preimage: string; feeMsat: bigint } | { status: 'failed'; reason: string } | { status: 'in_flight' } | { status: 'not_found' }> {
    this.calls.push({ method: 'lookup', paymentHash });
    if (this.unreachable) throw new Error('connect ECONNREFUSED');
    const known = this.payments.get(paymentHash) ?? { status: 'not_found' as const };
    return this.forgePreimage ? this.forged(known) : known;
  }

  private forged<T extends { status: string }>(answer: T): T | { status: 'succeeded'; preimage: string; feeMsat: bigint } {
    return answer.status === 'succeeded' || answer.status === 'in_flight' ? { status: 'succeeded', preimage: bytesToHex(randomBytes(32)), feeMsat: 0n } : answer;
  }
}
