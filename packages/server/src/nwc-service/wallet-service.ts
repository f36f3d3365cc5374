/**
 * Airlock as a NIP-47 (Nostr Wallet Connect) WALLET SERVICE for agents that already speak NWC. An operator
 * issues a `nostr+walletconnect://` string for a session (POST /v1/sessions/:id/nwc-connect); whatever the
 * client holding it asks is done with that session's credential, so its policy, budgets, approvals and audit
 * apply exactly as to POST /v1/lightning/pay. The service holds no payment path of its own: pay_invoice is
 * LightningService.pay, lookup_invoice reads the agent's own payment records, get_balance reads the budgets.
 *
 * Keys: each connection has its own wallet service key, derived in the key backend (wallet-key.ts); the
 * connection is recorded in the audit log (connections.ts), so restarts and other instances answer it too.
 *
 * Per request, in order (each step refuses before the next runs):
 *  1. the envelope: a kind-23194 event whose id and BIP-340 signature hold (relays are not trusted), seen for
 *     the first time (the same event comes once per relay); anything else is dropped without an answer;
 *  2. its `p` tag names a wallet service key of a connection this instance serves, and its author is THAT
 *     connection's client key. Another author is ignored, never answered (an answer would confirm the key is
 *     served), and counted per author key in the audit log (`auth.failures`, `unknown_client`);
 *  3. an `expiration` tag in the past: ignored (NIP-47: "it should be ignored"); a pay_invoice held for approval
 *     has its approval expire no later than the tag (`approvalLifetimeOf`);
 *  4. the `encryption` tag must be `nip44_v2`, the only scheme the info event offers: a NIP-04 request (no tag)
 *     cannot be read, and no answer in NIP-44 could be read by its sender either, so it is dropped and counted;
 *  5. a token bucket per client key: over it, RATE_LIMITED and nothing done (counted as `session.rate_limited`);
 *  6. decrypt (NIP-44 with the wallet key, in the key backend) and parse `{method, params}`;
 *  7. the session is read from the store again: revoked, expired, frozen or retired -> UNAUTHORIZED.
 *     A pay_invoice refused at 5 or 7 keeps its refusal under its Idempotency-Key (see `keepRefusal`);
 *  8. the method runs with the session's AgentAuth; its answer (or NIP-47 error: nip47-answers.ts) is sent as
 *     a kind-23195 event with `e` = the request and `p` = the client, NIP-44 encrypted, signed by the wallet key.
 *
 * Several instances on one store all answer a request (each listens on the relays): pay_invoice uses the request
 * event id as its Idempotency-Key, so the second instance gets the first one's payment, never a second payment,
 * and waits for its outcome before answering; or the first one's refusal, as it was answered.
 *
 * Timing: pay_invoice answers within the Lightning pay timeout (AIRLOCK_LIGHTNING_PAY_TIMEOUT, default 60 s, plus
 * 5 s), or says the payment is in flight. NWC clients commonly give up after 60 s (@getalby/sdk does): with the
 * default the client may time out first; the payment is unaffected and lookup_invoice reports it.
 * The per-client rate is the bunker's (AIRLOCK_NOSTR_BUNKER_RATE / _BURST).
 */
import { randomInt } from 'node:crypto';
import { AirlockError, CREDENTIAL_REFUSAL_CODES, isAirlockError, LIGHTNING_ACTION, lightningRequestHash, parseUntrustedJson, type AgentAuth, type Clock, type IdempotencyRecord, type KeyBackend, type LightningPayInput, type LightningService, type SignOutcome, type SignedNostrEvent, type Store } from '@airlock/core';
import { decodeBolt11 } from '@airlock/chains';
import { schnorr, secp256k1 } from '@noble/curves/secp256k1.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { SessionRateLimiter } from '../http/session-rate-limiter.ts';
import type { RefusalTally } from '../http/refusal-tally.ts';
import { NWC_INFO_KIND, NWC_REQUEST_KIND, NWC_RESPONSE_KIND } from '../lightning/nwc-transport.ts';
import { isValidSignedEvent } from '../nostr-bunker/nip01.ts';
import { RelayConnection } from '../nostr-bunker/relay-connection.ts';
import { relayLabel } from '../relay-label.ts';
import { requestIdsToRemember } from '../nostr-bunker/connections.ts';
import type { SessionSource } from '../nostr-bunker/session-source.ts';
import { grantIssuedEntry, NwcGrants, readIssuedGrants, RecentIds, type NwcGrant } from './connections.ts';
import { jsonMsat, Nip47Refusal, payInvoiceResult, refusalFor, storedRefusal, transactionOf, transactionOfApproval, type Nip47Transaction } from './nip47-answers.ts';
import { spendableMsat } from './spendable.ts';
import { nwcWalletServicePath, walletKeyAt, type NwcWalletKey } from './wallet-key.ts';

