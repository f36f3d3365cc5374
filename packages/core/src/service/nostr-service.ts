import { hexToBytes, bytesToHex } from '@noble/hashes/utils.js';
import { AirlockError, isAirlockError } from '../errors.ts';
import type { ChainAdapter } from '../ports/chain-adapter.ts';
import type { Agent } from '../ports/store.ts';
import type { ServiceDeps } from './deps.ts';
import type { AgentAuth, SignOutcome, SigningService } from './signing-service.ts';

export interface UnsignedNostrEvent { kind: number; tags: string[][]; content: string; created_at: number; pubkey?: string }
export interface SignedNostrEvent { id: string; pubkey: string; created_at: number; kind: number; tags: string[][]; content: string; sig: string }
export interface NostrIdentity { agentId: string; pubkey: string /* x-only, hex */; npub: string }
export interface NostrTransport {
  /** x-only hex pubkey of the agent's NIP-46 transport key (m/44'/1237'/{account}'/1/0: never the identity). */
  pubkey: string;
  /** Signs a kind-24133 NIP-46 envelope only (refuses any other kind); not an agent signature, not charged. */
  signEnvelope(event: UnsignedNostrEvent): Promise<SignedNostrEvent>;
  nip44Encrypt(peerPubkey: string, plaintext: string): Promise<string>;
  nip44Decrypt(peerPubkey: string, payload: string): Promise<string>;
}
export interface NostrServicePort {
  /** By id, or from the agent record a caller already holds (no store read). */
  identity(agent: string | Agent): Promise<NostrIdentity>;
  transport(agentId: string): Promise<NostrTransport>;
  /** Policy -> rate/budget -> audit (event id in the entry) -> Schnorr signature, verified before release.
   *  200 body: { decision: 'allow', event: SignedNostrEvent, auditSeq, receipt? }; 202: approval pending (approvalId);
   *  refusals throw AirlockError('policy_denied', ..., { violations }) like the EVM signing path. */
  signEvent(auth: AgentAuth, event: UnsignedNostrEvent, idempotencyKey?: string): Promise<SignOutcome>;
  /** Keeps under `idempotencyKey` that `event` was answered with approval `approvalId`'s signature (a retry re-releases it). */
  rememberApprovedEvent(auth: AgentAuth, event: UnsignedNostrEvent, idempotencyKey: string, approvalId: string): Promise<boolean>;
  /** Under policy (which counterparties), audited. Throw AirlockError('policy_denied') with violations when refused. */
  nip44Encrypt(auth: AgentAuth, peerPubkey: string, plaintext: string): Promise<{ ciphertext: string; auditSeq: number }>;
  nip44Decrypt(auth: AgentAuth, peerPubkey: string, ciphertext: string): Promise<{ plaintext: string; auditSeq: number }>;
  /** NIP-04 (deprecated): only where a rule names the `nostr.nip04` action (default deny), audited like NIP-44. */
  nip04Encrypt(auth: AgentAuth, peerPubkey: string, plaintext: string): Promise<{ ciphertext: string; auditSeq: number }>;
  nip04Decrypt(auth: AgentAuth, peerPubkey: string, ciphertext: string): Promise<{ plaintext: string; auditSeq: number }>;
}

/**
 * The Nostr encodings and ciphers the service needs, implemented in @airlock/chains (nostr/) and handed in by
 * the composition root: core stays free of protocol code and of a dependency on chains.
 */
export interface NostrPrimitives {
  /** NIP-46 transport key path of an account (m/44'/1237'/{account}'/1/0). */
  transportPath(accountIndex: number): string;
  /** NIP-19 npub of an x-only hex pubkey. */
  npub(pubkeyHex: string): string;
  /** Validates an unsigned event (fail closed) and fills in `pubkey`. */
  parseUnsignedEvent(payload: unknown, pubkey: string): Required<UnsignedNostrEvent>;
  /** NIP-01 event id (sha256 of the serialisation). */
  eventId(event: Required<UnsignedNostrEvent>): string;
  nip44Encrypt(plaintext: string, conversationKey: Uint8Array): string;
  nip44Decrypt(payload: string, conversationKey: Uint8Array): string;
  nip04Encrypt(plaintext: string, sharedX: Uint8Array): string;
  nip04Decrypt(payload: string, sharedX: Uint8Array): string;
}

/** NIP-46 remote-signing envelopes. */
const NIP46_KIND = 24133;
const NIP98_KIND = 27235;
const HEX32 = /^[0-9a-f]{64}$/;

/**
 * Nostr for agents (`airlock.nostr`): identities derived per agent, events signed through the one signing path
 * (SigningService.sign with the nostr adapter), NIP-44 under policy and audited. No key leaves the key backend:
 * signatures and ECDH conversation keys are computed there.
 */
