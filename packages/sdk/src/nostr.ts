// A Nostr signer whose key lives in Airlock: the shape nostr clients take (NIP-07's `window.nostr`,
// nostr-tools' `Signer`), backed by the HTTP API and the agent's session token. Every event goes through
// Airlock's policy, and every event Airlock returns is checked here (id, pubkey, BIP-340 signature, and
// that it is the event asked for) before the caller sees it.
import { schnorr } from '@noble/curves/secp256k1.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, hexToBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import { AirlockApiError, createAirlockHttp, type AirlockHttpOptions } from './http.ts';
import { signWithRetry, type SignAnswer } from './sign-request.ts';

/** An unsigned event as NIP-01 defines it (nostr-tools' `EventTemplate`). */
export interface NostrEventTemplate {
  kind: number;
  tags: string[][];
  content: string;
  created_at: number;
}

/** A signed event, verified by the signer before it was returned (nostr-tools' `VerifiedEvent` fields). */
export interface SignedNostrEvent extends NostrEventTemplate {
  id: string;
  pubkey: string;
  sig: string;
}

export interface AirlockNostrSignerOptions extends AirlockHttpOptions {
  /**
   * When an event needs human approval: wait up to this many ms for the decision (polling), then return the
   * signed event. Default 0: throw AirlockApprovalRequiredError at once.
   */
  approvalWaitMs?: number;
}

export interface AirlockNostrSigner {
  /** The agent's x-only public key, hex (NIP-01). */
  getPublicKey(): Promise<string>;
  /** The same key as NIP-19 `npub1…`. */
  readonly npub: string;
  /**
   * Signs an event under policy. NIP-98 HTTP auth events (kind 27235) go to Airlock's NIP-98 route, so
   * nostr-tools' `nip98.getToken(url, method, signer.signEvent)` works unchanged.
   * Throws AirlockPolicyError (with violations) on a refusal, AirlockApprovalRequiredError on a hold.
   */
  signEvent(template: NostrEventTemplate): Promise<SignedNostrEvent>;
  /** NIP-44 v2 with a peer (x-only hex pubkey); the conversation key never leaves Airlock. */
  nip44: {
    encrypt(peerPubkey: string, plaintext: string): Promise<string>;
    decrypt(peerPubkey: string, ciphertext: string): Promise<string>;
  };
}

/** NIP-98 HTTP auth (its own route, action `nostr.http_auth`, and its own policy rule). */
const HTTP_AUTH_KIND = 27235;

interface NostrSignBody extends Omit<SignAnswer, 'signature'> {
  signature: string;
  event: SignedNostrEvent;
}

/** The agent's Nostr identity from Airlock, then a signer for it. */
export async function airlockNostrSigner(options: AirlockNostrSignerOptions): Promise<AirlockNostrSigner> {
  const http = createAirlockHttp(options);
  const { body: identity } = await http.request<{ pubkey: string; npub: string }>('GET', '/v1/nostr/identity');
  const pubkey = identity.pubkey;
  return {
    npub: identity.npub,
    async getPublicKey() {
      return pubkey;
    },
    async signEvent(template) {
      const unsigned = { kind: template.kind, tags: template.tags, content: template.content, created_at: template.created_at };
      const path = unsigned.kind === HTTP_AUTH_KIND ? '/v1/sign/nostr-http-auth' : '/v1/sign/nostr-event';
      const out = await signWithRetry<NostrSignBody & SignAnswer>(http, path, unsigned, options.approvalWaitMs ?? 0);
      return checkedEvent(out.event, unsigned, pubkey);
    },
    nip44: {
      async encrypt(peer, plaintext) {
        return (await http.request<{ ciphertext: string }>('POST', '/v1/nostr/nip44/encrypt', { peer, plaintext })).body.ciphertext;
      },
      async decrypt(peer, ciphertext) {
        return (await http.request<{ plaintext: string }>('POST', '/v1/nostr/nip44/decrypt', { peer, ciphertext })).body.plaintext;
      },
    },
  };
}

/** NIP-01 event id: sha256 of the UTF-8 JSON array `[0, pubkey, created_at, kind, tags, content]`. */
export function nostrEventId(event: NostrEventTemplate & { pubkey: string }): string {
  return bytesToHex(sha256(utf8ToBytes(JSON.stringify([0, event.pubkey, event.created_at, event.kind, event.tags, event.content]))));
}

/** True when `event.id` is its NIP-01 id and `event.sig` a valid BIP-340 signature of it by `event.pubkey`. */
export function verifyNostrEvent(event: SignedNostrEvent): boolean {
  try {
    if (nostrEventId(event) !== event.id) return false;
    return schnorr.verify(hexToBytes(event.sig), hexToBytes(event.id), hexToBytes(event.pubkey));
  } catch {
    // Malformed hex or a point off the curve: not a valid event, never an exception for the caller.
    return false;
  }
}

/**
 * The event Airlock returned must be the one asked for, under this agent's key, with a valid signature:
 * a signer that hands back anything else (a different event, another key) is a fault, not a result.
 */
function checkedEvent(event: SignedNostrEvent | undefined, asked: NostrEventTemplate, pubkey: string): SignedNostrEvent {
  const same =
    event !== undefined &&
    event.pubkey === pubkey &&
    event.kind === asked.kind &&
    event.created_at === asked.created_at &&
    event.content === asked.content &&
    JSON.stringify(event.tags) === JSON.stringify(asked.tags);
  if (!same || !verifyNostrEvent(event)) {
    throw new AirlockApiError(200, 'invalid_response', 'Airlock returned a Nostr event that is not the one requested, or whose signature does not verify.');
  }
  return { kind: event.kind, tags: event.tags, content: event.content, created_at: event.created_at, pubkey: event.pubkey, id: event.id, sig: event.sig };
}
