/**
 * The NIP-46 remote signer ("bunker"). Clients talk to an agent's *transport* key (never its identity key)
 * over relays; every request is a kind-24133 event, NIP-44 encrypted, answered the same way. What a client may
 * do is what the Airlock session its connection string was issued for may do: the bunker holds no signing
 * path of its own, it calls the Nostr service port with that session (policy -> rate/budget -> audit -> sign).
 *
 * Per request, in order (each step refuses before the next runs):
 *  1. the envelope: kind 24133, id and signature checked here (relays are not trusted); anything else is dropped
 *     without an answer, as is an envelope dated more than 10 minutes from now (a relay replaying an old one) and
 *     an envelope already seen (the same event comes once per relay);
 *  2. the p-tag names a transport key the bunker serves (an outstanding secret or a connected client);
 *  3. a connected client: a token bucket per client key; over it, an error reply (`rate_limited`), nothing
 *     signed. A client that is not connected: one small bucket shared by every such key of this transport key
 *     (a fresh key costs an outsider nothing, so a bucket per key would never run dry); over it the envelope is
 *     dropped unanswered, before anything is decrypted or signed (an answer costs an ECDH and a signature);
 *  4. decrypt (NIP-44 with the transport key) and parse `{id, method, params}`;
 *  5. `connect` redeems a single-use secret; every other method needs a connected client. A key not connected here,
 *     or a `connect` with a secret not held here, is dropped unanswered (counted as `unauthorized`): secrets and
 *     clients are in each instance's memory, so another instance on the same store may hold it and answer;
 *  6. a request id the connected client used before is refused (`replayed_request`), never executed twice;
 *     ids are kept only for connected clients, so keys that never connected leave nothing behind. So is a
 *     request a `bunker://` client dated before its `connect` (connections.ts `datedFrom`): the ids are in
 *     memory, and a relay may deliver an envelope from before a restart again. A `sign_event` is also kept in
 *     the store under its client and request id (an Idempotency-Key): delivered again on any instance or after
 *     any restart, it is answered what it was answered the first time (a signature re-released, no new charge;
 *     one handed over from an approval included: askToSign);
 *  7. the session is re-read from the store (revoked / expired / frozen: error reply, and the client is dropped;
 *     a `sign_event` is still sent to the signing transaction, which refuses it and keeps that refusal under its key);
 *  8. the method runs through the port with the session's AgentAuth. A `sign_event` held for approval is
 *     remembered (held-events.ts): asking again with the same event returns the signature once approved.
 */
import { randomBytes } from 'node:crypto';
import { CREDENTIAL_REFUSAL_CODES, isAirlockError, parseUntrustedJson, type AgentAuth, type AuditEntryInput, type Clock } from '@airlock/core';
import { SessionRateLimiter } from '../http/session-rate-limiter.ts';
import { BunkerConnections, requestIdsToRemember, type SessionGrant } from './connections.ts';
import { HeldEvents } from './held-events.ts';
import { isHexPubkey, isValidSignedEvent, nostrEventId } from './nip01.ts';
import type { NostrServicePort, NostrTransport, SignedNostrEvent, UnsignedNostrEvent } from './port.ts';
import { RelayConnection } from './relay-connection.ts';
import { relayLabel } from '../relay-label.ts';
import type { SessionSource } from './session-source.ts';
import type { RefusalTally } from '../http/refusal-tally.ts';

/** NIP-46 request and response events. */
export const NOSTR_CONNECT_KIND = 24133;
const SUBSCRIPTION_ID = 'airlock-bunker';
/** Larger requests are refused before decryption (NIP-44 caps plaintext at 64 KiB; base64 grows it by 4/3). */
const MAX_CONTENT_CHARS = 100_000;
/**
 * Envelopes dated further than this from now are dropped. NIP-46 sets no window; clients (nostr-tools'
 * BunkerSigner among them) date each request `now`, so 10 minutes leaves room for clock skew and slow relays,
 * while an envelope a relay kept and replays later finds the replay caches (connections.ts) still holding its id
 * (in this process; one from before a restart or from another instance: step 6).
 */
const MAX_ENVELOPE_SKEW_SECONDS = 600;

/** `datedFrom` of a client accepted from a `nostrconnect://` URI: no envelope of its own dates its connection. */
const NO_CUTOFF = 0;
/**
 * The bucket shared by every client key that is not connected to one transport key: connect attempts (with or
 * without a valid secret) and requests from strangers. An honest client needs one answer to connect.
 */
const UNCONNECTED_RATE = { perSecond: 1, burst: 10 };

