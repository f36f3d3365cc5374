// L402 (formerly LSAT) for the paying side, pure and without I/O. A paid API answers 402 with
// `WWW-Authenticate: L402 macaroon="<base64>", invoice="<bolt11>"`; the payer pays the invoice and sends
// `Authorization: L402 <macaroon>:<preimage hex>`. Here: reading the challenge, reading the macaroon (its
// identifier commits to the invoice's payment hash), the expiry a token cache needs, and the credential.
//
// Sources: lightninglabs/L402 protocol-specification.md and macaroon-spec.md; Aperture, the reference server
// (l402/header.go, l402/identifier.go, l402/service.go, auth/authenticator.go, mint/mint.go); go-macaroon
// (marshal-v2.go, packet-v2.go) and libmacaroons doc/format.txt for the binary layout. Where the spec's V2
// table disagrees with them (it numbers location 6, caveat id 1, verification id 2 and gives first-party
// caveats an empty verification id) we follow the implementations and the bytes Aperture actually emits:
// location 1, identifier 2, verification id 4, signature 6, and no verification id on a first-party caveat.
//
// Why not lsat-js: it finds parameters by splitting on commas and spaces and searching for `macaroon=`, so a
// quoted comma or another scheme's parameter is misread; it knows neither `token=` nor the `L402` scheme in a
// credential; and it pulls in bolt11 with a native secp256k1. It is used in the tests as the independent reader.
import { AirlockError } from '@airlock/core';
import { bytesToHex } from '@noble/hashes/utils.js';
import { base64, base64nopad, base64url, base64urlnopad } from '@scure/base';

export type L402Scheme = 'L402' | 'LSAT';

export interface L402Challenge {
  /** `LSAT` is the name before the 2023 rename; servers and clients accept both. */
  scheme: L402Scheme;
  /** The macaroon, base64 exactly as the server sent it: it goes back unchanged in the credential. */
  macaroon: string;
  /** The BOLT 11 invoice, not yet decoded or checked (decodeBolt11 does that). */
  invoice: string;
}

export interface L402Identifier {
  version: 0;
  /** sha256 of the preimage the payer gets by paying the invoice, hex. */
  paymentHash: string;
  /** 32 random bytes naming the token across re-mints, hex. */
  tokenId: string;
}

export interface DecodedL402Macaroon {
  location?: string;
  identifier: L402Identifier;
  /** First-party caveats in order, as `condition=value` strings (the spec's caveat format). */
  caveats: string[];
}

// An Aperture challenge line is about 400 characters plus the invoice; BOLT 11 bounds an invoice at 7089
// (two 5-bit length words per field). A server sends at most a few challenges, so these bounds are far
// above any real header and keep hostile input cheap to refuse.
const MAX_HEADER_LENGTH = 32 * 1024;
const MAX_CHALLENGES = 32;
const MAX_INVOICE_LENGTH = 7089;
// Aperture's macaroons are about 200 bytes (an identifier and three caveats).
const MAX_MACAROON_BYTES = 4096;
const MAX_MACAROON_BASE64_LENGTH = Math.ceil(MAX_MACAROON_BYTES / 3) * 4;
const MAX_CAVEATS = 64;

const IDENTIFIER_V0_LENGTH = 2 + 32 + 32; // version (uint16 big-endian), payment hash, token id
const SIGNATURE_LENGTH = 32; // HMAC-SHA256
const VALID_UNTIL_SUFFIX = '_valid_until';
const MAX_DATE_MS = 8.64e15; // the largest time a JS Date holds

// ---------------------------------------------------------------------------------------------------------
// Challenges (RFC 7235 / RFC 9110 section 11)

/**
 * The L402 offer of a `WWW-Authenticate` value: the one macaroon and invoice its L402 and LSAT challenges
 * name (Aperture sends the same offer under both schemes; fetch joins the two header lines with ", ").
 * `scheme` is `L402` when offered, else `LSAT`. Throws `l402_challenge_malformed` for a value that is not
 * well-formed, that holds no L402/LSAT challenge, or whose L402/LSAT challenges offer different things (which
 * one to pay would be a guess). Messages never echo the header.
 */
export function parseL402Challenge(header: string): L402Challenge {
  const offers = parseL402Challenges(header);
  const first = offers[0];
  if (first === undefined) throw challengeMalformed('the header holds no L402 or LSAT challenge');
  if (offers.some((offer) => offer.macaroon !== first.macaroon || offer.invoice !== first.invoice)) {
    throw challengeMalformed('the L402/LSAT challenges offer different macaroons or invoices');
  }
  return { scheme: offers.some((offer) => offer.scheme === 'L402') ? 'L402' : 'LSAT', macaroon: first.macaroon, invoice: first.invoice };
}

