/**
 * NIP-47 request/response over relays, as the CLIENT of a wallet service: reads the wallet's info event
 * (kind 13194), sends requests (kind 23194, NIP-44 encrypted, signed with the connection secret) and matches
 * responses (kind 23195). Built on the relay client the NIP-46 bunker uses (RelayConnection) and the NIP-44
 * and NIP-01 code already in Airlock.
 *
 * What makes a response count, in order (anything else is dropped and counted, never answered):
 *  1. a well-formed NIP-01 event whose id and BIP-340 signature hold (checked here: relays are not trusted);
 *  2. kind 23195, authored by the wallet service pubkey of the connection string;
 *  3. its `e` tag names a request this transport sent and still waits for; a `p` tag, when present, names us;
 *  4. it decrypts (NIP-44 v2, the connection's conversation key) to a JSON object whose `result_type` is the
 *     method that was asked.
 * The first response that passes settles the request; copies from other relays find nothing waiting.
 *
 * Subscriptions are registered before the sockets open, so each relay has the REQ for responses before it
 * sees any request (one socket delivers in order): a fast wallet cannot answer before Airlock listens.
 */
import { AirlockError, checkJsonShape, type SignedNostrEvent } from '@airlock/core';
import { nip44Decrypt, nip44Encrypt } from '@airlock/chains';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { isValidSignedEvent, nostrEventId } from '../nostr-bunker/nip01.ts';
import { RelayConnection } from '../nostr-bunker/relay-connection.ts';
import { relayLabel } from '../relay-label.ts';
import type { NwcConnection } from './nwc-uri.ts';

export const NWC_INFO_KIND = 13194;
export const NWC_REQUEST_KIND = 23194;
export const NWC_RESPONSE_KIND = 23195;
const INFO_SUBSCRIPTION = 'nwc-info';
const REPLY_SUBSCRIPTION = 'nwc-replies';
/** NIP-44 caps plaintext at 64 KiB; base64 grows it by 4/3. Larger contents are dropped before decryption. */
const MAX_CONTENT_CHARS = 100_000;

/** What the wallet service says it can do (its newest info event). */
export interface WalletInfo {
  methods: ReadonlySet<string>;
  /** The `encryption` tag's schemes; empty when the tag is absent (NIP-47: that means NIP-04 only). */
  encryption: ReadonlySet<string>;
  createdAt: number;
}

/** A response that passed every check: `error` set on failure, `result` on success. */
export interface Nip47Reply {
  resultType: string;
  error?: { code: string; message: string };
  result?: Record<string, unknown>;
}

/** Counts of what arrived; operators and tests read it. */
export interface NwcTransportStats {
  /** Malformed, bad id or bad signature. */
  droppedInvalid: number;
  /** Not from the wallet service key, not a known kind, or addressed to another client. */
  droppedForeign: number;
  /** Its `e` tag names no request waiting for an answer (unknown id, already answered, or given up on). */
  droppedUnmatched: number;
  /** Did not decrypt with this connection's key, or was too large to try. */
  droppedUndecryptable: number;
  /** Decrypted, but not a NIP-47 response to the method asked. */
  droppedMalformed: number;
  replies: number;
}

interface Waiting {
  method: string;
  resolve(reply: Nip47Reply): void;
}

export class NwcTransport {
  readonly stats: NwcTransportStats = { droppedInvalid: 0, droppedForeign: 0, droppedUnmatched: 0, droppedUndecryptable: 0, droppedMalformed: 0, replies: 0 };
  private readonly connection: NwcConnection;
  private readonly log: (message: string) => void;
  private readonly relays: RelayConnection[];
  private readonly waiting = new Map<string, Waiting>();
  readonly #conversationKey: Uint8Array;
  private latestInfo: WalletInfo | undefined;
  private closed = false;
  private infoArrived: (() => void) | undefined;

  constructor(connection: NwcConnection, log: (message: string) => void = () => {}) {
    this.connection = connection;
    this.log = log;
    this.#conversationKey = connection.conversationKey();
    this.relays = connection.relays.map((url) => new RelayConnection(url, { onEvent: (_sub, event) => this.receive(event), onProblem: log }));
    const wallet = [connection.walletPubkey];
    for (const relay of this.relays) {
      relay.subscribe(INFO_SUBSCRIPTION, [{ kinds: [NWC_INFO_KIND], authors: wallet }]);
      // limit 0: only new responses. Filtering on authors (not `#p`): NIP-47 says a response SHOULD carry a
      // `p` tag, and some wallet services leave it out; the wallet key is unique per connection anyway.
      relay.subscribe(REPLY_SUBSCRIPTION, [{ kinds: [NWC_RESPONSE_KIND], authors: wallet, limit: 0 }]);
    }
  }