/** The audit entry written before a connection is handed out (a `bunker://` secret, or an accepted `nostrconnect://` client). */
export const NOSTR_CONNECTION_ISSUED = 'nostr.connection_issued';

export interface BunkerOptions {
  port: NostrServicePort;
  /** ws:// or wss:// URLs (AIRLOCK_NOSTR_RELAYS). */
  relays: readonly string[];
  sessions: SessionSource;
  clock: Clock;
  /** Token bucket per client key (AIRLOCK_NOSTR_BUNKER_RATE / _BURST). */
  clientRate: { perSecond: number; burst: number };
  /**
   * Appends an audit entry (the runtime's audit service). Issuing a connection writes one
   * (`nostr.connection_issued`: who, for which session and transport key, by which flow; never the secret)
   * before the string is shown or the client is connected: a way in for a client is on the record like a session.
   */
  audit: (entry: AuditEntryInput) => Promise<unknown>;
  /** Connection trouble and dropped envelopes (no contents, no secrets). */
  log?: (message: string) => void;
  /**
   * Refusals made before the Nostr service is reached (a client that never connected and a used secret, both
   * dropped unanswered: step 5; a replayed request id; a flood): counted per connected client key, or for every key that is not connected under one
   * source per transport key (`nostr:unconnected:<transport pubkey>`), and written to the audit log as one entry
   * per source per window, as the HTTP edge does for bad tokens. Refusals by the service itself are audited
   * there, one entry each.
   */
  refusals?: RefusalTally;
}

/** What happened to the envelopes received so far: operators and tests read it. */
export interface BunkerStats {
  /** Malformed, wrong kind, bad id or bad signature: dropped without an answer. */
  droppedInvalid: number;
  /** Addressed to no transport key this bunker serves, or undecryptable: dropped without an answer. */
  droppedUnaddressed: number;
  /** Dated more than 10 minutes from now: dropped without an answer. */
  droppedStale: number;
  /** From keys that are not connected, over their shared bucket: dropped without an answer. */
  droppedUnconnected: number;
  /**
   * From keys not connected here, or a `connect` with a secret not held here (within the shared bucket): dropped
   * without an answer, since another instance may hold that client or secret (tallied as `unauthorized`).
   */
  droppedUnknown: number;
  /** Connected clients over their own bucket (answered `rate_limited`). */
  rateLimited: number;
  replayed: number;
  /** Answered with an error (refusals of every kind, rate limits and replays included). */
  refused: number;
  answered: number;
}

export interface IssuedConnection {
  /** `bunker://<transport pubkey>?relay=…&secret=…`: shown once, the secret is single use. */
  uri: string;
  transportPubkey: string;
  relays: string[];
}

interface Nip46Request {
  id: string;
  method: string;
  params: string[];
}

export class NostrBunker {
  readonly stats: BunkerStats = { droppedInvalid: 0, droppedUnaddressed: 0, droppedStale: 0, droppedUnconnected: 0, droppedUnknown: 0, rateLimited: 0, replayed: 0, refused: 0, answered: 0 };
  private readonly options: BunkerOptions;
  private readonly connections: BunkerConnections;
  private readonly held = new HeldEvents();
  private readonly limiter: SessionRateLimiter;
  private readonly unconnectedLimiter = new SessionRateLimiter(UNCONNECTED_RATE);
  private readonly relays: RelayConnection[];
  private readonly transports = new Map<string, Promise<NostrTransport>>();
  /** Transport pubkey -> agent id, for every key the subscription listens on. */
  private listening = new Map<string, string>();

  constructor(options: BunkerOptions) {
    if (options.relays.length === 0) throw new RangeError('NostrBunker: at least one relay');
    this.options = options;
    this.limiter = new SessionRateLimiter(options.clientRate);
    this.connections = new BunkerConnections(requestIdsToRemember(options.clientRate, MAX_ENVELOPE_SKEW_SECONDS));
    this.relays = options.relays.map((url) => new RelayConnection(url, { onEvent: (_sub, e) => void this.receive(e), ...(options.log ? { onProblem: options.log } : {}) }));
  }

  /** What is held in memory, for operators and tests: every figure stays bounded whatever outsiders send. */
  footprint(): ReturnType<BunkerConnections['footprint']> & { heldEvents: number } {
    return { ...this.connections.footprint(), heldEvents: this.held.size };
  }

  /** Connects to every relay; a relay that is down is retried in the background (the others serve meanwhile). */
  async start(): Promise<void> {
    await Promise.all(this.relays.map((r) => r.connect().catch(() => this.options.log?.(`relay ${relayLabel(r.url)} unreachable at start; retrying`))));
  }

