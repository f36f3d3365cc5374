// Nostr for agents: identity, event signing (NIP-01, NIP-98) through the one signing path, NIP-44 under policy.
import type { AirlockHolder } from './holder.ts';
import type { RouteSpec } from './route-table.ts';
import { agentOf, IDEMPOTENCY_KEY_HEADER, idempotencyKeyOf } from './request-context.ts';
import * as S from './schemas.ts';

export function buildNostrRoutes(holder: AirlockHolder): RouteSpec[] {
  const A = () => holder.get();
  // As the EVM signing routes: 403 a policy denial, 202 held for approval, 409 an Idempotency-Key conflict.
  const signing = { auth: 'agent', headers: [IDEMPOTENCY_KEY_HEADER], responses: { 200: S.SignResponse, 202: S.PendingApprovalResponse, 403: S.PolicyDeniedResponse }, errors: [409], rechecksCredentials: true } as const;
  return [
    {
      method: 'get', path: '/v1/nostr/identity', operationId: 'getNostrIdentity', summary: "The agent's Nostr identity (NIP-06 key, x-only pubkey and npub)", tag: 'nostr', auth: 'agent',
      responses: { 200: S.NostrIdentityResponse },
      handler: async (c) => c.json(await A().nostr.identity(agentOf(c).agent)),
    },
    {
      method: 'post', path: '/v1/sign/nostr-event', operationId: 'signNostrEvent', summary: 'Sign a Nostr event (NIP-01) under policy', tag: 'nostr', ...signing, body: S.UnsignedNostrEventRequest,
      handler: async (c, { body }) => {
        const out = await A().signing.sign(agentOf(c), 'nostr.event', body, idempotencyKeyOf(c));
        return c.json(out.body, out.status);
      },
    },
    {
      method: 'post', path: '/v1/sign/nostr-http-auth', operationId: 'signNostrHttpAuth', summary: 'Sign a NIP-98 HTTP auth event (kind 27235) under policy', tag: 'nostr', ...signing, body: S.UnsignedNostrEventRequest,
      handler: async (c, { body }) => {
        const out = await A().signing.sign(agentOf(c), 'nostr.http_auth', body, idempotencyKeyOf(c));
        return c.json(out.body, out.status);
      },
    },
    {
      method: 'post', path: '/v1/nostr/nip44/encrypt', operationId: 'nip44Encrypt', summary: 'NIP-44 v2 encrypt to a peer (policy: allowed peers; audited without the plaintext)', tag: 'nostr', auth: 'agent', rechecksCredentials: true,
      body: S.Nip44EncryptRequest, responses: { 200: S.Nip44EncryptResponse }, errors: [403],
      handler: async (c, { body }) => {
        const b = body as { peer: string; plaintext: string };
        return c.json(await A().nostr.nip44Encrypt(agentOf(c), b.peer, b.plaintext));
      },
    },
    {
      method: 'post', path: '/v1/nostr/nip44/decrypt', operationId: 'nip44Decrypt', summary: 'NIP-44 v2 decrypt from a peer (policy: allowed peers; audited without the plaintext)', tag: 'nostr', auth: 'agent', rechecksCredentials: true,
      body: S.Nip44DecryptRequest, responses: { 200: S.Nip44DecryptResponse }, errors: [403],
      handler: async (c, { body }) => {
        const b = body as { peer: string; ciphertext: string };
        return c.json(await A().nostr.nip44Decrypt(agentOf(c), b.peer, b.ciphertext));
      },
    },
  ];
}