/**
 * Every L402/LSAT challenge of a `WWW-Authenticate` value, in order; challenges of other schemes are skipped
 * (an empty list when there is none). The whole value must be well-formed: a syntax error anywhere could
 * move a parameter from one challenge to another, so it is refused rather than read around.
 * Accepts `macaroon=` (Aperture, the older spec) and `token=` (the current spec) and an optional `version="0"`.
 */
export function parseL402Challenges(header: string): L402Challenge[] {
  if (typeof header !== 'string' || header.length > MAX_HEADER_LENGTH) throw challengeMalformed('the header is not a string of a plausible length');
  const offers: L402Challenge[] = [];
  for (const challenge of readChallenges(header)) {
    const scheme = challenge.scheme.toUpperCase();
    if (scheme === 'L402' || scheme === 'LSAT') offers.push(toL402Challenge(scheme, challenge));
  }
  return offers;
}

interface RawChallenge {
  scheme: string;
  /** Lower-cased parameter names (they are case-insensitive) to unquoted values. */
  params: Map<string, string>;
  repeatedParam: boolean;
  token68?: string;
}

function toL402Challenge(scheme: L402Scheme, challenge: RawChallenge): L402Challenge {
  if (challenge.token68 !== undefined) throw challengeMalformed('an L402 challenge carries a bare token instead of parameters');
  if (challenge.repeatedParam) throw challengeMalformed('a parameter of an L402 challenge appears twice');
  const { params } = challenge;
  const version = params.get('version');
  if (version !== undefined && version !== '0') throw challengeMalformed('the L402 challenge names a version other than 0');
  const token = params.get('token');
  const macaroonParam = params.get('macaroon');
  if (token !== undefined && macaroonParam !== undefined && token !== macaroonParam) throw challengeMalformed('the challenge names two different macaroons (token and macaroon)');
  const macaroon = token ?? macaroonParam;
  if (macaroon === undefined) throw challengeMalformed('the L402 challenge has no macaroon (token) parameter');
  if (!isBase64Text(macaroon)) throw challengeMalformed('the macaroon parameter is not base64 of a plausible length');
  const invoice = params.get('invoice');
  if (invoice === undefined) throw challengeMalformed('the L402 challenge has no invoice parameter');
  if (invoice.length > MAX_INVOICE_LENGTH || !/^ln[0-9a-z]+$/i.test(invoice)) throw challengeMalformed('the invoice parameter is not a BOLT 11 payment request');
  return { scheme, macaroon, invoice };
}

/**
 * Reads `1#challenge` where `challenge = auth-scheme [ 1*SP ( token68 / #auth-param ) ]` and
 * `auth-param = token BWS "=" BWS ( token / quoted-string )`. The comma that separates two challenges also
 * separates two parameters: a token followed by "=" is a parameter, any other token opens a challenge.
 * Linear in the length of the value.
 */
function readChallenges(header: string): RawChallenge[] {
  const text = new HeaderText(header);
  const challenges: RawChallenge[] = [];
  let current: RawChallenge | undefined;
  // What the previous element was: the grammar allows a parameter right after its scheme (no comma), and
  // requires a comma between any other two elements.
  let previous: 'nothing' | 'scheme' | 'element' = 'nothing';
  for (;;) {
    const separator = text.skipSeparators();
    if (text.atEnd()) break;
    if (previous === 'element' && !separator.comma) throw challengeMalformed('two elements of the header are not separated by a comma');
    const name = text.token();
    if (name === '') throw challengeMalformed('the header holds a character that starts no token');
    const afterName = text.at;
    text.skipSpaces();
    if (text.peek() === '=') {
      if (current === undefined || current.token68 !== undefined) throw challengeMalformed('a parameter stands outside any challenge');
      if (previous === 'scheme' && separator.comma) throw challengeMalformed('a comma separates a scheme from its first parameter');
      text.at += 1;
      text.skipSpaces();
      let value: string;
      if (text.peek() === '"') {
        value = text.quotedString();
      } else {
        value = text.token();
        if (value === '') throw challengeMalformed('a parameter has no value (neither a token nor a quoted string)');
      }
      const key = name.toLowerCase();
      if (current.params.has(key)) current.repeatedParam = true;
      else current.params.set(key, value);
      previous = 'element';
      continue;
    }
    text.at = afterName;
    if (previous === 'scheme' && !separator.comma) throw challengeMalformed('a scheme follows another scheme without a comma');
    if (challenges.length === MAX_CHALLENGES) throw challengeMalformed('the header holds too many challenges');
    current = { scheme: name, params: new Map(), repeatedParam: false };
    challenges.push(current);
    previous = 'scheme';
    const token68 = text.token68();
    if (token68 !== undefined) {
      current.token68 = token68;
      previous = 'element';
    }
  }
  return challenges;
}

