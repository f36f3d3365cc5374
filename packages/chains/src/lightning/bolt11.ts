// BOLT 11 payment requests decoded into a checked shape a policy can judge. Nothing here pays or signs.
//
// Why not an npm BOLT 11 library: `light-bolt11-decoder` does not check the signature, the field lengths
// or the route-hint layout, and its typings do not match what it returns; `bolt11` (bitcoinjs) brings the
// native `secp256k1`, bitcoinjs-lib, bn.js and lodash into a custody service. So the bech32 layer comes from
// @scure/base and the signature from @noble/curves (both already used here); only the tag layout of
// BOLT 11 (a few fixed-width fields) is read below, following the spec's "Requirements" step by step.
import { AirlockError, type LightningNetwork } from '@airlock/core';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { bech32 } from '@scure/base';

export type { LightningNetwork };

/** BOLT 11 currency prefixes (the part of the human-readable part after `ln`). */
const NETWORK_BY_PREFIX: Record<string, LightningNetwork> = { bc: 'bitcoin', tb: 'testnet', tbs: 'signet', bcrt: 'regtest' };

export interface RouteHintHop {
  /** 33-byte compressed node id, hex. */
  pubkey: string;
  /** `block x tx x output`, the usual short channel id notation. */
  shortChannelId: string;
  feeBaseMsat: number;
  feeProportionalMillionths: number;
  cltvExpiryDelta: number;
}

export interface DecodedInvoice {
  network: LightningNetwork;
  /** Undefined for an amountless invoice: the caller decides the amount (and its policy). */
  amountMsat: bigint | undefined;
  /** 33-byte compressed payee node id, hex: from a verified `n` field or recovered from the signature. */
  payee: string;
  paymentHash: string;
  paymentSecret?: string;
  description?: string;
  descriptionHash?: string;
  /** Milliseconds since the epoch. */
  createdAt: number;
  /** Milliseconds since the epoch; `createdAt` + the `x` field (3600 s when absent). */
  expiresAt: number;
  minFinalCltvExpiry?: number;
  /** One entry per `r` field, each a path of hops towards the payee. */
  routeHints: RouteHintHop[][];
  /** Set feature bit numbers (the `9` field), ascending. */
  features?: number[];
}

export interface DecodeBolt11Options {
  /** The current time in milliseconds; an invoice with createdAt + expiry <= now is refused. */
  now: number;
  network: LightningNetwork;
}

const TIMESTAMP_WORDS = 7; // 35 bits
const SIGNATURE_WORDS = 104; // 520 bits: 64-byte r||s and a 1-byte recovery id
const DEFAULT_EXPIRY_SECONDS = 3600;
/**
 * The longest expiry (x field) accepted: one year. BOLT 11 sets no bound, but an invoice valid for longer pays
 * nothing a payer needs, and an expiry of up to 2^50 s puts the expiry time beyond what a date can hold (records
 * listing it would fail to render). Refused as `invoice_malformed`.
 */
export const MAX_INVOICE_EXPIRY_SECONDS = 365 * 24 * 3600;
// Two 5-bit length words hold at most 1023, so no field is longer; the whole invoice is bounded far above
// any real one (route hints included) so that hostile input cannot make decoding expensive.
const MAX_INVOICE_LENGTH = 7089;
const MILLISATS_PER_BTC = 100_000_000_000n;
const MSAT_DIVISOR: Record<string, bigint> = { m: 1_000n, u: 1_000_000n, n: 1_000_000_000n, p: 1_000_000_000_000n };
const MAX_MSAT = 21_000_000n * MILLISATS_PER_BTC;

// Tag types (the 5-bit word value of each letter in the bech32 alphabet).
const TAG = { p: 1, r: 3, features: 5, x: 6, f: 9, d: 13, s: 16, n: 19, h: 23, c: 24, m: 27 } as const;
// Fields that appear once in a well-formed invoice. Two of them could be read differently by two
// implementations (first or last wins), which is how a payee or amount gets past a check: refused.
const SINGLE_TAGS = new Set<number>([TAG.p, TAG.x, TAG.d, TAG.s, TAG.n, TAG.h, TAG.c, TAG.features]);

