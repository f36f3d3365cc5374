/**
 * The Nostr service port the bunker signs through: a verbatim copy of the contract in
 * packages/core/src/service/nostr-service.ts (written by the nostr-core work). TEMPORARY: at merge this file
 * becomes `export type { … } from '@airlock/core'` (or is deleted and the imports re-pointed), and the
 * runtime passes the real `airlock.nostr`.
 */
import type { AgentAuth, SignOutcome } from '@airlock/core';

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
  identity(agentId: string): Promise<NostrIdentity>;
  transport(agentId: string): Promise<NostrTransport>;
  /** Policy -> rate/budget -> audit (event id in the entry) -> Schnorr signature, verified before release.
   *  200 body: { decision: 'allow', event: SignedNostrEvent, auditSeq, receipt? }; 202: approval pending (approvalId);
   *  refusals throw AirlockError('policy_denied', ..., { violations }) like the EVM signing path. */
  signEvent(auth: AgentAuth, event: UnsignedNostrEvent, idempotencyKey?: string): Promise<SignOutcome>;
  /** Under policy (which counterparties), audited. Throw AirlockError('policy_denied') with violations when refused. */
  nip44Encrypt(auth: AgentAuth, peerPubkey: string, plaintext: string): Promise<{ ciphertext: string; auditSeq: number }>;
  nip44Decrypt(auth: AgentAuth, peerPubkey: string, ciphertext: string): Promise<{ plaintext: string; auditSeq: number }>;
}