/** What the info event and get_info offer. */
export const NWC_METHODS = ['pay_invoice', 'lookup_invoice', 'get_balance', 'get_info'] as const;
const SUBSCRIPTION_ID = 'airlock-nwc';
/** NIP-44 caps plaintext at 64 KiB; base64 grows it by 4/3. Larger requests are dropped before decryption. */
const MAX_CONTENT_CHARS = 100_000;
/** Requests dated further back than this are dropped (the bunker's window: clock skew and slow relays). */
const MAX_REQUEST_AGE_SECONDS = 600;
/**
 * Requests dated further ahead than this are dropped: a request dated ahead outlives a restart (see `receive`) by as
 * much, so the bound ahead is tighter than the one back (found by review).
 */
const MAX_REQUEST_AHEAD_SECONDS = 60;
/** Sessions live at most 30 days (OperatorService): older connections cannot belong to a live session. */
const MAX_SESSION_MS = 30 * 24 * 3600_000;
/** How far back `sync` reads again: entries committed late by another instance (clock skew, long transactions). */
const SYNC_OVERLAP_MS = 5 * 60_000;
const NETWORK_NAMES = { bitcoin: 'mainnet', testnet: 'testnet', signet: 'signet', regtest: 'regtest' } as const;
const HEX64 = /^[0-9a-f]{64}$/;

export interface NwcWalletServiceOptions {
  /** ws:// or wss:// URLs (AIRLOCK_NOSTR_RELAYS), the same the NIP-46 bunker listens on. */
  relays: readonly string[];
  store: Store;
  /** Derives the wallet service keys; signs and computes NIP-44 keys without exporting them. */
  keys: KeyBackend;
  /** Must have a backend: the composition root builds this service only then. */
  lightning: LightningService;
  sessions: SessionSource;
  clock: Clock;
  /** Token bucket per client key. */
  clientRate: { perSecond: number; burst: number };
  /** Connection trouble and dropped envelopes (never contents, never a secret). */
  log?: (message: string) => void;
  /** Refusals made before the payment service is reached, counted per client key into the audit log. */
  refusals?: RefusalTally;
}

/** What happened to the envelopes received so far: operators and tests read it. */
export interface NwcWalletServiceStats {
  /** Malformed, wrong kind, bad id or bad signature. */
  droppedInvalid: number;
  /** Addressed to no wallet key served here, or too large. */
  droppedUnaddressed: number;
  /** Signed by a key that is not the connection's client: never answered. */
  ignoredUnknownClient: number;
  droppedExpired: number;
  /**
   * Dated more than 10 minutes from now, or before this service began listening (a relay replaying what it
   * kept: see `receive`).
   */
  droppedStale: number;
  /** No `encryption` tag (NIP-04) or another scheme than nip44_v2. */
  droppedUnsupportedEncryption: number;
  /** Did not decrypt, or not a `{method, params}` object. */
  droppedUndecryptable: number;
  rateLimited: number;
  /** Answered with a NIP-47 error (rate limits included), counted once the answer is published. */
  refused: number;
  /** Answered with a result, counted once the answer is published. */
  answered: number;
}

export interface IssuedNwcConnection {
  /** `nostr+walletconnect://<wallet pubkey>?relay=…&secret=…`: shown once, never stored. */
  uri: string;
  walletPubkey: string;
  clientPubkey: string;
  relays: string[];
}

interface Nip47Request {
  method: string;
  params: Record<string, unknown>;
}