export class NostrService implements NostrServicePort {
  private readonly deps: ServiceDeps;
  private readonly signing: SigningService;
  private readonly nostr: NostrPrimitives;

  constructor(deps: ServiceDeps, signing: SigningService, primitives: NostrPrimitives) {
    this.deps = deps;
    this.signing = signing;
    this.nostr = primitives;
  }

  private adapter(): ChainAdapter {
    const adapter = this.deps.adapters.get('nostr');
    if (!adapter) throw new AirlockError('unsupported_action', 'No nostr adapter is configured.');
    return adapter;
  }

  async identity(agentOrId: string | Agent): Promise<NostrIdentity> {
    const agent = typeof agentOrId === 'string' ? await this.deps.store.getAgent(agentOrId) : agentOrId;
    if (!agent) throw new AirlockError('not_found', 'No such agent.');
    const { address: pubkey } = await this.signing.signerFor(this.adapter(), agent);
    return { agentId: agent.id, pubkey, npub: this.nostr.npub(pubkey) };
  }

  /** The NIP-46 transport key of an agent, for the bunker: kind 24133 envelopes and their NIP-44 only. */
  async transport(agentId: string): Promise<NostrTransport> {
    const agent = await this.deps.store.getAgent(agentId);
    if (!agent) throw new AirlockError('not_found', 'No such agent.');
    const path = this.nostr.transportPath(agent.accountIndex);
    const pubkey = this.adapter().addressFromPublicKey(await this.deps.keys.getPublicKey(path));
    const { keys } = this.deps;
    const nostr = this.nostr;
    const conversationKey = (peer: string) => keys.nip44ConversationKey(path, peerBytes(peer));
    return {
      pubkey,
      async signEnvelope(event) {
        if (event?.kind !== NIP46_KIND) throw new AirlockError('invalid_request', 'the transport key signs kind 24133 (NIP-46) envelopes only');
        const unsigned = nostr.parseUnsignedEvent(event, pubkey);
        const id = nostr.eventId(unsigned);
        // The backend verifies its BIP-340 signature against this key before returning it.
        const sig = bytesToHex(await keys.signSchnorr(path, hexToBytes(id)));
        return { ...unsigned, id, sig };
      },
      async nip44Encrypt(peer, plaintext) {
        const key = await conversationKey(peer);
        try {
          return nostr.nip44Encrypt(plaintext, key);
        } finally {
          key.fill(0);
        }
      },
      async nip44Decrypt(peer, payload) {
        const key = await conversationKey(peer);
        try {
          return nostr.nip44Decrypt(payload, key);
        } finally {
          key.fill(0);
        }
      },
    };
  }

  /** NIP-98 events (kind 27235) go to `nostr.http_auth` and its rules; every other kind to `nostr.event`. */
  signEvent(auth: AgentAuth, event: UnsignedNostrEvent, idempotencyKey?: string): Promise<SignOutcome> {
    return this.signing.sign(auth, eventAction(event), event, idempotencyKey);
  }

  /**
   * The bunker hands out an approved event without `signEvent`: kept under the request's key as `signEvent` would.
   * False when the key answers otherwise (SigningService.rememberApprovedAnswer): the bunker then asks under the key.
   */
  rememberApprovedEvent(auth: AgentAuth, event: UnsignedNostrEvent, idempotencyKey: string, approvalId: string): Promise<boolean> {
    return this.signing.rememberApprovedAnswer(auth, eventAction(event), event, idempotencyKey, approvalId);
  }

  async nip44Encrypt(auth: AgentAuth, peerPubkey: string, plaintext: string): Promise<{ ciphertext: string; auditSeq: number }> {
    const { out, auditSeq } = await this.withPeer(auth, 'nip44', 'encrypt', peerPubkey, plaintext);
    return { ciphertext: out, auditSeq };
  }

  async nip44Decrypt(auth: AgentAuth, peerPubkey: string, ciphertext: string): Promise<{ plaintext: string; auditSeq: number }> {
    const { out, auditSeq } = await this.withPeer(auth, 'nip44', 'decrypt', peerPubkey, ciphertext);
    return { plaintext: out, auditSeq };
  }

  async nip04Encrypt(auth: AgentAuth, peerPubkey: string, plaintext: string): Promise<{ ciphertext: string; auditSeq: number }> {
    const { out, auditSeq } = await this.withPeer(auth, 'nip04', 'encrypt', peerPubkey, plaintext);
    return { ciphertext: out, auditSeq };
  }

  async nip04Decrypt(auth: AgentAuth, peerPubkey: string, ciphertext: string): Promise<{ plaintext: string; auditSeq: number }> {
    const { out, auditSeq } = await this.withPeer(auth, 'nip04', 'decrypt', peerPubkey, ciphertext);
    return { plaintext: out, auditSeq };
  }

