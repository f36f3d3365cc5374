import { hexToBytes, bytesToHex } from '@noble/hashes/utils.js';
import { AirlockError } from '../errors.ts';
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
    return this.signing.sign(auth, event?.kind === NIP98_KIND ? 'nostr.http_auth' : 'nostr.event', event, idempotencyKey);
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
   * key is computed inside the key backend and zeroed once used.
   */
  private async withPeer(auth: AgentAuth, scheme: 'nip44' | 'nip04', op: 'encrypt' | 'decrypt', peer: string, text: string): Promise<{ out: string; auditSeq: number }> {
    const action = `nostr.${scheme}`;
    const { auditSeq, path } = await this.signing.authorize(auth, action, { op, peer, text }, action);
    const { keys } = this.deps;
    const key = scheme === 'nip44' ? await keys.nip44ConversationKey(path, peerBytes(peer)) : await keys.nip04SharedSecret(path, peerBytes(peer));
    try {
      const cipher = scheme === 'nip44' ? { encrypt: this.nostr.nip44Encrypt, decrypt: this.nostr.nip44Decrypt } : { encrypt: this.nostr.nip04Encrypt, decrypt: this.nostr.nip04Decrypt };
      return { out: op === 'encrypt' ? cipher.encrypt(text, key) : cipher.decrypt(text, key), auditSeq };
    } finally {
      key.fill(0);
    }
  }
}

function peerBytes(peer: string): Uint8Array {
  const hex = typeof peer === 'string' ? peer.toLowerCase() : '';
  if (!HEX32.test(hex)) throw new AirlockError('invalid_request', 'peer: a 32-byte x-only public key as 64 hex characters');
  return hexToBytes(hex);
}