export class NwcWalletService {
  readonly stats: NwcWalletServiceStats = { droppedInvalid: 0, droppedUnaddressed: 0, ignoredUnknownClient: 0, droppedExpired: 0, droppedStale: 0, droppedUnsupportedEncryption: 0, droppedUndecryptable: 0, rateLimited: 0, refused: 0, answered: 0 };
  /**
   * Unix seconds from which requests are taken: none dated before the second this service was made in (see
   * `receive`). Requests are dated in seconds, so one refused in that same second by the process before could be
   * taken again; a daemon's restart (unsealing, connecting relays) takes longer.
   */
  private readonly acceptsFrom = Math.floor(Date.now() / 1000);
  private readonly options: NwcWalletServiceOptions;
  private readonly grants = new NwcGrants();
  private readonly walletKeys = new Map<string, Promise<NwcWalletKey>>();
  /** Request ids seen lately, per client key (a copy from another relay, or replayed, is handled once). */
  private readonly seenByClient = new Map<string, RecentIds>();
  private readonly limiter: SessionRateLimiter;
  /** Over-rate pay_invoice refusals kept in the store per client (`keepRefusal`): the client's own rate again. */
  private readonly keptRefusals: SessionRateLimiter;
  private readonly relays: RelayConnection[];
  private syncedUpTo = 0;

  constructor(options: NwcWalletServiceOptions) {
    if (options.relays.length === 0) throw new RangeError('NwcWalletService: at least one relay');
    if (!options.lightning.backend) throw new RangeError('NwcWalletService: a Lightning backend');
    this.options = options;
    this.limiter = new SessionRateLimiter(options.clientRate);
    this.keptRefusals = new SessionRateLimiter(options.clientRate);
    this.relays = options.relays.map((url) => new RelayConnection(url, { onEvent: (_sub, e) => this.receive(e), ...(options.log ? { onProblem: options.log } : {}) }));
  }

  /**
   * Restores the connections of sessions that have not ended from the audit log, listens for them, connects
   * (a relay that is down is retried in the background) and publishes each one's info event again (relays may
   * have dropped them).
   */
  async start(): Promise<void> {
    const restored = await this.restore();
    this.refreshSubscription();
    await Promise.all(this.relays.map((r) => r.connect().catch(() => this.log(`relay ${relayLabel(r.url)} unreachable at start; retrying`))));
    await Promise.all(restored.map(async (g) => this.publishInfo(await this.keyOf(g))));
  }

  /** Reads connections other instances issued since the last read, and listens for them too (a timer calls it). */
  async sync(): Promise<number> {
    const from = this.syncedUpTo - SYNC_OVERLAP_MS;
    this.syncedUpTo = this.options.clock.now();
    let added = 0;
    for (const grant of await readIssuedGrants(this.options.store, from)) if (this.grants.add(grant)) added++;
    if (added > 0) this.refreshSubscription();
    return added;
  }

  /** Writes the refusal counts of windows that have ended (a timer calls it; `close` writes all). */
  flushRefusals(all = false): Promise<void> {
    const now = this.options.clock.now();
    return (all ? this.options.refusals?.flushAll(now) : this.options.refusals?.flushDue(now)) ?? Promise.resolve();
  }

  close(): void {
    for (const r of this.relays) r.close();
  }

  /**
   * A new connection for a session (POST /v1/sessions/:id/nwc-connect). The session must be usable now and its
   * scope must include `lightning.pay`. The client secret is generated here, shown once in the URI and not kept:
   * only its public key is recorded (with the audit entry that issues it). The info event is published before
   * the URI is returned, so a client can use it at once.
   */
  async issueConnection(sessionId: string, by: string): Promise<IssuedNwcConnection> {
    const auth = await this.options.sessions(sessionId);
    if (!auth.session.scope.actions.includes('lightning.pay')) {
      throw new AirlockError('conflict', "This session's scope does not include lightning.pay: an NWC client could pay nothing with it.", { hints: ['Issue a session with actions including lightning.pay, then connect that one.'] });
    }
    let keyIndex: number;
    do keyIndex = randomInt(0, 2 ** 31 - 1);
    while (this.grants.usesKeyIndex(auth.agent.id, keyIndex));
    const walletKey = await walletKeyAt(this.options.keys, nwcWalletServicePath(auth.agent.accountIndex, keyIndex));
    const secret = secp256k1.utils.randomSecretKey();
    try {
      const grant: NwcGrant = { sessionId, agentId: auth.agent.id, clientPubkey: bytesToHex(schnorr.getPublicKey(secret)), walletPubkey: walletKey.pubkey, keyIndex };
      await this.options.store.transaction((tx) => tx.appendAudit(grantIssuedEntry(this.options.clock.now(), grant, by)));
      this.grants.add(grant);
      this.walletKeys.set(grant.walletPubkey, Promise.resolve(walletKey));
      this.refreshSubscription();
      await this.publishInfo(walletKey);
      const query = new URLSearchParams();
      for (const relay of this.options.relays) query.append('relay', relay);
      // The hex string cannot be wiped (JS strings are immutable); it lives only until the response is sent.
      query.set('secret', bytesToHex(secret));
      return { uri: `nostr+walletconnect://${walletKey.pubkey}?${query.toString()}`, walletPubkey: walletKey.pubkey, clientPubkey: grant.clientPubkey, relays: [...this.options.relays] };
    } finally {
      secret.fill(0);
    }
  }

