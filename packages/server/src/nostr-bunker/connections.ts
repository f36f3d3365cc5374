/**
 * Who may talk to the bunker, in memory: single-use connection secrets (only their sha256 is kept) and the
 * client keys that redeemed one, each bound to the Airlock session it was issued for. Nothing here is
 * persisted: a restart forgets every secret and every connected client, so the operator issues new
 * connection strings after a restart (docs/nostr.md, Bunker).
 */
import { createHash } from 'node:crypto';

export interface SessionGrant {
  sessionId: string;
  agentId: string;
  /** The agent's transport pubkey the grant is for: a secret only opens the bunker it was issued by. */
  transportPubkey: string;
}

/** A connected client: its grant, and from when its envelopes are taken. */
export interface ConnectedClient extends SessionGrant {
  /**
   * Unix seconds: envelopes this client dated earlier are not run. Its `connect` envelope's date (the client's own
   * clock, so a client whose clock runs behind or ahead is served all the same), or 0 for a client accepted from a
   * `nostrconnect://` URI: no envelope of its own dates that, and the server's clock set against the client's would
   * refuse a client running behind and let one running ahead through (found by review). Its `sign_event`s are
   * answered from the store when delivered again (bunker.ts, askToSign).
   */
  datedFrom: number;
}

/**
 * Request ids remembered per connected client for replay detection (the newest ones; older ids fall out). Only
 * connected clients have any: a key that never connected leaves nothing behind, so fresh keys cannot grow this.
 * At least this many; more when the client's rate lets it send more within the window an envelope is accepted in
 * (`requestIdsToRemember`).
 */
const MIN_REMEMBERED_REQUEST_IDS = 4096;

/**
 * How many request ids a client must be remembered for, so that a relay replaying one of its envelopes while
 * that envelope is still inside the date window (`windowSeconds` either side of now) finds its id still held:
 * every request the client's bucket lets through across the whole window, both sides (a client whose clock runs
 * ahead dates its envelopes up to the window's end), plus its burst, with a tenth to spare. A fixed 4,096 had
 * covered the default rate only: at AIRLOCK_NOSTR_BUNKER_RATE 7 a client sends 4,220 in 10 minutes and a relay
 * could replay one after its id fell out (found by review).
 */
export function requestIdsToRemember(rate: { perSecond: number; burst: number }, windowSeconds: number): number {
  const within = rate.perSecond * windowSeconds * 2 + rate.burst;
  return Math.max(MIN_REMEMBERED_REQUEST_IDS, Math.ceil(within * 1.1));
}
/**
 * How long a client's request ids outlive its connection (logout, a session ended): an envelope is accepted up to
 * 10 minutes either side of now, so one a relay kept could come back that long after; with a minute to spare.
 */
const RELEASED_IDS_MS = (2 * 600 + 60) * 1000;

/** Envelope ids remembered across clients: the same event arrives once per relay. */
const REMEMBERED_EVENT_IDS = 65_536;

function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

export class BunkerConnections {
  /** Request ids kept per connected client (requestIdsToRemember). */
  readonly rememberedRequestIds: number;
  private readonly secrets = new Map<string, SessionGrant>();
  private readonly clients = new Map<string, ConnectedClient>();
  private readonly requestIds = new Map<string, Set<string>>();
  /**
   * Ids of requests refused as rate-limited, per client, apart from the ids of requests that ran: refusals are not
   * bounded by the client's rate, so in the same set a client sending far over its rate pushed out ids of requests
   * that had run while their envelopes were still young enough to replay (found by review).
   */
  private readonly refusedIds = new Map<string, Set<string>>();
  /**
   * Clients no longer connected whose ids are still kept, and since when (oldest first): dropping them at logout
   * let an envelope from before it run again once the same client key connected anew (found by review).
   */
  private readonly released = new Map<string, number>();
  private readonly eventIds = new Set<string>();

  constructor(rememberedRequestIds = MIN_REMEMBERED_REQUEST_IDS) {
    this.rememberedRequestIds = rememberedRequestIds;
  }

  /** Remembers the hash of a new single-use secret. */
  addSecret(secret: string, grant: SessionGrant): void {
    this.secrets.set(sha256Hex(secret), grant);
  }

  /** Consumes a secret issued for this transport key: the grant, or undefined (unknown, used, other bunker). */
  redeemSecret(transportPubkey: string, secret: string): SessionGrant | undefined {
    const key = sha256Hex(secret);
    const grant = this.secrets.get(key);
    // Looked up by the secret's hash: no comparison of the secret itself that could leak by timing.
    if (!grant || grant.transportPubkey !== transportPubkey) return undefined;
    this.secrets.delete(key);
    return grant;
  }