/** RFC 9110 11.2: token68 = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=" (sticky: matched in place). */
const TOKEN68 = /[A-Za-z0-9\-._~+/]+=*/y;

/** A cursor over a header value, with the RFC 9110 lexical rules it needs. */
class HeaderText {
  at = 0;
  private readonly value: string;
  constructor(value: string) {
    this.value = value;
  }

  atEnd(): boolean {
    return this.at >= this.value.length;
  }

  peek(): string | undefined {
    return this.value[this.at];
  }

  skipSpaces(): void {
    while (this.peek() === ' ' || this.peek() === '\t') this.at += 1;
  }

  /** OWS and commas between list elements (RFC 9110 5.6.1 allows empty elements). */
  skipSeparators(): { comma: boolean } {
    let comma = false;
    for (let c = this.peek(); c === ' ' || c === '\t' || c === ','; c = this.peek()) {
      if (c === ',') comma = true;
      this.at += 1;
    }
    return { comma };
  }

  /** `token = 1*tchar`; empty when none is here. */
  token(): string {
    const start = this.at;
    while (this.at < this.value.length && isTokenChar(this.value.charCodeAt(this.at))) this.at += 1;
    return this.value.slice(start, this.at);
  }

  /**
   * A token68 after a scheme (`1*SP token68`), when what follows the spaces is one and it ends the challenge;
   * else the position is left at the scheme's end for parameters to follow.
   */
  token68(): string | undefined {
    if (this.peek() !== ' ') return undefined;
    const start = this.at;
    this.skipSpaces();
    TOKEN68.lastIndex = this.at;
    const found = TOKEN68.exec(this.value);
    if (found !== null) {
      const end = this.at + found[0].length;
      let next = end;
      while (this.value[next] === ' ' || this.value[next] === '\t') next += 1;
      if (next >= this.value.length || this.value[next] === ',') {
        this.at = end;
        return found[0];
      }
    }
    this.at = start;
    return undefined;
  }

  /** `quoted-string = DQUOTE *( qdtext / quoted-pair ) DQUOTE`, unescaped. Control characters are refused. */
  quotedString(): string {
    this.at += 1; // the opening quote
    let out = '';
    while (this.at < this.value.length) {
      const code = this.value.charCodeAt(this.at);
      if (code === 0x22) {
        this.at += 1;
        return out;
      }
      if (code === 0x5c) {
        const escaped = this.value.charCodeAt(this.at + 1);
        if (!(escaped === 0x09 || (escaped >= 0x20 && escaped <= 0x7e) || (escaped >= 0x80 && escaped <= 0xff))) throw challengeMalformed('a quoted string escapes a character that cannot be escaped');
        out += this.value[this.at + 1];
        this.at += 2;
        continue;
      }
      if (!(code === 0x09 || (code >= 0x20 && code <= 0x7e) || (code >= 0x80 && code <= 0xff))) throw challengeMalformed('a quoted string holds a control or non-byte character');
      out += this.value[this.at];
      this.at += 1;
    }
    throw challengeMalformed('a quoted string is not closed');
  }
}

/** RFC 9110 5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA */
function isTokenChar(code: number): boolean {
  if ((code >= 0x30 && code <= 0x39) || (code >= 0x41 && code <= 0x5a) || (code >= 0x61 && code <= 0x7a)) return true;
  return "!#$%&'*+-.^_`|~".includes(String.fromCharCode(code));
}

// ---------------------------------------------------------------------------------------------------------
// Macaroons (V2 binary, as go-macaroon, libmacaroons and js-macaroon write it)

const FIELD = { eos: 0, location: 1, identifier: 2, verificationId: 4, signature: 6 } as const;

/**
 * Decodes an L402 macaroon: base64 (standard or URL-safe, padded or not) of a V2 binary macaroon whose
 * identifier is an L402 version 0 identifier. Refuses V1 macaroons (Aperture mints V2 only, and js-macaroon
 * cannot read V1 binary either), third-party caveats (they need a discharge Airlock cannot obtain), unknown
 * identifier versions, non-minimal varints, and any byte after the signature. Does not check the signature:
 * only the server holds the root key. Throws `l402_macaroon_malformed`; messages never echo the macaroon.
 */