  /** Connections issued within the longest session life whose session has not ended, checked against the vault. */
  private async restore(): Promise<NwcGrant[]> {
    const { store, clock } = this.options;
    const now = clock.now();
    this.syncedUpTo = now;
    const restored: NwcGrant[] = [];
    for (const grant of await readIssuedGrants(store, now - MAX_SESSION_MS)) {
      const session = await store.getSession(grant.sessionId);
      if (!session || session.revokedAt !== undefined || session.expiresAt <= now) continue;
      if ((await this.keyOf(grant)).pubkey !== grant.walletPubkey) {
        this.log(`nwc: the wallet key of a connection of session ${grant.sessionId} does not derive from this vault; not served`);
        this.walletKeys.delete(grant.walletPubkey);
        continue;
      }
      if (this.grants.add(grant)) restored.push(grant);
    }
    return restored;
  }

  private keyOf(grant: NwcGrant): Promise<NwcWalletKey> {
    let key = this.walletKeys.get(grant.walletPubkey);
    if (!key) {
      key = (async () => {
        const agent = await this.options.store.getAgent(grant.agentId);
        if (!agent) throw new AirlockError('not_found', 'No such agent.');
        return walletKeyAt(this.options.keys, nwcWalletServicePath(agent.accountIndex, grant.keyIndex));
      })();
      key.catch(() => this.walletKeys.delete(grant.walletPubkey));
      this.walletKeys.set(grant.walletPubkey, key);
    }
    return key;
  }

  /** One subscription per relay for every wallet key in use (a REQ with the same id replaces it: NIP-01). */
  private refreshSubscription(): void {
    const keys = this.grants.walletKeys();
    if (keys.length === 0) return;
    // limit 0: only new requests. By `#p` only (not by author): requests from unknown keys must reach Airlock
    // to be counted, and Airlock checks every author itself.
    for (const r of this.relays) r.subscribe(SUBSCRIPTION_ID, [{ kinds: [NWC_REQUEST_KIND], '#p': keys, limit: 0 }]);
  }

  /** NIP-47 info event: a replaceable kind 13194 by the wallet key, listing the methods and `nip44_v2`. */
  private async publishInfo(key: NwcWalletKey): Promise<void> {
    const event = await key.sign({ kind: NWC_INFO_KIND, tags: [['encryption', 'nip44_v2']], content: NWC_METHODS.join(' '), created_at: Math.floor(Date.now() / 1000) });
    await this.publish(event, 'info event');
  }