  /**
   * A client already connected keeps its `datedFrom`: a relay delivering an old `connect` of that client again
   * (acknowledged: it changes nothing else) must not move it back.
   */
  connect(clientPubkey: string, grant: SessionGrant, datedFrom: number): void {
    const key = clientKey(grant.transportPubkey, clientPubkey);
    const since = this.clients.get(key)?.datedFrom ?? datedFrom;
    this.released.delete(key);
    this.clients.set(key, { sessionId: grant.sessionId, agentId: grant.agentId, transportPubkey: grant.transportPubkey, datedFrom: since });
    this.pruneReleased();
  }

  clientGrant(transportPubkey: string, clientPubkey: string): ConnectedClient | undefined {
    return this.clients.get(clientKey(transportPubkey, clientPubkey));
  }

  disconnect(transportPubkey: string, clientPubkey: string): void {
    this.release(clientKey(transportPubkey, clientPubkey));
  }

  /** Drops every secret and client of a session (it was revoked or expired). */
  forgetSession(sessionId: string): void {
    for (const [k, g] of this.secrets) if (g.sessionId === sessionId) this.secrets.delete(k);
    for (const [k, g] of this.clients) if (g.sessionId === sessionId) this.release(k);
  }

  /** Ends a connection; its ids are kept for as long as one of its envelopes could still be accepted. */
  private release(key: string): void {
    if (!this.clients.delete(key)) return;
    this.released.delete(key);
    this.released.set(key, Date.now());
    this.pruneReleased();
  }

  private pruneReleased(): void {
    const before = Date.now() - RELEASED_IDS_MS;
    for (const [key, at] of this.released) {
      if (at > before) return;
      this.released.delete(key);
      this.requestIds.delete(key);
      this.refusedIds.delete(key);
    }
  }

  /** The transport keys anyone may currently be talking to (an outstanding secret or a connected client). */
  transportKeys(): Map<string, string> {
    const keys = new Map<string, string>();
    for (const g of [...this.secrets.values(), ...this.clients.values()]) keys.set(g.transportPubkey, g.agentId);
    return keys;
  }

  /** True the first time an envelope id is seen. */
  firstSightOfEvent(eventId: string): boolean {
    if (this.eventIds.has(eventId)) return false;
    if (this.eventIds.size >= REMEMBERED_EVENT_IDS) this.eventIds.delete(this.eventIds.values().next().value!);
    this.eventIds.add(eventId);
    return true;
  }

  /**
   * True the first time this connected client uses this request id (NIP-46 ids are the client's; a repeat is a
   * replay). Ask only once the client's connection is established: a client that is not connected is answered
   * `true` and nothing is kept for it (it has nothing to replay).
   */
  firstUseOfRequestId(transportPubkey: string, clientPubkey: string, requestId: string): boolean {
    const key = clientKey(transportPubkey, clientPubkey);
    if (!this.clients.has(key)) return true;
    if (this.refusedIds.get(key)?.has(requestId)) return false;
    return remember(this.requestIds, key, requestId, this.rememberedRequestIds);
  }

  /**
   * The same for a request refused as rate-limited, kept apart (`refusedIds`): true the first time; the id then
   * counts as used, so the refused request never runs later. A client refused more often than the bound within
   * the envelope window forgets its oldest refused ids, never the ids of requests that ran.
   */
  firstRefusalOfRequestId(transportPubkey: string, clientPubkey: string, requestId: string): boolean {
    const key = clientKey(transportPubkey, clientPubkey);
    if (!this.clients.has(key)) return true;
    if (this.requestIds.get(key)?.has(requestId)) return false;
    return remember(this.refusedIds, key, requestId, this.rememberedRequestIds);
  }

  /** How much is held, for operators and tests: secrets and clients as many as the operator issued, ids as the constants above allow. */
  footprint(): { secrets: number; clients: number; clientsWithRequestIds: number; requestIds: number; eventIds: number } {
    let requestIds = 0;
    for (const ids of [...this.requestIds.values(), ...this.refusedIds.values()]) requestIds += ids.size;
    return { secrets: this.secrets.size, clients: this.clients.size, clientsWithRequestIds: this.requestIds.size, requestIds, eventIds: this.eventIds.size };
  }
}

/** Adds `id` to `key`'s set (dropping its oldest past `max`): false when it was there already. */
function remember(sets: Map<string, Set<string>>, key: string, id: string, max: number): boolean {
  let ids = sets.get(key);
  if (!ids) sets.set(key, (ids = new Set()));
  if (ids.has(id)) return false;
  if (ids.size >= max) ids.delete(ids.values().next().value!);
  ids.add(id);
  return true;
}

function clientKey(transportPubkey: string, clientPubkey: string): string {
  return `${transportPubkey}:${clientPubkey}`;
}