  /** The wallet's newest info event so far (undefined before `open` resolved). */
  get info(): WalletInfo | undefined {
    return this.latestInfo;
  }

  /**
   * Connects to every relay and waits for the wallet's info event. A relay that is down is retried in the
   * background while the others serve; throws when none is reachable or no info event arrives in time.
   */
  async open(infoTimeoutMs: number): Promise<WalletInfo> {
    const results = await Promise.allSettled(this.relays.map((r) => r.connect()));
    results.forEach((r, i) => {
      if (r.status === 'rejected') this.log(`nwc: relay ${relayLabel(this.relays[i]!.url)} unreachable at start; retrying`);
    });
    if (results.every((r) => r.status === 'rejected')) {
      this.close();
      throw new AirlockError('internal', 'NWC: none of the relays in the connection string accepted a connection', { details: { relays: this.connection.relays.map(relayLabel) } });
    }
    if (!this.latestInfo) {
      const arrived = new Promise<void>((resolve) => (this.infoArrived = resolve));
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<void>((resolve) => (timer = setTimeout(resolve, infoTimeoutMs)));
      await Promise.race([arrived, timedOut]);
      clearTimeout(timer);
    }
    if (!this.latestInfo) {
      this.close();
      throw new AirlockError('config_invalid', `NWC: the wallet service published no info event (kind ${NWC_INFO_KIND}) on its relays within ${infoTimeoutMs} ms`, {
        hints: ['Check that the wallet service is running and connected to the relays named in the connection string.'],
      });
    }
    return this.latestInfo;
  }

  /**
   * Sends one request and waits up to `timeoutMs` for its response: undefined when none came in time (the
   * wallet may still act on it). Throws when no relay accepted the request: the outcome is then unknown too
   * (a relay may have taken it and lost only its OK), so the caller must not read that as "not sent".
   * `expiresAt` (unix seconds) becomes the NIP-47 `expiration` tag: a wallet that honours it ignores the
   * request if a relay delivers it late.
   */
  async request(method: string, params: Record<string, unknown>, options: { timeoutMs: number; expiresAt?: number }): Promise<Nip47Reply | undefined> {
    if (this.closed) throw new AirlockError('shutting_down', 'NWC: the connection to the wallet service is closed; nothing was sent');
    const tags = [['p', this.connection.walletPubkey], ['encryption', 'nip44_v2']];
    if (options.expiresAt !== undefined) tags.push(['expiration', String(options.expiresAt)]);
    const event = this.sign(NWC_REQUEST_KIND, tags, nip44Encrypt(JSON.stringify({ method, params }), this.#conversationKey));

    const replied = new Promise<Nip47Reply>((resolve) => this.waiting.set(event.id, { method, resolve }));
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), options.timeoutMs)));
    const refusedEverywhere = firstAccepted(this.relays.map((r) => r.publish(event))).then((accepted) => (accepted ? new Promise<never>(() => {}) : ('undelivered' as const)));
    try {
      const outcome = await Promise.race([replied, timedOut, refusedEverywhere]);
      if (outcome === 'undelivered') {
        throw new AirlockError('internal', `NWC: no relay accepted the ${method} request; its outcome is unknown`, { details: { outcome: 'unknown' } });
      }
      return outcome;
    } finally {
      clearTimeout(timer);
      this.waiting.delete(event.id);
    }
  }

  close(): void {
    this.closed = true;
    for (const relay of this.relays) relay.close();
  }

  private sign(kind: number, tags: string[][], content: string): SignedNostrEvent {
    const unsigned = { pubkey: this.connection.clientPubkey, created_at: Math.floor(Date.now() / 1000), kind, tags, content };
    const id = nostrEventId(unsigned);
    // noble's schnorr.sign verifies the signature before returning it.
    return { ...unsigned, id, sig: bytesToHex(this.connection.signEventId(hexToBytes(id))) };
  }

  private receive(raw: unknown): void {
    if (!isValidSignedEvent(raw)) {
      this.stats.droppedInvalid++;
      return;
    }
    if (raw.pubkey !== this.connection.walletPubkey) {
      this.stats.droppedForeign++;
      return;
    }
    if (raw.kind === NWC_INFO_KIND) return this.receiveInfo(raw);
    if (raw.kind !== NWC_RESPONSE_KIND) {
      this.stats.droppedForeign++;
      return;
    }
    const addressee = raw.tags.find((t) => t[0] === 'p')?.[1];
    if (addressee !== undefined && addressee !== this.connection.clientPubkey) {
      this.stats.droppedForeign++;
      return;
    }
    const requestId = raw.tags.find((t) => t[0] === 'e')?.[1];
    const waiting = requestId === undefined ? undefined : this.waiting.get(requestId);
    if (!waiting) {
      this.stats.droppedUnmatched++;
      return;
    }
    let plaintext: string;
    try {
      if (raw.content.length > MAX_CONTENT_CHARS) throw new Error('too large');
      plaintext = nip44Decrypt(raw.content, this.#conversationKey);
    } catch {
      this.stats.droppedUndecryptable++;
      this.log('nwc: dropped a response that does not decrypt with this connection');
      return;
    }
    const reply = parseReply(plaintext);
    if (!reply || reply.resultType !== waiting.method) {
      this.stats.droppedMalformed++;
      this.log(`nwc: dropped a malformed response to ${waiting.method}`);
      return;
    }
    this.stats.replies++;
    this.waiting.delete(requestId!);
    waiting.resolve(reply);
  }

  /** NIP-47: methods are the space-separated content; the `encryption` tag lists schemes (absent: NIP-04 only). */
  private receiveInfo(event: SignedNostrEvent): void {
    if (this.latestInfo && this.latestInfo.createdAt > event.created_at) return; // an older copy from another relay
    const encryption = event.tags.find((t) => t[0] === 'encryption')?.[1] ?? '';
    this.latestInfo = { methods: words(event.content), encryption: words(encryption), createdAt: event.created_at };
    this.infoArrived?.();
  }
}

