// BOLT 11 (lightning/bolts 11-payment-encoding.md) "Examples" and "Examples of Invalid Invoices" against
// decodeBolt11, plus the refusals a payment policy relies on: expiry, network, tampering and the `n` field.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { bech32 } from '@scure/base';
import { isAirlockError } from '@airlock/core';
import { readVector, vectorsSkipReason } from '../../../../testing/vectors.ts';
import { decodeBolt11, type LightningNetwork } from './bolt11.ts';

const skip = vectorsSkipReason;

interface ValidExample {
  title: string;
  invoice: string;
  network: LightningNetwork;
  amount_msat: number | null;
  timestamp: number;
  payment_hash: string;
  description?: string;
  description_hash?: string;
  expiry?: number;
  min_final_cltv_expiry?: number;
  payment_secret?: string;
  features_bits?: number[];
  payee_pubkey: string;
  route_hint?: { pubkey: string; short_channel_id: string; fee_base_msat: number; fee_proportional_millionths: number; cltv_expiry_delta: number }[];
}
interface Examples {
  priv_key: string;
  payee_pubkey: string;
  valid: ValidExample[];
  invalid: { reason: string; invoice: string }[];
}
const examples = (): Examples => JSON.parse(readVector('bolt11-examples.json'));

/** Asserts `run` throws an AirlockError with `code` (and not some other error). */
function assertRefused(run: () => unknown, code: string, what: string): void {
  assert.throws(run, (e: unknown) => isAirlockError(e) && e.code === code, `${what}: expected ${code}`);
}

test('BOLT 11 examples: every valid invoice decodes to the fields the spec lists', { skip }, () => {
  const { valid } = examples();
  assert.equal(valid.length, 11);
  for (const v of valid) {
    const d = decodeBolt11(v.invoice, { now: v.timestamp * 1000, network: v.network });
    assert.equal(d.network, v.network, v.title);
    assert.equal(d.amountMsat, v.amount_msat === null ? undefined : BigInt(v.amount_msat), v.title);
    assert.equal(d.payee, v.payee_pubkey, v.title);
    assert.equal(d.paymentHash, v.payment_hash, v.title);
    assert.equal(d.createdAt, v.timestamp * 1000, v.title);
    assert.equal(d.expiresAt, (v.timestamp + (v.expiry ?? 3600)) * 1000, v.title);
    assert.equal(d.description, v.description, v.title);
    assert.equal(d.descriptionHash, v.description_hash, v.title);
    assert.equal(d.paymentSecret, v.payment_secret, v.title);
    assert.equal(d.minFinalCltvExpiry, v.min_final_cltv_expiry, v.title);
    assert.deepEqual(d.features, v.features_bits, v.title);
    const hints = v.route_hint
      ? [v.route_hint.map((h) => ({ pubkey: h.pubkey, shortChannelId: h.short_channel_id, feeBaseMsat: h.fee_base_msat, feeProportionalMillionths: h.fee_proportional_millionths, cltvExpiryDelta: h.cltv_expiry_delta }))]
      : [];
    assert.deepEqual(d.routeHints, hints, v.title);
  }
});

test('BOLT 11 invalid examples: each is refused with the code its reason calls for', { skip }, () => {
  const expected: Record<string, string> = {
    'Bech32 checksum is invalid.': 'invoice_malformed',
    'Malformed bech32 string (no 1)': 'invoice_malformed',
    'Malformed bech32 string (mixed case)': 'invoice_malformed',
    'Signature is not recoverable.': 'invoice_bad_signature',
    'String is too short.': 'invoice_malformed',
    'Invalid multiplier': 'invoice_malformed',
    'Invalid sub-millisatoshi precision.': 'invoice_malformed',
  };
  const { invalid } = examples();
  assert.equal(invalid.length, Object.keys(expected).length);
  for (const v of invalid) {
    const code = expected[v.reason];
    assert.ok(code, `no expected code for "${v.reason}"`);
    // A `now` at the examples' time, so expiry cannot be what refuses them.
    assertRefused(() => decodeBolt11(v.invoice, { now: 1496314658000, network: 'bitcoin' }), code, v.reason);
  }
});