  /**
   * NIP-44 or NIP-04 with a peer: authorized like a signature (session scope, policy, audit entry), then the
   * key is computed inside the key backend and zeroed once used. A decrypt's payload is opened before it is
   * charged (`openBeforeCharge`); its plaintext is released only once the allow entry and the charge are committed.
   */
  private async withPeer(auth: AgentAuth, scheme: 'nip44' | 'nip04', op: 'encrypt' | 'decrypt', peer: string, text: string): Promise<{ out: string; auditSeq: number }> {
    const action = `nostr.${scheme}`;
    const opened = op === 'decrypt' ? await this.openBeforeCharge(auth, scheme, peer, text) : undefined;
    const { auditSeq, path } = await this.signing.authorize(auth, action, { op, peer, text }, action);
    if (opened !== undefined) return { out: opened, auditSeq };
    const key = await this.sharedKey(scheme, path, peer);
    try {
      const cipher = this.cipher(scheme);
      return { out: op === 'encrypt' ? cipher.encrypt(text, key) : cipher.decrypt(text, key), auditSeq };
    } finally {
      key.fill(0);
    }
  }

  /**
   * Found by review: a decrypt was authorized, audited `allow` and charged to the rate limit before its payload was
   * authenticated, so junk anyone can put in front of the agent (a forged NIP-17 gift wrap) used up its
   * `nostr.nip44` limit, and the log showed decryptions that never happened. A payload is now opened (NIP-44: MAC,
   * padding, UTF-8; NIP-04: padding, UTF-8) before the charge: one that does not open is refused `400
   * invalid_request` with an `error` entry (`sign.request`, the key was used) and nothing charged. Only a request
   * policy would allow (a dry run, which writes nothing) is opened, so one it refuses never learns whether a payload
   * authenticates with a peer. Undefined (not opened here) when the credential is no longer usable, policy would
   * refuse it or a threshold cluster holds the key: `authorize` then refuses it and records why.
   */
  private async openBeforeCharge(auth: AgentAuth, scheme: 'nip44' | 'nip04', peer: string, payload: string): Promise<string | undefined> {
    const action = `nostr.${scheme}`;
    const adapter = this.adapter();
    if (await this.deps.store.getThresholdBinding(auth.agent.id, adapter.namespace)) return undefined;
    // Found by review: the dry run judges the credential as this instance cached it, so an agent frozen (a session
    // revoked, a key rotated) through another instance had its key open payloads here, and a forged one was told
    // `invalid_request` where a genuine one was told `agent_frozen`. The agent and session are read again first,
    // as `authorize` reads them; a stale one is left to `authorize`, which refuses it, audits it and drops the cache.
    const now = this.deps.clock.now();
    if ((await this.deps.store.transaction((tx) => this.signing.recheck(tx, auth, now), { affinity: auth.agent.id })).error) return undefined;
    const dry = await this.signing.dryRun(auth, action, { op: 'decrypt', peer, text: payload });
    if (dry.decision.decision !== 'allow') return undefined;
    const key = await this.sharedKey(scheme, adapter.derivationPath(auth.agent.accountIndex, auth.agent.keyIndex), peer);
    try {
      return this.cipher(scheme).decrypt(payload, key);
    } catch (e) {
      if (isAirlockError(e)) await this.signing.auditRefusal(auth, action, dry.digest, e, this.deps.clock.now());
      throw e;
    } finally {
      key.fill(0);
    }
  }

  /** NIP-44's conversation key or NIP-04's shared x with a peer, computed in the key backend; the caller zeroes it. */
  private sharedKey(scheme: 'nip44' | 'nip04', path: string, peer: string): Promise<Uint8Array> {
    const { keys } = this.deps;
    return scheme === 'nip44' ? keys.nip44ConversationKey(path, peerBytes(peer)) : keys.nip04SharedSecret(path, peerBytes(peer));
  }

  private cipher(scheme: 'nip44' | 'nip04'): { encrypt(text: string, key: Uint8Array): string; decrypt(payload: string, key: Uint8Array): string } {
    return scheme === 'nip44' ? { encrypt: this.nostr.nip44Encrypt, decrypt: this.nostr.nip44Decrypt } : { encrypt: this.nostr.nip04Encrypt, decrypt: this.nostr.nip04Decrypt };
  }
}

/** NIP-98 events (kind 27235) go to `nostr.http_auth` and its rules; every other kind to `nostr.event`. */
function eventAction(event: UnsignedNostrEvent): string {
  return event?.kind === NIP98_KIND ? 'nostr.http_auth' : 'nostr.event';
}

function peerBytes(peer: string): Uint8Array {
  const hex = typeof peer === 'string' ? peer.toLowerCase() : '';
  if (!HEX32.test(hex)) throw new AirlockError('invalid_request', 'peer: a 32-byte x-only public key as 64 hex characters');
  return hexToBytes(hex);
}