export function decodeL402Macaroon(encoded: string): DecodedL402Macaroon {
  const bytes = decodeBase64(encoded);
  if (bytes.length > MAX_MACAROON_BYTES) throw macaroonMalformed('the macaroon is larger than any L402 macaroon');
  const reader = new MacaroonReader(bytes);
  const version = reader.byte();
  if (version !== 2) {
    throw macaroonMalformed(isAsciiHexDigit(version) ? 'the macaroon is in the V1 format, which L402 servers do not mint' : 'the macaroon is not in the V2 binary format');
  }

  // Header section: location? identifier EOS.
  const header = reader.section();
  let at = 0;
  let location: string | undefined;
  if (header[at]?.type === FIELD.location) location = utf8(header[at++]!.data, 'the location');
  const identifierField = header[at++];
  if (identifierField?.type !== FIELD.identifier || at !== header.length) throw macaroonMalformed('the macaroon header is not an optional location and an identifier');
  const identifier = decodeIdentifier(identifierField.data);

  // Caveat sections until an empty one: location? identifier verificationId? EOS. A first-party caveat is an
  // identifier alone; a location or verification id makes it third-party.
  const caveats: string[] = [];
  for (let section = reader.section(); section.length > 0; section = reader.section()) {
    if (section.length !== 1 || section[0]!.type !== FIELD.identifier) throw macaroonMalformed('a caveat is third-party or has an unexpected field');
    if (caveats.length === MAX_CAVEATS) throw macaroonMalformed('the macaroon has more caveats than any L402 macaroon');
    caveats.push(utf8(section[0]!.data, 'a caveat'));
  }

  const signature = reader.field();
  if (signature.type !== FIELD.signature || signature.data.length !== SIGNATURE_LENGTH) throw macaroonMalformed('the macaroon does not end with a 32-byte signature');
  if (!reader.atEnd()) throw macaroonMalformed('bytes follow the macaroon signature');
  return location === undefined ? { identifier, caveats } : { location, identifier, caveats };
}

/**
 * The L402 identifier (macaroon-spec.md "Identifier Structure", Aperture l402/identifier.go):
 * version uint16 big-endian, then for version 0 the payment hash and the token id, 32 bytes each.
 * lsat-js (and servers built on it, such as boltwall) put the same 66 bytes in as 132 lowercase hex
 * characters; that form is read too, as nothing else is 132 hex characters long.
 */
function decodeIdentifier(data: Uint8Array): L402Identifier {
  let raw = data;
  if (data.length === IDENTIFIER_V0_LENGTH * 2 && data.every(isLowerHexDigit)) raw = Uint8Array.from({ length: IDENTIFIER_V0_LENGTH }, (_, i) => Number.parseInt(String.fromCharCode(data[2 * i]!, data[2 * i + 1]!), 16));
  if (raw.length < 2) throw macaroonMalformed('the macaroon identifier is too short to hold a version');
  const version = (raw[0]! << 8) | raw[1]!;
  if (version !== 0) throw macaroonMalformed('the macaroon identifier has an unknown L402 version');
  if (raw.length !== IDENTIFIER_V0_LENGTH) throw macaroonMalformed('a version 0 L402 identifier is not 66 bytes');
  return { version: 0, paymentHash: bytesToHex(raw.subarray(2, 34)), tokenId: bytesToHex(raw.subarray(34, 66)) };
}

interface Field {
  type: number;
  data: Uint8Array;
}

/** go-macaroon packet-v2.go: `fieldType(varint) payloadLen(varint) data`, EOS being a lone zero byte. */
class MacaroonReader {
  private at = 0;
  private readonly bytes: Uint8Array;
  constructor(bytes: Uint8Array) {
    this.bytes = bytes;
  }

  atEnd(): boolean {
    return this.at === this.bytes.length;
  }

  byte(): number {
    if (this.at >= this.bytes.length) throw macaroonMalformed('the macaroon is cut short');
    return this.bytes[this.at++]!;
  }