/**
 * Decodes and checks a BOLT 11 invoice: bech32 checksum, human-readable part (network, amount), every
 * known field, the signature (against `n` when present, else by recovery), the network and the expiry.
 * Throws AirlockError `invoice_malformed`, `invoice_bad_signature`, `invoice_wrong_network` or
 * `invoice_expired`. Messages never echo the invoice.
 */
export function decodeBolt11(invoice: string, options: DecodeBolt11Options): DecodedInvoice {
  if (typeof invoice !== 'string' || invoice.length > MAX_INVOICE_LENGTH) throw malformed('the invoice is not a string of a plausible length');
  let prefix: string;
  let words: number[];
  try {
    // bech32 (not bech32m), without the 90-character limit BOLT 11 lifts; refuses mixed case and a bad checksum.
    const decoded = bech32.decode(invoice as `${string}1${string}`, MAX_INVOICE_LENGTH);
    prefix = decoded.prefix.toLowerCase();
    words = Array.from(decoded.words);
  } catch (cause) {
    throw malformed('the invoice is not valid bech32 (checksum, case or characters)', cause);
  }

  const hrp = /^ln([a-z]+?)(?:(\d+)([munp]?))?$/.exec(prefix);
  if (!hrp) throw malformed('the human-readable part is not ln + currency + optional amount');
  const network = NETWORK_BY_PREFIX[hrp[1]!];
  if (network === undefined) throw malformed('the currency prefix is not a known Lightning network');
  const amountMsat = hrp[2] === undefined ? undefined : amountToMsat(hrp[2], hrp[3] ?? '');

  if (words.length < TIMESTAMP_WORDS + SIGNATURE_WORDS) throw malformed('the invoice is too short for a timestamp and a signature');
  const dataWords = words.slice(0, words.length - SIGNATURE_WORDS);
  const signatureBytes = wordsToBytes(words.slice(words.length - SIGNATURE_WORDS), false);
  const createdAtSeconds = wordsToInteger(dataWords.slice(0, TIMESTAMP_WORDS));

  const fields = readTaggedFields(dataWords.slice(TIMESTAMP_WORDS));

  // The signature covers the human-readable part (UTF-8) and the data words, zero-padded to bytes.
  const hrpBytes = new TextEncoder().encode(prefix);
  const dataBytes = wordsToBytes(dataWords, true);
  const signedBytes = new Uint8Array(hrpBytes.length + dataBytes.length);
  signedBytes.set(hrpBytes);
  signedBytes.set(dataBytes, hrpBytes.length);
  const payee = verifyPayee(sha256(signedBytes), signatureBytes, fields.payee);

  if (fields.paymentHash === undefined) throw malformed('the invoice has no valid payment hash (p field)');

  // Checked after the signature so that a refusal for network or expiry is only given for a genuine invoice.
  if (network !== options.network) throw new AirlockError('invoice_wrong_network', `the invoice is for ${network}, not ${options.network}`);
  if (fields.expirySeconds !== undefined && fields.expirySeconds > MAX_INVOICE_EXPIRY_SECONDS) throw malformed('the invoice expiry (x field) is longer than one year');
  const createdAt = createdAtSeconds * 1000;
  const expiresAt = (createdAtSeconds + (fields.expirySeconds ?? DEFAULT_EXPIRY_SECONDS)) * 1000;
  if (expiresAt <= options.now) throw new AirlockError('invoice_expired', 'the invoice has expired', { details: { expiresAt: new Date(expiresAt).toISOString() } });

  const result: DecodedInvoice = { network, amountMsat, payee, paymentHash: fields.paymentHash, createdAt, expiresAt, routeHints: fields.routeHints };
  if (fields.paymentSecret !== undefined) result.paymentSecret = fields.paymentSecret;
  if (fields.description !== undefined) result.description = fields.description;
  if (fields.descriptionHash !== undefined) result.descriptionHash = fields.descriptionHash;
  if (fields.minFinalCltvExpiry !== undefined) result.minFinalCltvExpiry = fields.minFinalCltvExpiry;
  if (fields.features !== undefined) result.features = fields.features;
  return result;
}