test('expiry: refused once createdAt + expiry <= now, decoded just before; default expiry is one hour', { skip }, () => {
  const { valid } = examples();
  const coffee = valid.find((v) => v.expiry === 60)!;
  const at = coffee.timestamp * 1000;
  assert.equal(decodeBolt11(coffee.invoice, { now: at + 59_999, network: 'bitcoin' }).expiresAt, at + 60_000);
  assertRefused(() => decodeBolt11(coffee.invoice, { now: at + 60_000, network: 'bitcoin' }), 'invoice_expired', 'coffee at expiry');
  assertRefused(() => decodeBolt11(coffee.invoice, { now: Date.now(), network: 'bitcoin' }), 'invoice_expired', 'coffee today');

  const donation = valid[0]!; // no x field
  assert.equal(decodeBolt11(donation.invoice, { now: donation.timestamp * 1000 + 3_599_000, network: 'bitcoin' }).amountMsat, undefined);
  assertRefused(() => decodeBolt11(donation.invoice, { now: donation.timestamp * 1000 + 3_600_000, network: 'bitcoin' }), 'invoice_expired', 'donation after an hour');
});

test('network: an invoice for another network than the expected one is refused', { skip }, () => {
  const { valid } = examples();
  const testnet = valid.find((v) => v.network === 'testnet')!;
  const mainnet = valid.find((v) => v.network === 'bitcoin')!;
  assertRefused(() => decodeBolt11(testnet.invoice, { now: testnet.timestamp * 1000, network: 'bitcoin' }), 'invoice_wrong_network', 'testnet as bitcoin');
  for (const network of ['testnet', 'signet', 'regtest'] as const) {
    assertRefused(() => decodeBolt11(mainnet.invoice, { now: mainnet.timestamp * 1000, network }), 'invoice_wrong_network', `bitcoin as ${network}`);
  }
});

test('tampering: every one-character change is refused; a re-checksummed change never keeps the payee', { skip }, () => {
  const { valid } = examples();
  const alphabet = 'qpzry9x8gf2tvdw0s3jn54khce6mua7l';
  let refused = 0;
  for (const v of valid) {
    const now = v.timestamp * 1000;
    const lower = v.invoice.toLowerCase();
    for (let i = 0; i < lower.length; i++) {
      const c = lower[i]!;
      const swapped = /[a-z]/.test(c) && !alphabet.includes(c) ? 'x' : alphabet[(alphabet.indexOf(c) + 1) % 32]!;
      const tampered = lower.slice(0, i) + swapped + lower.slice(i + 1);
      assert.throws(
        () => decodeBolt11(tampered, { now, network: v.network }),
        (e: unknown) => isAirlockError(e) && (e.code === 'invoice_malformed' || e.code === 'invoice_bad_signature' || e.code === 'invoice_wrong_network'),
        `${v.title}: position ${i}`,
      );
      refused++;
    }

    // Someone who rewrites a data word (here the last word before the signature) and fixes the checksum gets a
    // decodable invoice, but the signature then recovers some other key: the payee a policy checks is not the original.
    const { prefix, words } = bech32.decode(lower as `${string}1${string}`, 7089);
    const changed = Array.from(words);
    changed[changed.length - 105] = changed[changed.length - 105]! ^ 1;
    const rewritten = bech32.encode(prefix, changed, 7089);
    let payee: string | undefined;
    try {
      payee = decodeBolt11(rewritten, { now, network: v.network }).payee;
    } catch (e) {
      assert.ok(isAirlockError(e) && (e.code === 'invoice_malformed' || e.code === 'invoice_bad_signature'), v.title);
    }
    assert.notEqual(payee, v.payee_pubkey, `${v.title}: a rewritten invoice decoded with the original payee`);
  }
  assert.ok(refused > 3000);
});