  /** Steps 1-4 run synchronously on receipt, so requests are judged in the order the relays delivered them. */
  private receive(raw: unknown): void {
    if (!isValidSignedEvent(raw) || raw.kind !== NWC_REQUEST_KIND) {
      this.stats.droppedInvalid++;
      return;
    }
    // A request is taken once, and only while it is fresh (found by review: a pay_invoice refused before any
    // decision was recorded, while the agent was frozen or over its rate, was paid when a relay delivered it
    // again after the unfreeze). NIP-47 sets no window; as the bunker does, requests dated more than 10 minutes
    // from now are dropped (clients date each request now), and so is any request dated before this service
    // began listening: the subscription asks only for new events (limit 0), so an honest relay sends none, and
    // the ids this process had seen (of refusals too) are gone with the process before it.
    // created_at is the client's wall clock, as in the bunker, not the daemon's policy clock.
    const nowSeconds = Date.now() / 1000;
    if (nowSeconds - raw.created_at > MAX_REQUEST_AGE_SECONDS || raw.created_at - nowSeconds > MAX_REQUEST_AHEAD_SECONDS || raw.created_at < this.acceptsFrom) {
      this.stats.droppedStale++;
      return;
    }
    const grant = raw.tags.filter((t) => t[0] === 'p').map((t) => this.grants.forWalletKey(t[1] ?? '')).find((g) => g !== undefined);
    if (!grant || raw.content.length > MAX_CONTENT_CHARS) {
      this.stats.droppedUnaddressed++;
      return;
    }
    if (raw.pubkey !== grant.clientPubkey) {
      this.stats.ignoredUnknownClient++;
      // One source per wallet key for every other author: fresh keys cost a signature each, not an audit entry
      // each (found by review: 2,000 envelopes from fresh keys made 2,002 entries; the bunker counts the same way).
      this.countRefusal('auth.failures', `unknown:${grant.walletPubkey}`, 'unknown_client');
      return;
    }
    // Remembered only now, per client: ids of envelopes anyone can sign (junk p-tagged to a wallet key), or another
    // connection's client's, no longer push a request's id out before a relay replays it (found by review). Each
    // client's cache holds every request its rate lets through across the window.
    if (!this.firstSight(grant.clientPubkey, raw.id)) return;
    const expiration = expirationOf(raw);
    if (expiration !== undefined && expiration < Date.now() / 1000) {
      this.stats.droppedExpired++;
      return;
    }
    if (raw.tags.find((t) => t[0] === 'encryption')?.[1] !== 'nip44_v2') {
      this.stats.droppedUnsupportedEncryption++;
      return;
    }
    this.handle(raw, grant).catch((e: unknown) => this.log(`nwc: request failed: ${e instanceof Error ? e.message : String(e)}`));
  }

  private async handle(envelope: SignedNostrEvent, grant: NwcGrant): Promise<void> {
    const key = await this.keyOf(grant);
    const limited = this.limiter.take(grant.clientPubkey, this.options.clock.now()) > 0;
    // The method is inside the encrypted content, and NIP-47 wants it in every answer (result_type).
    const request = await this.decryptRequest(key, envelope);
    if (!request) {
      this.stats.droppedUndecryptable++;
      return;
    }
    if (limited) {
      const overRate = new AirlockError('rate_limited', 'too many requests from this connection; nothing was done. Send it again as a new request in a few seconds.');
      // Keeping a pay_invoice's refusal costs a store write and an audit entry: past a second bucket's worth, an
      // over-rate pay_invoice gets no answer at all, as if lost on the way (nothing tells its client it was not done,
      // so nothing is owed if another instance pays it), and a flood from one connection writes nothing.
      const unanswered = request.method === 'pay_invoice' && this.keptRefusals.take(grant.clientPubkey, this.options.clock.now()) > 0;
      // A request another instance (or an earlier process) already decided is answered as decided, below: it pays
      // nothing new, and each id is taken once per process (firstSight), so the rate still bounds that work.
      const decided = request.method === 'pay_invoice' && !unanswered ? await this.keepRefusal(grant, envelope, request.params, overRate) : undefined;
      if (!decided) {
        this.stats.rateLimited++;
        this.countRefusal('session.rate_limited', grant.clientPubkey, 'rate_limited');
        return unanswered ? undefined : this.refuse(key, envelope, request.method, refusalFor(overRate));
      }
    }
    let auth: AgentAuth;
    try {
      auth = await this.options.sessions(grant.sessionId);
    } catch (e) {
      if (isAirlockError(e)) this.countRefusal('auth.failures', grant.clientPubkey, e.code);
      return this.refuse(key, envelope, request.method, await this.deadCredentialRefusal(grant, envelope, request, e));
    }
    let result: unknown;
    try {
      result = await this.run(auth, envelope, request);
    } catch (e) {
      if (!(e instanceof Nip47Refusal) && !isAirlockError(e)) this.log(`nwc: internal error in ${request.method}: ${e instanceof Error ? e.message : String(e)}`);
      return this.refuse(key, envelope, request.method, refusalFor(e));
    }
    await this.reply(key, envelope, { result_type: request.method, error: null, result });
    this.stats.answered++;
  }