interface TaggedFields {
  paymentHash?: string;
  paymentSecret?: string;
  description?: string;
  descriptionHash?: string;
  payee?: Uint8Array;
  expirySeconds?: number;
  minFinalCltvExpiry?: number;
  routeHints: RouteHintHop[][];
  features?: number[];
}

function readTaggedFields(words: number[]): TaggedFields {
  const fields: TaggedFields = { routeHints: [] };
  const seen = new Set<number>();
  let at = 0;
  while (at < words.length) {
    if (at + 3 > words.length) throw malformed('a tagged field is cut short');
    const type = words[at]!;
    const length = words[at + 1]! * 32 + words[at + 2]!;
    const data = words.slice(at + 3, at + 3 + length);
    if (data.length !== length) throw malformed('a tagged field is longer than the invoice');
    at += 3 + length;

    if (SINGLE_TAGS.has(type)) {
      if (seen.has(type)) throw malformed('a field that may appear once appears twice');
      seen.add(type);
    }
    // BOLT 11: a reader MUST skip p, h, s and n fields whose length is not 52, 52, 52 and 53 words.
    switch (type) {
      case TAG.p:
        if (length === 52) fields.paymentHash = bytesToHex(wordsToBytes(data, false));
        break;
      case TAG.s:
        if (length === 52) fields.paymentSecret = bytesToHex(wordsToBytes(data, false));
        break;
      case TAG.h:
        if (length === 52) fields.descriptionHash = bytesToHex(wordsToBytes(data, false));
        break;
      case TAG.n:
        if (length === 53) fields.payee = wordsToBytes(data, false);
        break;
      case TAG.d:
        fields.description = utf8(wordsToBytes(data, false));
        break;
      case TAG.x:
        fields.expirySeconds = smallInteger(data);
        break;
      case TAG.c:
        fields.minFinalCltvExpiry = smallInteger(data);
        break;
      case TAG.r:
        fields.routeHints.push(routeHint(wordsToBytes(data, false)));
        break;
      case TAG.features:
        fields.features = featureBits(data);
        break;
      default:
        // f (fallback address), m (metadata) and unknown fields: not needed to judge a payment; skipped as the spec says.
        break;
    }
  }
  return fields;
}

/** Returns the payee node id: the `n` field if the signature verifies against it, else the recovered key. */
function verifyPayee(messageHash: Uint8Array, signature: Uint8Array, claimedPayee: Uint8Array | undefined): string {
  const compact = signature.subarray(0, 64);
  const recovery = signature[64]!;
  if (claimedPayee !== undefined) {
    // BOLT 11: with a valid n field the reader validates against it instead of recovering (high-S allowed).
    let valid = false;
    try {
      valid = secp256k1.verify(compact, messageHash, claimedPayee, { prehash: false, lowS: false });
    } catch (cause) {
      throw new AirlockError('invoice_bad_signature', 'the payee node id (n field) is not a valid public key', { cause });
    }
    if (!valid) throw new AirlockError('invoice_bad_signature', 'the signature does not verify against the payee node id (n field)');
    return bytesToHex(claimedPayee);
  }
  if (recovery > 3) throw new AirlockError('invoice_bad_signature', 'the signature recovery id is not 0-3');
  let recovered: Uint8Array;
  try {
    recovered = secp256k1.Signature.fromBytes(compact, 'compact').addRecoveryBit(recovery).recoverPublicKey(messageHash).toBytes(true);
  } catch (cause) {
    throw new AirlockError('invoice_bad_signature', 'no payee public key can be recovered from the signature', { cause });
  }
  // Recovery yields some key for almost any input; verifying with it checks r and s are in range as well.
  if (!secp256k1.verify(compact, messageHash, recovered, { prehash: false, lowS: false })) {
    throw new AirlockError('invoice_bad_signature', 'the signature does not verify against the recovered payee');
  }
  return bytesToHex(recovered);
}

