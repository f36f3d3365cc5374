/**
 * The Nostr Wallet Connect connection string (NIP-47 "Nostr Wallet Connect URI"):
 * `nostr+walletconnect://<wallet service pubkey>?relay=<url>&relay=<url>&secret=<32-byte hex>&lud16=<address>`.
 *
 * The `secret` is the client's private key for this connection: whoever holds it can spend the wallet's budget.
 * So the parser never echoes its input (Node's `URL` puts the whole input on its TypeError, which is why the
 * outer string is split by hand), and the parsed connection keeps the secret in a private field: it is not
 * enumerable, not in JSON, not in `util.inspect`. Code that needs it calls `signEventId` or `conversationKey`,
 * so the raw key never leaves this file.
 */
import { AirlockError } from '@airlock/core';
import { schnorr, secp256k1 } from '@noble/curves/secp256k1.js';
import { extract } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, hexToBytes, utf8ToBytes } from '@noble/hashes/utils.js';

const SCHEME = 'nostr+walletconnect://';
const HEX64 = /^[0-9a-fA-F]{64}$/;
const LIGHTNING_ADDRESS = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
const NIP44_SALT = utf8ToBytes('nip44-v2');

export interface ParseNwcUriOptions {
  /**
   * Accept `ws://` relays on hosts other than loopback. Off by default: the content is NIP-44 encrypted either
   * way, but a plain socket shows every observer when and how often Airlock pays.
   */
  allowInsecureRelays?: boolean;
}

/** A parsed, validated connection string. */
export class NwcConnection {
  /** The wallet service's x-only public key (lowercase hex): requests go to it, replies must be signed by it. */
  readonly walletPubkey: string;
  /** Relay URLs, deduplicated, in the order given. */
  readonly relays: readonly string[];
  /** The x-only public key of the connection secret: the author of Airlock's requests. */
  readonly clientPubkey: string;
  readonly lud16: string | undefined;
  readonly #secret: Uint8Array;

  constructor(walletPubkey: string, relays: readonly string[], secret: Uint8Array, lud16: string | undefined) {
    this.walletPubkey = walletPubkey;
    this.relays = relays;
    this.#secret = secret;
    this.clientPubkey = bytesToHex(schnorr.getPublicKey(secret));
    this.lud16 = lud16;
  }

  /** BIP-340 signature of a NIP-01 event id with the connection secret (noble verifies it before returning). */
  signEventId(eventId: Uint8Array): Uint8Array {
    return schnorr.sign(eventId, this.#secret);
  }

  /**
   * NIP-44 "get_conversation_key" between the connection secret and the wallet service: the x coordinate of the
   * ECDH point with the wallet key lifted to even y, HKDF-extracted with salt `nip44-v2`. The same steps as
   * packages/keys/src/nip44-conversation.ts, which stays private to the key backends (its keys never leave that
   * package); this secret is a connection credential the server holds, not a vault key.
   */
  conversationKey(): Uint8Array {
    const point = secp256k1.getSharedSecret(this.#secret, hexToBytes(`02${this.walletPubkey}`), true);
    const shared = point.slice(1, 33);
    try {
      return extract(sha256, shared, NIP44_SALT);
    } finally {
      point.fill(0);
      shared.fill(0);
    }
  }

  /** The connection string without its secret: safe for logs and operator screens. */
  toString(): string {
    const query = this.relays.map((r) => `relay=${encodeURIComponent(r)}`);
    if (this.lud16) query.push(`lud16=${encodeURIComponent(this.lud16)}`);
    return `${SCHEME}${this.walletPubkey}?${[...query, 'secret=(redacted)'].join('&')}`;
  }

  toJSON(): { walletPubkey: string; relays: readonly string[]; clientPubkey: string; lud16?: string } {
    return { walletPubkey: this.walletPubkey, relays: this.relays, clientPubkey: this.clientPubkey, ...(this.lud16 ? { lud16: this.lud16 } : {}) };
  }
}

function refuse(problem: string): AirlockError {
  // No `cause`: a cause from URL parsing would carry the input, and the input carries the secret.
  return new AirlockError('config_invalid', `NWC connection string: ${problem}`, {
    hints: ['Copy the connection string again from the wallet service (it looks like nostr+walletconnect://<64 hex>?relay=wss://…&secret=<64 hex>).'],
  });
}

/** Parses and checks a connection string; throws `config_invalid` with a message that never contains the input. */
export function parseNwcUri(uri: string, options: ParseNwcUriOptions = {}): NwcConnection {
  if (typeof uri !== 'string') throw refuse('expected a string');
  const text = uri.trim();
  if (!text.toLowerCase().startsWith(SCHEME)) throw refuse(`must start with ${SCHEME}`);
  if (text.includes('#')) throw refuse('must not contain a fragment (#)');
  const rest = text.slice(SCHEME.length);
  const question = rest.indexOf('?');
  const authority = question === -1 ? rest : rest.slice(0, question);
  const query = new URLSearchParams(question === -1 ? '' : rest.slice(question + 1));

  // The "base path" is the wallet service pubkey: 32-byte hex, x-only, on the curve.
  if (!HEX64.test(authority)) throw refuse('the wallet service public key (after ://) must be 64 hex characters');
  const walletPubkey = authority.toLowerCase();
  try {
    schnorr.utils.lift_x(BigInt(`0x${walletPubkey}`));
  } catch {
    throw refuse('the wallet service public key is not a point on secp256k1');
  }

  const relays = [...new Set(query.getAll('relay').map((r, i) => checkRelay(r, i + 1, options)))];
  if (relays.length === 0) throw refuse('needs at least one relay= parameter');

  const secrets = query.getAll('secret');
  if (secrets.length === 0) throw refuse('needs a secret= parameter');
  if (secrets.length > 1) throw refuse('has more than one secret= parameter');
  if (!HEX64.test(secrets[0]!)) throw refuse('the secret must be 64 hex characters (32 bytes)');
  const secret = hexToBytes(secrets[0]!.toLowerCase());
  if (!secp256k1.utils.isValidSecretKey(secret)) throw refuse('the secret is not a valid secp256k1 private key');

  const lud16s = query.getAll('lud16');
  if (lud16s.length > 1) throw refuse('has more than one lud16= parameter');
  const lud16 = lud16s[0];
  if (lud16 !== undefined && !LIGHTNING_ADDRESS.test(lud16)) throw refuse('lud16 must be a lightning address (name@domain)');

  return new NwcConnection(walletPubkey, relays, secret, lud16);
}

function checkRelay(relay: string, position: number, options: ParseNwcUriOptions): string {
  let url: URL;
  try {
    url = new URL(relay);
  } catch {
    throw refuse(`relay ${position} is not a URL`);
  }
  if (url.protocol !== 'wss:' && url.protocol !== 'ws:') throw refuse(`relay ${position} must be a wss:// URL`);
  // Relay URLs end up in connection logs; credentials in them would too.
  if (url.username || url.password) throw refuse(`relay ${position} must not carry a user name or password`);
  if (url.protocol === 'ws:' && !options.allowInsecureRelays && !isLoopback(url.hostname)) {
    throw refuse(`relay ${position} uses plain ws:// on a non-loopback host; use wss:// (or allow insecure relays explicitly)`);
  }
  return url.href;
}

function isLoopback(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname);
}