  /** The methods a client may call; each one with the session's credential. */
  private async run(auth: AgentAuth, envelope: SignedNostrEvent, { method, params }: Nip47Request): Promise<unknown> {
    switch (method) {
      case 'pay_invoice':
        return this.payInvoice(auth, envelope, params);
      case 'lookup_invoice':
        return this.lookupInvoice(auth, params);
      case 'get_balance': {
        const msat = await spendableMsat(this.options.store, this.backend(), auth, this.options.clock.now());
        if (msat === undefined) throw new Nip47Refusal('OTHER', 'balance_unknown: no budget bounds this session\'s Lightning payments and the backend does not report a balance; policy decides each payment.');
        // A budget larger than a JSON number holds exactly: "at least this much" is still true.
        return { balance: jsonMsat(msat > BigInt(Number.MAX_SAFE_INTEGER) ? BigInt(Number.MAX_SAFE_INTEGER) : msat) };
      }
      case 'get_info':
        // No node alias, key or block: the agent sees Airlock, not the operator's node.
        return { alias: 'Airlock', network: NETWORK_NAMES[this.backend().network], methods: [...NWC_METHODS], notifications: [] };
      default:
        throw new Nip47Refusal('NOT_IMPLEMENTED', `not_implemented: ${method.slice(0, 64)} is not offered; this wallet service offers ${NWC_METHODS.join(', ')}.`);
    }
  }

  private async payInvoice(auth: AgentAuth, envelope: SignedNostrEvent, params: Record<string, unknown>): Promise<unknown> {
    // The request event id is the Idempotency-Key: a copy of this request (another relay, another instance)
    // gets this payment, never a second one.
    let outcome = await this.options.lightning.pay(auth, payInput(params), idempotencyKeyOf(envelope), approvalLifetimeOf(envelope));
    if (outcome.status === 202 && outcome.body.replayed === true && outcome.body.status === 'in_flight') outcome = await this.awaitPayment(String(outcome.body.paymentId), auth.agent.id);
    return payInvoiceResult(outcome);
  }

  /**
   * The answer to a request refused for its dead credential (frozen agent, revoked or expired session). Found by
   * review: a pay_invoice refused so kept nothing under its key, and delivered again after the unfreeze to another
   * instance (or after a restart, or by a relay) it was paid, its client told it was refused. As the bunker does
   * for a sign_event (`signWithDeadCredential`), the refusal is kept under the key; a refusal the key already kept
   * is answered again. A payment or hold it kept is not handed to a dead credential: that gets the credential's
   * refusal.
   */
  private async deadCredentialRefusal(grant: NwcGrant, envelope: SignedNostrEvent, request: Nip47Request, e: unknown): Promise<Nip47Refusal> {
    if (request.method !== 'pay_invoice' || !isAirlockError(e) || !CREDENTIAL_REFUSAL_CODES.has(e.code)) return refusalFor(e);
    const decided = await this.keepRefusal(grant, envelope, request.params, e);
    if (!decided) return refusalFor(e);
    // A payment or hold another instance made under this key before the credential died is not this credential's
    // to collect, and not to deny either: a client keeps the first answer per request, and "unauthorized" for a
    // request that was paid would send it to pay again (found by review). Its state is what lookup_invoice says.
    return storedRefusal(decided.response) ?? new Nip47Refusal('OTHER', `already_decided: this request was taken up before the connection's credential stopped working (${e.code}); lookup_invoice tells its state. Nothing more is done for it.`);
  }

  /**
   * Keeps a pay_invoice's refusal made before the payment service was reached (over the rate, a dead credential)
   * under the request's Idempotency-Key, where LightningService.pay looks first: any later delivery of the request,
   * on any instance, is answered this refusal and pays nothing (found by review: the replay defences here are per
   * process). Written only if the key has no record; that record is returned instead (another instance, or an
   * earlier delivery, decided the request). Params that could pay nothing keep nothing.
   */
  private async keepRefusal(grant: NwcGrant, envelope: SignedNostrEvent, params: Record<string, unknown>, refusal: AirlockError): Promise<IdempotencyRecord | undefined> {
    let input: LightningPayInput;
    try {
      input = payInput(params);
    } catch {
      return undefined;
    }
    const { store, clock } = this.options;
    const scope = `agent:${grant.agentId}`;
    const idempotencyKey = idempotencyKeyOf(envelope);
    const keep = () => store.transaction(async (tx) => {
      // The agent's lock (PostgreSQL), as LightningService.pay takes it first: its decisions under this key on
      // other instances serialise with this write.
      await tx.getAgent(grant.agentId);
      const prior = await tx.getIdempotency(scope, idempotencyKey);
      if (prior) return prior;
      const now = clock.now();
      const reqHash = lightningRequestHash(input);
      const entry = await tx.appendAudit({ at: now, type: 'sign.request', actor: 'agent', agentId: grant.agentId, sessionId: grant.sessionId, action: LIGHTNING_ACTION, decision: 'error', data: { errorCode: refusal.code, message: refusal.message, requestHash: reqHash, idempotencyKey } });
      const body = { decision: 'deny', error: { code: refusal.code, message: refusal.message }, auditSeq: entry.seq };
      await tx.putIdempotency({ scope, key: idempotencyKey, requestHash: reqHash, auditSeq: entry.seq, response: { status: 403, body }, createdAt: now });
      return undefined;
    }, { affinity: grant.agentId });
    try {
      return await keep();
    } catch (e) {
      // Another instance wrote the key between our read and our write (the unique key): its record is the answer.
      if (!isAirlockError(e) || e.code !== 'conflict') throw e;
      return keep();
    }
  }