function words(text: string): Set<string> {
  return new Set(text.split(/\s+/).filter((w) => w !== ''));
}

/** True as soon as one relay accepted the event; false once every relay refused it (or could not be reached). */
function firstAccepted(publishes: Promise<{ accepted: boolean }>[]): Promise<boolean> {
  return new Promise((resolve) => {
    let refused = 0;
    for (const p of publishes) {
      void p.then((r) => {
        if (r.accepted) resolve(true);
        else if (++refused === publishes.length) resolve(false);
      });
    }
  });
}

/**
 * NIP-47 response content: `{result_type, error: {code, message} | null, result: {...} | null}`. Its strings are
 * made well-formed (a lone surrogate and U+0000 become U+FFFD) instead of refusing the reply, as a request's are
 * refused: a `lookup_invoice` result carries the invoice's description, which the payee wrote, and a reply read as
 * no answer left a payment the wallet had made in flight for good (found by review). The fields Airlock acts on
 * (preimage, hash, amounts, state, error code) are hex, numbers or fixed words.
 */
function parseReply(plaintext: string): Nip47Reply | undefined {
  let value: unknown;
  try {
    value = JSON.parse(plaintext);
    checkJsonShape(value, { subject: 'The NWC response' });
  } catch {
    return undefined;
  }
  value = wellFormedCopy(value);
  if (!isObject(value) || typeof value.result_type !== 'string') return undefined;
  const { error, result } = value;
  if (error !== undefined && error !== null) {
    if (!isObject(error) || typeof error.code !== 'string') return undefined;
    return { resultType: value.result_type, error: { code: error.code, message: typeof error.message === 'string' ? error.message : '' } };
  }
  if (!isObject(result)) return undefined;
  return { resultType: value.result_type, result };
}

/** A copy whose keys and strings are well-formed and free of U+0000 (each such code unit becomes U+FFFD). Depth is bounded by checkJsonShape. */
function wellFormedCopy(value: unknown): unknown {
  if (typeof value === 'string') return value.toWellFormed().replaceAll('\u0000', '\uFFFD');
  if (Array.isArray(value)) return value.map(wellFormedCopy);
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [key, member] of Object.entries(value)) out[wellFormedCopy(key) as string] = wellFormedCopy(member);
  return out;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