  /** Unsigned LEB128, minimal, at most 4 bytes (2^28 - 1 is far above any length allowed here). */
  varint(): number {
    let value = 0;
    for (let shift = 0; shift < 28; shift += 7) {
      const b = this.byte();
      value += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) {
        if (b === 0 && shift > 0) throw macaroonMalformed('a macaroon varint is not minimally encoded');
        return value;
      }
    }
    throw macaroonMalformed('a macaroon varint is longer than 4 bytes');
  }

  field(): Field {
    const type = this.varint();
    if (type === FIELD.eos) return { type, data: new Uint8Array(0) };
    const length = this.varint();
    if (length > this.bytes.length - this.at) throw macaroonMalformed('a macaroon field is longer than the macaroon');
    const data = this.bytes.subarray(this.at, this.at + length);
    this.at += length;
    return { type, data };
  }

  /** Fields up to an EOS, in strictly increasing type order (go-macaroon refuses others as out of order). */
  section(): Field[] {
    const fields: Field[] = [];
    for (let field = this.field(); field.type !== FIELD.eos; field = this.field()) {
      if (fields.length > 0 && field.type <= fields[fields.length - 1]!.type) throw macaroonMalformed('macaroon fields are out of order or repeated');
      fields.push(field);
    }
    return fields;
  }
}

/** Standard or URL-safe alphabet, padded or not; canonical (no stray bits), one alphabet, no whitespace. */
function decodeBase64(text: string): Uint8Array {
  if (!isBase64Text(text)) throw macaroonMalformed('the macaroon is not base64 of a plausible length');
  // Each codec refuses the other alphabet's characters, so a mixed string is refused below.
  const urlSafe = /[-_]/.test(text);
  const padded = text.endsWith('=');
  const codec = urlSafe ? (padded ? base64url : base64urlnopad) : padded ? base64 : base64nopad;
  try {
    return codec.decode(text);
  } catch (cause) {
    throw macaroonMalformed('the macaroon is not valid base64 (alphabet, length, padding or trailing bits)', cause);
  }
}

function isBase64Text(text: unknown): text is string {
  return typeof text === 'string' && text.length > 0 && text.length <= MAX_MACAROON_BASE64_LENGTH && /^[A-Za-z0-9+/\-_]+={0,2}$/.test(text);
}

function utf8(bytes: Uint8Array, what: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch (cause) {
    throw macaroonMalformed(`${what} of the macaroon is not UTF-8`, cause);
  }
}

function isAsciiHexDigit(b: number): boolean {
  return (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66);
}

function isLowerHexDigit(b: number): boolean {
  return (b >= 0x30 && b <= 0x39) || (b >= 0x61 && b <= 0x66);
}

// ---------------------------------------------------------------------------------------------------------
// Expiry and credential

/**
 * The earliest expiry, in milliseconds since the epoch (like DecodedInvoice.expiresAt), named by a
 * `<service>_valid_until=<unix seconds>` caveat (Aperture's timeout caveats, l402/service.go); undefined
 * when no caveat names one. Every service's caveat counts, so a token cache never keeps a token longer than
 * any of them allows. A value that is not a decimal integer makes Aperture refuse the token (ParseInt
 * fails), so it counts as expired at `now`. Caveats without "=" are skipped, as Aperture skips them.
 */
export function l402Expiry(caveats: readonly string[], now: number): number | undefined {
  let earliest: number | undefined;
  for (const caveat of caveats) {
    const equals = caveat.indexOf('=');
    if (equals < 0 || !caveat.slice(0, equals).endsWith(VALID_UNTIL_SUFFIX)) continue;
    const value = caveat.slice(equals + 1);
    const expiry = /^\d{1,19}$/.test(value) ? Math.min(Number(value) * 1000, MAX_DATE_MS) : now;
    if (earliest === undefined || expiry < earliest) earliest = expiry;
  }
  return earliest;
}

/**
 * The `Authorization` value that answers a challenge: `<scheme> <macaroon>:<preimage hex>`
 * (protocol-specification.md "Client Flow" step 3). The macaroon goes back exactly as the server sent it;
 * the preimage is lower-cased, as Aperture's header pattern `[a-f0-9]{64}` requires. The result is a bearer
 * credential: it must not be logged.
 */
export function formatL402Authorization(scheme: L402Scheme, macaroon: string, preimageHex: string): string {
  if (scheme !== 'L402' && scheme !== 'LSAT') throw challengeMalformed('the scheme is neither L402 nor LSAT');
  if (!isBase64Text(macaroon)) throw macaroonMalformed('the macaroon is not base64 of a plausible length');
  if (typeof preimageHex !== 'string' || !/^[0-9a-fA-F]{64}$/.test(preimageHex)) throw new AirlockError('invalid_hex', 'the preimage is not 32 bytes of hex');
  return `${scheme} ${macaroon}:${preimageHex.toLowerCase()}`;
}

function challengeMalformed(message: string): AirlockError {
  return new AirlockError('l402_challenge_malformed', message);
}

function macaroonMalformed(message: string, cause?: unknown): AirlockError {
  return new AirlockError('l402_macaroon_malformed', message, cause === undefined ? {} : { cause });
}