/** BOLT 11 amount: digits, then an optional multiplier; `p` amounts must be whole millisatoshis. */
function amountToMsat(digits: string, multiplier: string): bigint {
  const value = BigInt(digits);
  // BOLT 11: the amount is "a positive decimal integer". A zero one is neither an amount policy could judge (it
  // would pass any cap as 0 msat) nor amountless (which needs an allow rule): wallets read it either way.
  if (value === 0n) throw malformed('the amount is zero');
  const divisor = MSAT_DIVISOR[multiplier];
  let msat: bigint;
  if (divisor === undefined) {
    msat = value * MILLISATS_PER_BTC;
  } else {
    if ((value * MILLISATS_PER_BTC) % divisor !== 0n) throw malformed('the amount is not a whole number of millisatoshis');
    msat = (value * MILLISATS_PER_BTC) / divisor;
  }
  if (msat > MAX_MSAT) throw malformed('the amount is larger than 21 million bitcoin');
  return msat;
}

/** Each `r` hop is 51 bytes: pubkey (33), short channel id (8), fee base (4), fee rate (4), CLTV delta (2). */
function routeHint(bytes: Uint8Array): RouteHintHop[] {
  const HOP = 51;
  if (bytes.length === 0 || bytes.length % HOP !== 0) throw malformed('a route hint (r field) is not a whole number of 51-byte hops');
  const hops: RouteHintHop[] = [];
  for (let at = 0; at < bytes.length; at += HOP) {
    const view = new DataView(bytes.buffer, bytes.byteOffset + at, HOP);
    const pubkey = bytes.subarray(at, at + 33);
    if (pubkey[0] !== 2 && pubkey[0] !== 3) throw malformed('a route hint hop does not name a compressed node id');
    const block = view.getUint32(33) >>> 8; // 3 bytes
    const tx = ((view.getUint8(36) << 16) | view.getUint16(37)) >>> 0; // 3 bytes
    const output = view.getUint16(39);
    hops.push({
      pubkey: bytesToHex(pubkey),
      shortChannelId: `${block}x${tx}x${output}`,
      feeBaseMsat: view.getUint32(41),
      feeProportionalMillionths: view.getUint32(45),
      cltvExpiryDelta: view.getUint16(49),
    });
  }
  return hops;
}

/** Feature bits: the last word holds bits 0-4, the one before 5-9, and so on. */
function featureBits(words: number[]): number[] {
  const bits: number[] = [];
  for (let i = 0; i < words.length; i++) {
    const word = words[words.length - 1 - i]!;
    for (let b = 0; b < 5; b++) if ((word >> b) & 1) bits.push(i * 5 + b);
  }
  return bits;
}

/** Big-endian integer from 5-bit words; at most 10 words (50 bits) so it stays an exact JS number. */
function smallInteger(words: number[]): number {
  if (words.length > 10) throw malformed('an integer field is longer than 50 bits');
  return wordsToInteger(words);
}

function wordsToInteger(words: number[]): number {
  let value = 0;
  for (const word of words) value = value * 32 + word;
  return value;
}

/**
 * 5-bit words to bytes. `pad` keeps a trailing partial byte (zero-filled), as the signed data needs; without it
 * the trailing bits are dropped, which is how a field's byte value is read (e.g. 52 words -> 32 bytes).
 */
function wordsToBytes(words: number[], pad: boolean): Uint8Array {
  const out: number[] = [];
  let accumulator = 0;
  let bits = 0;
  for (const word of words) {
    accumulator = ((accumulator << 5) | word) & 0xfff;
    bits += 5;
    while (bits >= 8) {
      bits -= 8;
      out.push((accumulator >> bits) & 0xff);
    }
  }
  if (pad && bits > 0) out.push((accumulator << (8 - bits)) & 0xff);
  return Uint8Array.from(out);
}

function utf8(bytes: Uint8Array): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch (cause) {
    throw malformed('the description (d field) is not UTF-8', cause);
  }
}

function malformed(message: string, cause?: unknown): AirlockError {
  return new AirlockError('invoice_malformed', message, cause === undefined ? {} : { cause });
}