// Invoices built here with the spec's example key, to reach the fields the spec examples do not carry.
function words(bytes: Uint8Array): number[] {
  return Array.from(bech32.toWords(bytes));
}
function integerWords(value: number, count: number): number[] {
  const out: number[] = [];
  for (let i = count - 1; i >= 0; i--) out.push(Math.floor(value / 32 ** i) % 32);
  return out;
}
function field(type: number, data: number[]): number[] {
  return [type, ...integerWords(data.length, 2), ...data];
}
function signedInvoice(hrp: string, data: number[], privKey: Uint8Array): string {
  // The spec signs the data words as bytes with the trailing partial byte zero-padded.
  const message = sha256(new Uint8Array([...new TextEncoder().encode(hrp), ...padWords(data)]));
  const recovered = secp256k1.Signature.fromBytes(secp256k1.sign(message, privKey, { prehash: false, format: 'recovered' }), 'recovered');
  const signature = new Uint8Array([...recovered.toBytes('compact'), recovered.recovery!]);
  return bech32.encode(hrp, [...data, ...words(signature)], 7089);
}
function padWords(data: number[]): Uint8Array {
  const padding = (8 - ((data.length * 5) % 8)) % 8;
  const bits = data.map((w) => w.toString(2).padStart(5, '0')).join('') + '0'.repeat(padding);
  return Uint8Array.from(bits.match(/.{8}/g) ?? [], (b) => parseInt(b, 2));
}

test('n field: a signature over a stated payee is checked against it; a mismatch is invoice_bad_signature', { skip }, () => {
  const { priv_key, payee_pubkey } = examples();
  const key = hexToBytes(priv_key);
  const timestamp = 1_700_000_000;
  const hash = field(1, words(new Uint8Array(32).fill(7)));
  const description = field(13, words(new TextEncoder().encode('coffee')));
  const base = [...integerWords(timestamp, 7), ...hash, ...description];

  const honest = signedInvoice('lnbcrt10u', [...base, ...field(19, words(hexToBytes(payee_pubkey)))], key);
  const d = decodeBolt11(honest, { now: timestamp * 1000, network: 'regtest' });
  assert.equal(d.payee, payee_pubkey);
  assert.equal(d.amountMsat, 1_000_000n);
  assert.equal(d.description, 'coffee');

  const otherNode = secp256k1.getPublicKey(sha256(new TextEncoder().encode('another node')));
  const lying = signedInvoice('lnbcrt10u', [...base, ...field(19, words(otherNode))], key);
  assertRefused(() => decodeBolt11(lying, { now: timestamp * 1000, network: 'regtest' }), 'invoice_bad_signature', 'n names another node');
  assert.notEqual(bytesToHex(otherNode), payee_pubkey);

  // Without n, the same data signed by another key decodes with that key as payee: recovery, not trust.
  const signedByOther = signedInvoice('lntbs', base, sha256(new TextEncoder().encode('another node')));
  assert.equal(decodeBolt11(signedByOther, { now: timestamp * 1000, network: 'signet' }).payee, bytesToHex(otherNode));
});

test('fields: a duplicated once-only field, a missing payment hash and a ragged route hint are malformed', { skip }, () => {
  const key = hexToBytes(examples().priv_key);
  const timestamp = 1_700_000_000;
  const now = timestamp * 1000;
  const stamp = integerWords(timestamp, 7);
  const hash = field(1, words(new Uint8Array(32).fill(7)));
  const otherHash = field(1, words(new Uint8Array(32).fill(8)));

  assertRefused(() => decodeBolt11(signedInvoice('lnbc1m', [...stamp, ...hash, ...otherHash], key), { now, network: 'bitcoin' }), 'invoice_malformed', 'two p fields');
  // BOLT 11: a p field of the wrong length is skipped, which leaves no payment hash.
  const shortHash = field(1, words(new Uint8Array(31).fill(7)));
  assertRefused(() => decodeBolt11(signedInvoice('lnbc1m', [...stamp, ...shortHash], key), { now, network: 'bitcoin' }), 'invoice_malformed', 'short p field');
  const raggedHint = field(3, words(new Uint8Array(50).fill(2)));
  assertRefused(() => decodeBolt11(signedInvoice('lnbc1m', [...stamp, ...hash, ...raggedHint], key), { now, network: 'bitcoin' }), 'invoice_malformed', '50-byte route hint');
  // Sanity: the same builder with well-formed fields decodes, so the refusals above are about the fields.
  assert.equal(decodeBolt11(signedInvoice('lnbc1m', [...stamp, ...hash], key), { now, network: 'bitcoin' }).amountMsat, 100_000_000n);
});
