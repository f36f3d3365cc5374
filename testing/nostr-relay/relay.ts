/**
 * A NIP-01 relay for tests: a TEST DOUBLE, not a relay to run in production (no persistence, no NIP-11,
 * no NIP-42 auth, no limits beyond a message size). It exists so the NIP-46 bunker tests can run real clients
 * (nostr-tools' BunkerSigner and SimplePool) over a real WebSocket on loopback, with no network access.
 *
 * Why our own: the npm relays we tried are frameworks (`@nostr-relay/core` wants an EventRepository and a
 * separate validator plug-in and leaves the WebSocket server to the caller), so wiring one was no smaller than
 * this file, and this one is exactly NIP-01 and nothing else:
 * - `["EVENT", <event>]`: the id is recomputed (sha256 of the NIP-01 serialization) and the BIP-340 signature
 *   verified; answered `["OK", id, true, ""]`, `["OK", id, true, "duplicate: …"]` for an event already seen, or
 *   `["OK", id, false, "invalid: …"]`. Accepted events go to every matching subscription. Regular events are
 *   kept (in memory) for later REQs; ephemeral events (kinds 20000-29999, NIP-46's 24133 among them) are not.
 * - `["REQ", <sub id>, <filter>…]`: stored matches (newest first, `limit` applied) then `["EOSE", <sub id>]`,
 *   then live events. Filters: ids, authors, kinds, `#<single letter>` tags, since, until, limit. A REQ with an
 *   existing sub id replaces that subscription.
 * - `["CLOSE", <sub id>]`: ends it. Anything else: `["NOTICE", "…"]`.
 */
import { createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { schnorr } from '@noble/curves/secp256k1.js';
import { WebSocketServer, type WebSocket } from 'ws';

export interface NostrEvent {
  id: string;
  pubkey: string;
  created_at: number;
  kind: number;
  tags: string[][];
  content: string;
  sig: string;
}

export interface Filter {
  ids?: string[];
  authors?: string[];
  kinds?: number[];
  since?: number;
  until?: number;
  limit?: number;
  [tag: `#${string}`]: string[] | undefined;
}

export interface TestRelay {
  /** ws://127.0.0.1:<port> */
  url: string;
  /** Every event accepted so far, in arrival order (ephemeral ones included): what tests inspect. */
  accepted: NostrEvent[];
  /** How many EVENT messages were refused as invalid. */
  rejected(): number;
  /** Whether an open subscription has a filter naming this pubkey in `#p` (a client waiting for its replies). */
  listensFor(pubkey: string): boolean;
  /**
   * A careless (or hostile) relay: when true, events are forwarded without checking id or signature and
   * without de-duplication. Lets a test prove the bunker does its own checks instead of trusting the relay.
   */
  careless: boolean;
  close(): Promise<void>;
}

const HEX64 = /^[0-9a-f]{64}$/;
const HEX128 = /^[0-9a-f]{128}$/;

/** NIP-01: sha256 of `[0, pubkey, created_at, kind, tags, content]` serialized as JSON (no spaces). */
export function eventId(e: Omit<NostrEvent, 'id' | 'sig'>): string {
  return createHash('sha256').update(JSON.stringify([0, e.pubkey, e.created_at, e.kind, e.tags, e.content])).digest('hex');
}

/** Why an event is invalid, or undefined when its shape, id and signature all hold. */
export function invalidReason(e: unknown): string | undefined {
  if (typeof e !== 'object' || e === null) return 'event is not an object';
  const ev = e as Record<string, unknown>;
  if (typeof ev.id !== 'string' || !HEX64.test(ev.id)) return 'id must be 32-byte lowercase hex';
  if (typeof ev.pubkey !== 'string' || !HEX64.test(ev.pubkey)) return 'pubkey must be 32-byte lowercase hex';
  if (typeof ev.sig !== 'string' || !HEX128.test(ev.sig)) return 'sig must be 64-byte lowercase hex';
  if (!Number.isInteger(ev.created_at) || (ev.created_at as number) < 0) return 'created_at must be a non-negative integer';
  if (!Number.isInteger(ev.kind) || (ev.kind as number) < 0 || (ev.kind as number) > 65535) return 'kind must be an integer 0-65535';
  if (typeof ev.content !== 'string') return 'content must be a string';
  if (!Array.isArray(ev.tags) || !ev.tags.every((t) => Array.isArray(t) && t.every((x) => typeof x === 'string'))) return 'tags must be an array of string arrays';
  const event = ev as unknown as NostrEvent;
  if (eventId(event) !== event.id) return 'event id does not match its content';
  let ok = false;
  try {
    ok = schnorr.verify(Buffer.from(event.sig, 'hex'), Buffer.from(event.id, 'hex'), Buffer.from(event.pubkey, 'hex'));
  } catch {
    ok = false;
  }
  return ok ? undefined : 'signature does not verify';
}

/** NIP-01: an event matches a filter when it matches every condition the filter states. */
export function matchesFilter(f: Filter, e: NostrEvent): boolean {
  if (f.ids && !f.ids.includes(e.id)) return false;
  if (f.authors && !f.authors.includes(e.pubkey)) return false;
  if (f.kinds && !f.kinds.includes(e.kind)) return false;
  if (f.since !== undefined && e.created_at < f.since) return false;
  if (f.until !== undefined && e.created_at > f.until) return false;
  for (const [key, values] of Object.entries(f)) {
    if (!/^#[A-Za-z]$/.test(key) || !Array.isArray(values)) continue;
    const name = key.slice(1);
    if (!e.tags.some((t) => t[0] === name && t[1] !== undefined && values.includes(t[1]))) return false;
  }
  return true;
}

function isEphemeral(kind: number): boolean {
  return kind >= 20000 && kind < 30000;
}

/** Starts a relay on 127.0.0.1 at an ephemeral port. */
export async function startTestRelay(opts: { maxMessageBytes?: number } = {}): Promise<TestRelay> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, maxPayload: opts.maxMessageBytes ?? 512 * 1024 });
  await new Promise<void>((resolve, reject) => {
    wss.once('listening', resolve);
    wss.once('error', reject);
  });
  const stored: NostrEvent[] = [];
  const seen = new Set<string>();
  const accepted: NostrEvent[] = [];
  const subscriptions = new Map<WebSocket, Map<string, Filter[]>>();
  let rejected = 0;

  const send = (ws: WebSocket, msg: unknown[]) => {
    if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(msg));
  };

  const onEvent = (ws: WebSocket, event: unknown) => {
    const id = typeof (event as NostrEvent | null)?.id === 'string' ? (event as NostrEvent).id : '';
    if (relay.careless) {
      accepted.push(event as NostrEvent);
      send(ws, ['OK', id, true, '']);
      for (const [client, subs] of subscriptions) {
        for (const [subId, filters] of subs) if (filters.some((f) => matchesFilter(f, event as NostrEvent))) send(client, ['EVENT', subId, event]);
      }
      return;
    }
    const why = invalidReason(event);
    if (why) {
      rejected++;
      return send(ws, ['OK', id, false, `invalid: ${why}`]);
    }
    const e = event as NostrEvent;
    if (seen.has(e.id)) return send(ws, ['OK', e.id, true, 'duplicate: already have this event']);
    seen.add(e.id);
    accepted.push(e);
    if (!isEphemeral(e.kind)) stored.push(e);
    send(ws, ['OK', e.id, true, '']);
    for (const [client, subs] of subscriptions) {
      for (const [subId, filters] of subs) if (filters.some((f) => matchesFilter(f, e))) send(client, ['EVENT', subId, e]);
    }
  };

  const onReq = (ws: WebSocket, subId: unknown, filters: unknown[]) => {
    if (typeof subId !== 'string' || subId === '' || subId.length > 64) return send(ws, ['NOTICE', 'invalid: subscription id must be a non-empty string of at most 64 chars']);
    if (!filters.every((f) => typeof f === 'object' && f !== null && !Array.isArray(f))) return send(ws, ['CLOSED', subId, 'invalid: filters must be objects']);
    const fs = filters as Filter[];
    subscriptions.get(ws)!.set(subId, fs);
    // Stored matches, newest first; `limit` applies per filter to this initial query only.
    const initial = new Map<string, NostrEvent>();
    for (const f of fs) {
      const matches = stored.filter((e) => matchesFilter(f, e)).sort((a, b) => b.created_at - a.created_at || a.id.localeCompare(b.id));
      for (const e of f.limit !== undefined ? matches.slice(0, f.limit) : matches) initial.set(e.id, e);
    }
    for (const e of initial.values()) send(ws, ['EVENT', subId, e]);
    send(ws, ['EOSE', subId]);
  };

  wss.on('connection', (ws) => {
    subscriptions.set(ws, new Map());
    ws.on('close', () => subscriptions.delete(ws));
    ws.on('message', (data) => {
      let msg: unknown;
      try {
        msg = JSON.parse(data.toString());
      } catch {
        return send(ws, ['NOTICE', 'invalid: message is not JSON']);
      }
      if (!Array.isArray(msg) || typeof msg[0] !== 'string') return send(ws, ['NOTICE', 'invalid: message must be a JSON array starting with a type']);
      switch (msg[0]) {
        case 'EVENT':
          return onEvent(ws, msg[1]);
        case 'REQ':
          return onReq(ws, msg[1], msg.slice(2));
        case 'CLOSE':
          subscriptions.get(ws)?.delete(String(msg[1]));
          return;
        default:
          return send(ws, ['NOTICE', `unsupported message type ${JSON.stringify(msg[0]).slice(0, 20)}`]);
      }
    });
  });

  const port = (wss.address() as AddressInfo).port;
  const relay: TestRelay = {
    url: `ws://127.0.0.1:${port}`,
    accepted,
    rejected: () => rejected,
    listensFor: (pubkey) => [...subscriptions.values()].some((subs) => [...subs.values()].some((fs) => fs.some((f) => (f['#p'] as string[] | undefined)?.includes(pubkey)))),
    careless: false,
    close: () =>
      new Promise<void>((resolve) => {
        for (const client of wss.clients) client.terminate();
        wss.close(() => resolve());
      }),
  };
  return relay;
}