  /** A payment another instance (or an earlier copy of the request) is paying: its outcome, once it has one. */
  private async awaitPayment(paymentId: string, agentId: string): Promise<SignOutcome> {
    const record = await this.options.store.getLightningPayment(paymentId);
    const deadline = Date.now() + Math.min(((record?.timeoutSeconds ?? 0) + 5) * 1000, 55_000);
    for (;;) {
      const p = await this.options.store.getLightningPayment(paymentId);
      if (!p || p.state !== 'in_flight' || Date.now() >= deadline) return this.options.lightning.getPayment(paymentId, agentId);
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  /** The agent's own payment of a hash (never another agent's: that is NOT_FOUND like a hash nobody paid). */
  private async lookupInvoice(auth: AgentAuth, params: Record<string, unknown>): Promise<Nip47Transaction> {
    const hash = this.paymentHashOf(params);
    const agentId = auth.agent.id;
    // Newest first, both. The answer is about the newest attempt: a payment in flight or paid (a hash is paid at
    // most once) wins, then a request waiting for approval, and only then the newest of the attempts that ended
    // without paying (a failed payment, a denied or expired request): never an earlier failure while a retry is
    // still under way, which a client would take for this attempt's outcome.
    const payments = await this.options.store.listLightningPayments({ agentId, paymentHash: hash, limit: 20 });
    const active = payments.find((p) => p.state !== 'failed');
    if (active) return transactionOf(active, this.descriptionOf(active.invoice));
    const requests = (await this.options.store.listApprovals({ agentId, limit: 1000 })).filter((a) => a.action === 'lightning.pay' && a.digest === hash);
    const waiting = requests.find((a) => a.state === 'pending');
    const closed = requests.find((a) => a.state !== 'approved' && a.state !== 'pending');
    const failed = payments[0];
    const request = waiting ?? (closed && (!failed || closed.createdAt > failed.createdAt) ? closed : undefined);
    const fromRequest = request && transactionOfApproval(request);
    if (fromRequest) {
      const description = this.descriptionOf(fromRequest.invoice);
      return description === undefined ? fromRequest : { ...fromRequest, description };
    }
    if (failed) return transactionOf(failed, this.descriptionOf(failed.invoice));
    throw new Nip47Refusal('NOT_FOUND', 'not_found: this connection has no payment of that hash.');
  }

  private paymentHashOf(params: Record<string, unknown>): string {
    const { payment_hash: hash, invoice } = params;
    if (typeof hash === 'string') {
      if (!HEX64.test(hash.toLowerCase())) throw new Nip47Refusal('OTHER', 'invalid_request: payment_hash must be 32 bytes of hex.');
      return hash.toLowerCase();
    }
    if (typeof invoice === 'string') {
      try {
        // Only the hash is needed: an old (expired) invoice may still be looked up.
        return decodeBolt11(invoice, { now: 0, network: this.backend().network }).paymentHash;
      } catch (e) {
        throw refusalFor(e);
      }
    }
    throw new Nip47Refusal('OTHER', 'invalid_request: lookup_invoice needs params.payment_hash or params.invoice.');
  }

  private descriptionOf(invoice: string): string | undefined {
    try {
      return decodeBolt11(invoice, { now: 0, network: this.backend().network }).description;
    } catch {
      return undefined;
    }
  }

  private backend() {
    return this.options.lightning.backend!;
  }

  private async decryptRequest(key: NwcWalletKey, envelope: SignedNostrEvent): Promise<Nip47Request | undefined> {
    let value: unknown;
    try {
      value = parseUntrustedJson(await key.decrypt(envelope.pubkey, envelope.content), { subject: 'The NWC request' });
    } catch {
      return undefined;
    }
    const r = value as { method?: unknown; params?: unknown } | null;
    if (!r || typeof r !== 'object' || typeof r.method !== 'string' || r.method === '' || r.method.length > 64) return undefined;
    const params = r.params ?? {};
    if (typeof params !== 'object' || params === null || Array.isArray(params)) return undefined;
    return { method: r.method, params: params as Record<string, unknown> };
  }

  private async refuse(key: NwcWalletKey, envelope: SignedNostrEvent, method: string, refusal: Nip47Refusal): Promise<void> {
    await this.reply(key, envelope, { result_type: method, error: { code: refusal.code, message: refusal.message }, result: null });
    this.stats.refused++;
  }

  /** NIP-47 response: kind 23195, `p` = the client, `e` = the request, NIP-44 encrypted to the client. */
  private async reply(key: NwcWalletKey, envelope: SignedNostrEvent, body: { result_type: string; error: { code: string; message: string } | null; result: unknown }): Promise<void> {
    const content = await key.encrypt(envelope.pubkey, JSON.stringify(body));
    const event = await key.sign({ kind: NWC_RESPONSE_KIND, tags: [['p', envelope.pubkey], ['e', envelope.id]], content, created_at: Math.floor(Date.now() / 1000) });
    await this.publish(event, 'response');
  }

  private async publish(event: SignedNostrEvent, what: string): Promise<void> {
    const results = await Promise.all(this.relays.map((r) => r.publish(event)));
    if (!results.some((r) => r.accepted)) this.log(`nwc: no relay accepted the ${what} (${results.map((r) => r.message).join('; ')})`);
  }

  private firstSight(client: string, id: string): boolean {
    let ids = this.seenByClient.get(client);
    if (!ids) this.seenByClient.set(client, (ids = new RecentIds(requestIdsToRemember(this.options.clientRate, MAX_REQUEST_AGE_SECONDS))));
    return ids.firstSight(id);
  }

  private countRefusal(type: 'auth.failures' | 'session.rate_limited', client: string, code: string): void {
    this.options.refusals?.count(type, `nwc:${client}`, code, this.options.clock.now());
  }

  private log(message: string): void {
    this.options.log?.(message);
  }
}

/** What pay_invoice asks LightningService.pay. NIP-47 carries no fee limit: the default one applies, judged by policy. */
function payInput(params: Record<string, unknown>): LightningPayInput {
  const { invoice, amount } = params;
  if (typeof invoice !== 'string' || invoice.length === 0) throw new Nip47Refusal('OTHER', 'invalid_request: pay_invoice needs params.invoice (a BOLT 11 invoice).');
  if (amount !== undefined && (typeof amount !== 'number' || !Number.isSafeInteger(amount) || amount <= 0)) throw new Nip47Refusal('OTHER', 'invalid_request: params.amount must be a positive whole number of msat.');
  return { invoice, ...(amount !== undefined ? { amountMsat: BigInt(amount) } : {}) };
}

function idempotencyKeyOf(envelope: SignedNostrEvent): string {
  return `nwc:${envelope.id}`;
}

/** The request's NIP-47 `expiration` tag (unix seconds, the client's wall clock), if it has a usable one. */
function expirationOf(envelope: SignedNostrEvent): number | undefined {
  const expiration = Number(envelope.tags.find((t) => t[0] === 'expiration')?.[1]);
  return Number.isFinite(expiration) ? expiration : undefined;
}

/**
 * How long an approval opened for this request may stay open: until its `expiration` (NIP-47: the wallet must not
 * act on it after that). Found by review: held with the usual approval lifetime, it could be approved and paid an
 * hour after its client, told `approval_required`, had stopped waiting and perhaps paid elsewhere. A lifetime from
 * now, as the tag is read on receipt: the tag is the client's wall clock, the approval the daemon's clock.
 */
function approvalLifetimeOf(envelope: SignedNostrEvent): { approvalLifetimeMs?: number } {
  const expiration = expirationOf(envelope);
  return expiration === undefined ? {} : { approvalLifetimeMs: Math.max(0, Math.floor(expiration * 1000 - Date.now())) };
}
