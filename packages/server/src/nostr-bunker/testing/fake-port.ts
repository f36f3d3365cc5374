/**
 * TEMPORARY test double of the Nostr service port (port.ts), for the bunker tests until the real
 * `airlock.nostr` (packages/core/src/service/nostr-service.ts) lands. Keys are random per agent (nostr-tools),
 * not derived from the vault; "policy" is a list of allowed kinds and the session scope's `nostr.*` actions;
 * nothing is audited or charged. It keeps the contract's observable behaviour: refusals throw
 * AirlockError('policy_denied') with violations naming a rule and a code, and signatures are checked before
 * release. At merge the tests get the real port and this file is deleted.
 */
import { AirlockError, type AgentAuth, type SignOutcome } from '@airlock/core';
import { finalizeEvent, generateSecretKey, getPublicKey, nip19, nip44, verifyEvent } from 'nostr-tools';
import type { NostrIdentity, NostrServicePort, NostrTransport, SignedNostrEvent, UnsignedNostrEvent } from '../port.ts';

interface AgentKeys {
  identity: Uint8Array;
  transport: Uint8Array;
}

export class FakeNostrPort implements NostrServicePort {
  /** Kinds the fake policy allows (everything else: `agent/nostr-kinds` `kind_not_allowed`). */
  allowedKinds = new Set([1, 7]);
  /** Events released so far: what a test counts to prove nothing else was signed. */
  readonly signed: SignedNostrEvent[] = [];
  private readonly keys = new Map<string, AgentKeys>();

  private keysOf(agentId: string): AgentKeys {
    let k = this.keys.get(agentId);
    if (!k) this.keys.set(agentId, (k = { identity: generateSecretKey(), transport: generateSecretKey() }));
    return k;
  }

  async identity(agentId: string): Promise<NostrIdentity> {
    const pubkey = getPublicKey(this.keysOf(agentId).identity);
    return { agentId, pubkey, npub: nip19.npubEncode(pubkey) };
  }

  async transport(agentId: string): Promise<NostrTransport> {
    const secret = this.keysOf(agentId).transport;
    return {
      pubkey: getPublicKey(secret),
      async signEnvelope(event: UnsignedNostrEvent) {
        if (event.kind !== 24133) throw new AirlockError('invalid_request', 'The transport key signs NIP-46 envelopes (kind 24133) only.');
        return finalizeEvent({ kind: event.kind, tags: event.tags, content: event.content, created_at: event.created_at }, secret);
      },
      async nip44Encrypt(peer: string, plaintext: string) {
        return nip44.encrypt(plaintext, nip44.getConversationKey(secret, peer));
      },
      async nip44Decrypt(peer: string, payload: string) {
        return nip44.decrypt(payload, nip44.getConversationKey(secret, peer));
      },
    };
  }

  async signEvent(auth: AgentAuth, event: UnsignedNostrEvent): Promise<SignOutcome> {
    requireAction(auth, 'nostr.event');
    if (!this.allowedKinds.has(event.kind)) {
      throw new AirlockError('policy_denied', `Denied by agent/nostr-kinds: kind ${event.kind} is not allowed.`, {
        violations: [{ rule: 'agent/nostr-kinds', code: 'kind_not_allowed' as never, message: `kind ${event.kind} is not allowed` }],
      });
    }
    const signed = finalizeEvent({ kind: event.kind, tags: event.tags, content: event.content, created_at: event.created_at }, this.keysOf(auth.agent.id).identity);
    if (!verifyEvent(signed)) throw new AirlockError('signature_check_failed');
    this.signed.push(signed);
    return { status: 200, body: { decision: 'allow', event: signed, auditSeq: 0 } };
  }

  async nip44Encrypt(auth: AgentAuth, peerPubkey: string, plaintext: string) {
    requireAction(auth, 'nostr.nip44');
    return { ciphertext: nip44.encrypt(plaintext, nip44.getConversationKey(this.keysOf(auth.agent.id).identity, peerPubkey)), auditSeq: 0 };
  }

  async nip44Decrypt(auth: AgentAuth, peerPubkey: string, ciphertext: string) {
    requireAction(auth, 'nostr.nip44');
    return { plaintext: nip44.decrypt(ciphertext, nip44.getConversationKey(this.keysOf(auth.agent.id).identity, peerPubkey)), auditSeq: 0 };
  }
}

function requireAction(auth: AgentAuth, action: string): void {
  if ((auth.session.scope.actions as readonly string[]).includes(action)) return;
  throw new AirlockError('policy_denied', `This session may not use ${action}.`, { violations: [{ rule: 'session/scope', code: 'action_not_allowed', message: `${action} is not in the session scope` }] });
}