  /** Writes the refusal counts of windows that have ended (a timer calls it; `close` writes all). */
  flushRefusals(all = false): Promise<void> {
    const now = this.options.clock.now();
    return (all ? this.options.refusals?.flushAll(now) : this.options.refusals?.flushDue(now)) ?? Promise.resolve();
  }

  /** `source`: a connected client's key, or `unconnected:<transport pubkey>` for every key that is not connected. */
  private countRefusal(type: 'auth.failures' | 'session.rate_limited', source: string, code: string): void {
    this.options.refusals?.count(type, `nostr:${source}`, code, this.options.clock.now());
  }

  close(): void {
    for (const r of this.relays) r.close();
  }

  /**
   * A new single-use `bunker://` string for a session (POST /v1/sessions/:id/nostr-connect). The session must
   * be usable now; the secret stays valid until used or until the session ends (re-checked at `connect`).
   */
  async issueConnection(sessionId: string, by: string): Promise<IssuedConnection> {
    const auth = await this.options.sessions(sessionId);
    const transport = await this.transportOf(auth.agent.id);
    await this.recordIssued(auth, transport.pubkey, by, { flow: 'bunker' });
    const secret = randomBytes(24).toString('base64url');
    this.connections.addSecret(secret, { sessionId, agentId: auth.agent.id, transportPubkey: transport.pubkey });
    this.refreshSubscription();
    const query = new URLSearchParams();
    for (const relay of this.options.relays) query.append('relay', relay);
    query.set('secret', secret);
    return { uri: `bunker://${transport.pubkey}?${query.toString()}`, transportPubkey: transport.pubkey, relays: [...this.options.relays] };
  }

  /**
   * The client-initiated flow: the operator hands over a client's `nostrconnect://` URI for a session. The
   * client key is connected to the session at once and the `connect` response carrying the client's secret
   * is sent to it (NIP-46: the client checks that secret). Only the relays this bunker uses are answered on.
   */
  async acceptNostrConnect(sessionId: string, uri: string, by: string): Promise<{ clientPubkey: string; transportPubkey: string; relays: string[] }> {
    const parsed = parseNostrConnectUri(uri);
    const relays = this.options.relays.filter((r) => parsed.relays.some((theirs) => normalizeRelayUrl(theirs) === normalizeRelayUrl(r)));
    if (relays.length === 0) throw new BunkerInputError('The nostrconnect:// URI names none of the relays this bunker uses (AIRLOCK_NOSTR_RELAYS).');
    const auth = await this.options.sessions(sessionId);
    const transport = await this.transportOf(auth.agent.id);
    await this.recordIssued(auth, transport.pubkey, by, { flow: 'nostrconnect', clientPubkey: parsed.clientPubkey });
    // Found by review: its requests were taken from this bunker's start, a date by the server's clock set against
    // envelopes the client dates by its own; a client running behind had its fresh requests refused after a restart,
    // one running ahead had old ones run, and another instance started earlier ran them all. It sent no `connect` to
    // date its connection by, so no date cuts it off: a `sign_event` delivered again is answered from the store.
    this.connections.connect(parsed.clientPubkey, { sessionId, agentId: auth.agent.id, transportPubkey: transport.pubkey }, NO_CUTOFF);
    this.refreshSubscription();
    await this.reply(transport, parsed.clientPubkey, { id: randomBytes(8).toString('hex'), result: parsed.secret }, relays);
    return { clientPubkey: parsed.clientPubkey, transportPubkey: transport.pubkey, relays };
  }

  /** The `nostr.connection_issued` entry; it fails the issuance when it cannot be written (nothing is handed out unrecorded). */
  private recordIssued(auth: AgentAuth, transportPubkey: string, by: string, how: { flow: 'bunker' } | { flow: 'nostrconnect'; clientPubkey: string }): Promise<unknown> {
    return this.options.audit({
      at: this.options.clock.now(), type: NOSTR_CONNECTION_ISSUED, actor: 'operator', agentId: auth.agent.id, sessionId: auth.session.id,
      data: { sessionId: auth.session.id, transportPubkey, ...how, by },
    });
  }

  private transportOf(agentId: string): Promise<NostrTransport> {
    let t = this.transports.get(agentId);
    if (!t) {
      t = this.options.port.transport(agentId);
      t.catch(() => this.transports.delete(agentId));
      this.transports.set(agentId, t);
    }
    return t;
  }

  /** One subscription per relay for every transport key in use (a REQ with the same id replaces it: NIP-01). */
  private refreshSubscription(): void {
    this.listening = this.connections.transportKeys();
    if (this.listening.size === 0) return;
    // limit 0: no stored events, only new ones (NIP-46 envelopes are ephemeral anyway).
    const filter = { kinds: [NOSTR_CONNECT_KIND], '#p': [...this.listening.keys()], limit: 0 };
    for (const r of this.relays) r.subscribe(SUBSCRIPTION_ID, [filter]);
  }

  /**
   * Step 1-2 run synchronously on receipt, so an envelope is judged in the order relays delivered it. Never
   * rejects: it runs from a relay's message listener, where a rejection would be unhandled.
   */
  private async receive(raw: unknown): Promise<void> {
    try {
      if (!isValidSignedEvent(raw) || raw.kind !== NOSTR_CONNECT_KIND) {
        this.stats.droppedInvalid++;
        return;
      }
      // created_at is the client's wall clock (as the replies' is ours), not the daemon's policy clock.
      if (Math.abs(raw.created_at - Date.now() / 1000) > MAX_ENVELOPE_SKEW_SECONDS) {
        this.stats.droppedStale++;
        return;
      }
      if (!this.connections.firstSightOfEvent(raw.id)) return;
      const transportPubkey = raw.tags.find((t) => t[0] === 'p' && this.listening.has(t[1] ?? ''))?.[1];
      if (!transportPubkey || raw.content.length > MAX_CONTENT_CHARS) {
        this.stats.droppedUnaddressed++;
        return;
      }
      await this.handle(raw, this.listening.get(transportPubkey)!);
    } catch (e) {
      this.options.log?.(`nostr bunker: request failed: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  private async handle(envelope: SignedNostrEvent, agentId: string): Promise<void> {
    const client = envelope.pubkey;
    const transport = await this.transportOf(agentId);
    const now = this.options.clock.now();
    const unconnected = `unconnected:${transport.pubkey}`;
    if (!this.connections.clientGrant(transport.pubkey, client)) {
      if (this.unconnectedLimiter.take(transport.pubkey, now) > 0) {
        this.stats.droppedUnconnected++;
        this.countRefusal('auth.failures', unconnected, 'rate_limited');
        return;
      }
    } else if (this.limiter.take(`${transport.pubkey}:${client}`, now) > 0) {
      this.stats.rateLimited++;
      // The request id is inside the encrypted content: decrypting it is what lets the client match the refusal.
      const request = await this.decryptRequest(transport, envelope);
      this.countRefusal('session.rate_limited', client, 'rate_limited');
      if (!request) return;
      // The refused request's id is used up: a relay holding the envelope could otherwise deliver it again once the
      // bucket refills (the envelope-id cache is shared with every key and can be flushed), and a request its client
      // was told was refused would run after all (found by review). Kept apart from the ids of requests that ran, so
      // refusals, which the rate does not bound, cannot push those out (connections.ts). A client sends a new
      // request, with a new id, to try again (nostr-tools' BunkerSigner does).
      if (!this.connections.firstRefusalOfRequestId(transport.pubkey, client, request.id)) return this.refuseReplay(transport, client, request.id);
      await this.refuse(transport, client, request.id, 'rate_limited', 'Too many requests from this client; slow down, and send it again as a new request.');
      return;
    }
    const request = await this.decryptRequest(transport, envelope);
    if (!request) {
      this.stats.droppedUnaddressed++;
      return;
    }
    if (request.method === 'connect') return this.connect(transport, client, request, envelope.created_at);

    const grant = this.connections.clientGrant(transport.pubkey, client);
    if (!grant) return this.dropUnknown(transport.pubkey);
    // Found by review: the ids of requests that ran (or were refused) are in memory, so after a restart a relay could
    // deliver an envelope from before it again once its client reconnected with a new secret (apps keep their key),
    // and a request the client had been told was refused was signed and charged. Such an envelope is dated before
    // the client's `connect` in this process, both dated by the client's own clock (so a skewed clock is no matter).
    // A `nostrconnect://` client has no cut-off (NO_CUTOFF); its `sign_event`s are kept in the store (askToSign).
    if (envelope.created_at < grant.datedFrom) return this.refuseReplay(transport, client, request.id, 'This request is dated before this client connected; nothing was done (a relay delivering an old envelope again, or the client\'s clock went back).');
    if (!this.connections.firstUseOfRequestId(transport.pubkey, client, request.id)) return this.refuseReplay(transport, client, request.id);
    let auth: AgentAuth;
    try {
      auth = await this.options.sessions(grant.sessionId);
    } catch (e) {
      // A dead session never comes back: forget its clients and secrets (they must get a new connection string).
      if (isAirlockError(e) && e.code !== 'agent_frozen') this.forgetSession(grant.sessionId);
      if (request.method === 'sign_event' && isAirlockError(e)) return this.signWithDeadCredential(transport, client, grant, request, e);
      return this.refuseWith(transport, client, request.id, e);
    }
    try {
      const result = await this.run(auth, grant, client, request);
      if (request.method === 'logout') this.connections.disconnect(transport.pubkey, client);
      this.stats.answered++;
      await this.reply(transport, client, { id: request.id, result });
    } catch (e) {
      await this.refuseWith(transport, client, request.id, e);
    }
  }

  /**
   * Found by review: a `sign_event` refused here (agent frozen, session revoked) kept nothing under its key, and
   * delivered again after an unfreeze on another instance it was signed and charged, its client told it was refused.
   * It goes to the signing transaction, which reads the credential again, refuses it and keeps the refusal under the
   * key (a second delivery is answered that refusal, audited `sign.replay`); never to an approval held in memory.
   */
  private async signWithDeadCredential(transport: NostrTransport, client: string, grant: SessionGrant, request: Nip46Request, refusal: unknown): Promise<void> {
    try {
      const stale = await this.options.sessions.unusable?.(grant.sessionId);
      if (!stale) return await this.refuseWith(transport, client, request.id, refusal);
      let event: UnsignedNostrEvent;
      try {
        event = parseEventTemplate(request.params[0]);
      } catch {
        return await this.refuseWith(transport, client, request.id, refusal);
      }
      const { pubkey } = await this.options.port.identity(stale.agent);
      const signed = await this.signThroughService(stale, event, nostrEventId({ ...event, pubkey }), nip46IdempotencyKey(client, request.id));
      // The credential came back in between: the transaction judged it usable and signed.
      this.stats.answered++;
      await this.reply(transport, client, { id: request.id, result: JSON.stringify(signed) });
    } catch (e) {
      // The credential's refusal, whatever the payload, as over HTTP (found by review: a malformed event from a frozen
      // agent was answered invalid_request): only an answer the signing transaction gave replaces it (a refusal it
      // kept or made, a decision once the credential came back), never a payload's error.
      await this.refuseWith(transport, client, request.id, e instanceof BunkerRefusal || (isAirlockError(e) && CREDENTIAL_REFUSAL_CODES.has(e.code)) ? e : refusal);
    }
  }

  private refuseReplay(transport: NostrTransport, client: string, requestId: string, message = 'This request id was already used by this client; nothing was done again.'): Promise<void> {
    this.stats.replayed++;
    this.countRefusal('auth.failures', client, 'replayed_request');
    return this.refuse(transport, client, requestId, 'replayed_request', message);
  }

  /**
   * A client not connected here, or a `connect` with a secret not held here: counted, not answered. Found by review:
   * every instance on one store listens on the transport key once it holds any secret or client of that agent, and
   * one that did not hold this client answered `unauthorized`, usually before the instance that did (no store
   * read); a client takes the first answer per request id, so it was told charged signatures were refused, retried,
   * and was charged again. No instance knows another holds nothing, so none answers for what it does not hold: a
   * wrong or used secret times out at the client, and the refusal is in the `auth.failures` tally.
   */
  private dropUnknown(transportPubkey: string): void {
    this.stats.droppedUnknown++;
    this.countRefusal('auth.failures', `unconnected:${transportPubkey}`, 'unauthorized');
  }

  private forgetSession(sessionId: string): void {
    this.connections.forgetSession(sessionId);
    this.held.forgetSession(sessionId);
    this.refreshSubscription();
  }

  /** `datedAt`: the connect envelope's `created_at`, from when this client's requests are taken if it connects now. */
  private async connect(transport: NostrTransport, client: string, request: Nip46Request, datedAt: number): Promise<void> {
    const [remotePubkey, secret] = request.params;
    // A client that is already connected (it restarted and says connect again) is acknowledged; anyone else
    // needs an unused secret issued for this transport key. A connected client that brings an unused secret
    // moves to that secret's session (the one the operator issued it for), and the secret is used up: it was
    // acknowledged and left on its old session, the secret still live for another key (found by review).
    const existing = this.connections.clientGrant(transport.pubkey, client);
    if (existing && !this.connections.firstUseOfRequestId(transport.pubkey, client, request.id)) return this.refuseReplay(transport, client, request.id);
    if (remotePubkey !== transport.pubkey) return this.refuse(transport, client, request.id, 'invalid_request', 'connect: the first parameter must be this remote signer\'s pubkey.');
    const redeemed = secret ? this.connections.redeemSecret(transport.pubkey, secret) : undefined;
    const grant = redeemed ?? existing;
    if (!grant) return this.dropUnknown(transport.pubkey);
    try {
      await this.options.sessions(grant.sessionId);
    } catch (e) {
      // As for a request: a dead session's clients and secrets are forgotten, a frozen agent's are kept (a freeze is
      // lifted), and the secret this connect brought stays unused. A connect during a freeze dropped every client of
      // the session (found by review: after the unfreeze they all needed new connection strings).
      if (isAirlockError(e) && e.code === 'agent_frozen') {
        if (redeemed && secret) this.connections.addSecret(secret, redeemed);
      } else {
        this.forgetSession(grant.sessionId);
      }
      return this.refuseWith(transport, client, request.id, e);
    }
    this.connections.connect(client, grant, datedAt);
    // Its first request id, kept now that it is connected (a repeat of this connect is then a replay).
    if (!existing) this.connections.firstUseOfRequestId(transport.pubkey, client, request.id);
    this.stats.answered++;
    await this.reply(transport, client, { id: request.id, result: 'ack' });
  }

  /** The methods a connected client may call; each one through the port with the session's credentials. */
  private async run(auth: AgentAuth, grant: SessionGrant, client: string, request: Nip46Request): Promise<string> {
    const { method, params } = request;
    switch (method) {
      case 'ping':
        return 'pong';
      case 'get_public_key':
        return (await this.options.port.identity(grant.agentId)).pubkey;
      case 'switch_relays':
        return JSON.stringify(this.options.relays);
      case 'logout':
        return 'ack';
      case 'sign_event':
        return JSON.stringify(await this.signEvent(auth, params[0], nip46IdempotencyKey(client, request.id)));
      case 'nip44_encrypt': {
        const [peer, plaintext] = peerAndText(params);
        return (await this.options.port.nip44Encrypt(auth, peer, plaintext)).ciphertext;
      }
      case 'nip44_decrypt': {
        const [peer, ciphertext] = peerAndText(params);
        return (await this.options.port.nip44Decrypt(auth, peer, ciphertext)).plaintext;
      }
      // NIP-04 leaks metadata and is deprecated: refused unless the session and a policy rule name `nostr.nip04`.
      case 'nip04_encrypt': {
        const [peer, plaintext] = peerAndText(params);
        return (await this.options.port.nip04Encrypt(auth, peer, plaintext)).ciphertext;
      }
      case 'nip04_decrypt': {
        const [peer, ciphertext] = peerAndText(params);
        return (await this.options.port.nip04Decrypt(auth, peer, ciphertext)).plaintext;
      }
      default:
        throw new BunkerRefusal('unsupported_method', `Unknown method ${JSON.stringify(method).slice(0, 40)}.`);
    }
  }

  /**
   * An event is known by its NIP-01 id under the agent's identity key (the digest an approval signs): asking again
   * with the same event, while or after an operator decides, is answered from the approval its first ask opened.
   */
  private async signEvent(auth: AgentAuth, param: string | undefined, idempotencyKey: string): Promise<SignedNostrEvent> {
    const event = parseEventTemplate(param);
    const { pubkey } = await this.options.port.identity(auth.agent);
    const eventId = nostrEventId({ ...event, pubkey });
    return this.held.oneAtATime(auth.session.id, eventId, () => this.askToSign(auth, event, eventId, idempotencyKey));
  }

  private async askToSign(auth: AgentAuth, event: UnsignedNostrEvent, eventId: string, idempotencyKey: string): Promise<SignedNostrEvent> {
    const approvalId = this.held.approvalFor(auth.session.id, eventId);
    if (approvalId !== undefined) {
      const approved = await this.collectApproved(auth, approvalId, eventId);
      if (approved) {
        // Found by review: kept under this request's key too, or delivered again on another instance (or after a
        // restart) it ran as a new request and opened a second approval for an event already approved and signed.
        if (await this.options.port.rememberApprovedEvent(auth, event, idempotencyKey, approvalId)) return approved;
        // The key kept another answer (a refusal while the credential was dead): that one stands, from the store.
        return this.signThroughService(auth, event, eventId, idempotencyKey);
      }
    }
    return this.signThroughService(auth, event, eventId, idempotencyKey);
  }

  /** One ask of the Nostr service under the request's key; a hold is remembered (held-events.ts). */
  private async signThroughService(auth: AgentAuth, event: UnsignedNostrEvent, eventId: string, idempotencyKey: string): Promise<SignedNostrEvent> {
    // Found by review: the replay caches are per process, so a relay delivering an envelope again after a restart or
    // to another instance (the app accepted anew there) had a request run twice, one its client was told was refused
    // signed and charged. Under the stored key a second delivery is answered as the first was (the same signature,
    // nothing charged again; or the same refusal), audited `sign.replay`.
    const outcome = await this.options.port.signEvent(auth, event, idempotencyKey);
    if (outcome.status === 200) return outcome.body.event as SignedNostrEvent;
    if (outcome.status === 202) {
      const held = String(outcome.body.approvalId);
      this.held.hold(auth.session.id, eventId, held);
      throw new BunkerRefusal('approval_required', `Held for operator approval (approval ${held}); nothing was signed yet. Ask again with the same event once it is approved: the answer is then the signed event.`);
    }
    const error = outcome.body.error as { code?: string; message?: string; violations?: { rule: string; code: string }[] } | undefined;
    throw new BunkerRefusal(error?.code ?? 'policy_denied', withViolations(error?.message ?? 'Denied by policy.', error?.violations));
  }

  /**
   * The signed event of an approval this session's earlier ask opened: what GET /v1/approvals/:id gives an HTTP
   * client, the same stored bytes on every ask (charged and audited once, when the operator approved it).
   * Throws while it is pending or once denied; undefined when it expired (or is gone): the caller asks anew.
   */
  private async collectApproved(auth: AgentAuth, approvalId: string, eventId: string): Promise<SignedNostrEvent | undefined> {
    const approval = await this.options.sessions.approval?.(approvalId, auth.agent.id);
    // A pending approval past its expiry is expired (the operator service marks it so lazily).
    if (!approval || approval.state === 'expired' || (approval.state === 'pending' && approval.expiresAt <= this.options.clock.now())) {
      this.held.release(auth.session.id, eventId);
      return undefined;
    }
    if (approval.state === 'denied') throw new BunkerRefusal('approval_denied', `The operator denied approval ${approvalId}; nothing was signed.`);
    if (approval.state === 'pending') throw new BunkerRefusal('approval_required', `Still held for operator approval (approval ${approvalId}); nothing was signed yet. Ask again with the same event once it is approved.`);
    // Approved: the result is stored just after the grant commits. Checked as any envelope is (it came from the store).
    const signed = (approval.result as { event?: unknown } | undefined)?.event;
    if (!isValidSignedEvent(signed) || signed.id !== eventId) {
      throw new BunkerRefusal('approval_required', `Approval ${approvalId} was granted; its signature is not ready yet. Ask again shortly.`);
    }
    return signed;
  }

  private async decryptRequest(transport: NostrTransport, envelope: SignedNostrEvent): Promise<Nip46Request | undefined> {
    let text: string;
    try {
      text = await transport.nip44Decrypt(envelope.pubkey, envelope.content);
    } catch {
      return undefined;
    }
    let parsed: unknown;
    try {
      // Text from outside, as an HTTP body is: prototype keys, depth and lone surrogates refused (parseUntrustedJson).
      parsed = parseUntrustedJson(text, { subject: 'The NIP-46 request' });
    } catch {
      return undefined;
    }
    const r = parsed as Partial<Nip46Request> | null;
    if (!r || typeof r.id !== 'string' || r.id === '' || r.id.length > 128 || typeof r.method !== 'string') return undefined;
    const params = Array.isArray(r.params) ? r.params : [];
    if (!params.every((p) => typeof p === 'string')) return undefined;
    return { id: r.id, method: r.method, params };
  }

  private refuseWith(transport: NostrTransport, client: string, requestId: string, e: unknown): Promise<void> {
    if (e instanceof BunkerRefusal) return this.refuse(transport, client, requestId, e.code, e.message);
    if (isAirlockError(e)) return this.refuse(transport, client, requestId, e.code, withViolations(e.message, e.violations));
    this.options.log?.(`nostr bunker: internal error: ${e instanceof Error ? e.message : String(e)}`);
    return this.refuse(transport, client, requestId, 'internal', 'Internal error; nothing was signed.');
  }

  /** NIP-46 error reply: the `error` string starts with Airlock's stable code, so clients can branch on it. */
  private async refuse(transport: NostrTransport, client: string, requestId: string, code: string, message: string): Promise<void> {
    this.stats.refused++;
    await this.reply(transport, client, { id: requestId, result: '', error: `${code}: ${message}` });
  }

  private async reply(transport: NostrTransport, client: string, body: { id: string; result: string; error?: string }, relays?: readonly string[]): Promise<void> {
    const content = await transport.nip44Encrypt(client, JSON.stringify(body));
    const template: UnsignedNostrEvent = { kind: NOSTR_CONNECT_KIND, tags: [['p', client]], content, created_at: Math.floor(Date.now() / 1000) };
    const event = await transport.signEnvelope(template);
    const targets = relays ? this.relays.filter((r) => relays.includes(r.url)) : this.relays;
    const results = await Promise.all(targets.map((r) => r.publish(event)));
    if (!results.some((r) => r.accepted)) this.options.log?.(`nostr bunker: no relay accepted a reply (${results.map((r) => r.message).join('; ')})`);
  }
}

/** A refusal with a stable code that is not an AirlockError code (NIP-46 specific). */
class BunkerRefusal extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

/** Bad operator input (the nostrconnect:// URI): the route answers it as 400 invalid_request. */
export class BunkerInputError extends Error {}

function withViolations(message: string, violations: readonly { rule: string; code: string }[] | undefined): string {
  if (!violations?.length) return message;
  return `${message} [${violations.map((v) => `${v.rule}: ${v.code}`).join('; ')}]`;
}

/**
 * The Idempotency-Key a client's `sign_event` is stored under (scoped to the agent, as an HTTP caller's is). `/` is
 * outside the Idempotency-Key header's characters, so no HTTP caller's key can take one of these.
 */
function nip46IdempotencyKey(clientPubkey: string, requestId: string): string {
  return `nip46/${clientPubkey}/${requestId}`;
}

function peerAndText(params: string[]): [string, string] {
  const [peer, text] = params;
  if (!isHexPubkey(peer)) throw new BunkerRefusal('invalid_request', 'The first parameter must be a 32-byte hex pubkey.');
  if (typeof text !== 'string') throw new BunkerRefusal('invalid_request', 'The second parameter (the text) is missing.');
  return [peer, text];
}

/** NIP-46 sign_event: `[json({kind, content, tags, created_at})]`; the pubkey is the agent's, never the client's. */
function parseEventTemplate(param: string | undefined): UnsignedNostrEvent {
  let value: unknown;
  try {
    value = parseUntrustedJson(param ?? '', { subject: 'sign_event' });
  } catch {
    throw new BunkerRefusal('invalid_request', 'sign_event: the parameter must be a JSON event template (well-formed Unicode, no prototype keys).');
  }
  const e = value as Partial<UnsignedNostrEvent> | null;
  if (!e || !Number.isInteger(e.kind) || e.kind! < 0 || e.kind! > 65535) throw new BunkerRefusal('invalid_request', 'sign_event: kind must be an integer 0-65535.');
  if (typeof e.content !== 'string') throw new BunkerRefusal('invalid_request', 'sign_event: content must be a string.');
  if (!Number.isInteger(e.created_at) || e.created_at! < 0) throw new BunkerRefusal('invalid_request', 'sign_event: created_at must be a unix time in seconds.');
  const tags = e.tags ?? [];
  if (!Array.isArray(tags) || !tags.every((t) => Array.isArray(t) && t.every((x) => typeof x === 'string'))) throw new BunkerRefusal('invalid_request', 'sign_event: tags must be an array of string arrays.');
  return { kind: e.kind!, content: e.content, tags, created_at: e.created_at! };
}

/** Relay URLs compare after WHATWG normalisation (clients add the trailing slash: `ws://host:1/`). */
function normalizeRelayUrl(url: string): string {
  return URL.canParse(url) ? new URL(url).href : url;
}

/** `nostrconnect://<client pubkey>?relay=…&secret=…[&perms=…&name=…]` (NIP-46). */
export function parseNostrConnectUri(uri: string): { clientPubkey: string; relays: string[]; secret: string } {
  const match = /^nostrconnect:\/\/([0-9a-f]{64})\?(.*)$/.exec(uri.trim());
  if (!match) throw new BunkerInputError('Expected nostrconnect://<64 hex client pubkey>?relay=…&secret=….');
  const query = new URLSearchParams(match[2]);
  const secret = query.get('secret');
  const relays = query.getAll('relay');
  if (!secret) throw new BunkerInputError('The nostrconnect:// URI has no secret (NIP-46 requires one).');
  if (relays.length === 0) throw new BunkerInputError('The nostrconnect:// URI names no relay.');
  return { clientPubkey: match[1]!, relays, secret };
}
