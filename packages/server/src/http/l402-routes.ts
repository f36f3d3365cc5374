// L402 for agents: pay the invoice of a challenge under policy and get the credential back, and reuse one
// already bought for the same origin (docs/lightning.md).
import { AirlockError, canonicalJson, normaliseResource, requestHash } from '@airlock/core';
import { decodeL402Macaroon, l402Expiry, parseL402Challenge } from '@airlock/chains';
import type { z } from 'zod';
import type { AirlockHolder } from './holder.ts';
import type { RouteSpec } from './route-table.ts';
import { agentOf, IDEMPOTENCY_KEY_HEADER, idempotencyKeyOf } from './request-context.ts';
import * as L from './lightning-schemas.ts';
import * as S from './schemas.ts';

export function buildL402Routes(holder: AirlockHolder): RouteSpec[] {
  const A = () => holder.get();
  return [
    {
      method: 'post', path: '/v1/l402/pay', operationId: 'payL402', summary: "Pay an L402 challenge's invoice under policy; returns the Authorization value (`L402 <macaroon>:<preimage>`)", tag: 'lightning', auth: 'agent', rechecksCredentials: true,
      body: L.L402PayRequest, headers: [IDEMPOTENCY_KEY_HEADER], responses: { 200: L.LightningPaymentResponse, 202: L.LightningAcceptedResponse, 403: S.PolicyDeniedResponse }, errors: [409, 502],
      handler: async (c, { body }) => {
        const b = body as z.output<typeof L.L402PayRequest>;
        const auth = agentOf(c);
        const airlock = A();
        const now = airlock.deps.clock.now();
        let l402;
        let invoice: string;
        try {
          if (!normaliseResource(b.url)) throw new AirlockError('invalid_request', 'url must be an absolute http(s) URL without credentials.');
          const challenge = parseL402Challenge(b.challenge);
          const macaroon = decodeL402Macaroon(challenge.macaroon);
          const expiresAtMs = l402Expiry(macaroon.caveats, now);
          // A credential whose caveats already lapsed buys nothing: the server would refuse it.
          if (expiresAtMs !== undefined && expiresAtMs <= now) throw new AirlockError('l402_token_expired', "The challenge's macaroon has already expired (a *_valid_until caveat); nothing was paid.");
          invoice = challenge.invoice;
          l402 = { resource: b.url, scheme: challenge.scheme, macaroon: challenge.macaroon, macaroonPaymentHash: macaroon.identifier.paymentHash, ...(expiresAtMs !== undefined ? { expiresAt: Math.floor(expiresAtMs / 1000) } : {}) };
        } catch (e) {
          // Refused before the payment path: recorded like any refusal that reached the signer (never the header itself).
          await airlock.signing.auditRefusal(auth, 'lightning.pay', requestHash('lightning.pay', { url: b.url, challenge: b.challenge }, canonicalJson), e, now);
          throw e;
        }
        const out = await airlock.lightning.pay(auth, { invoice, ...(b.maxFeeMsat !== undefined ? { maxFeeMsat: b.maxFeeMsat } : {}), l402 }, idempotencyKeyOf(c));
        return c.json(out.body, out.status);
      },
    },
    {
      method: 'get', path: '/v1/l402/token', operationId: 'getL402Token', summary: 'The credential this agent already bought for `url` (else for its origin), while its caveats are valid (the token cache)', tag: 'lightning', auth: 'agent',
      query: L.L402TokenParams, responses: { 200: L.L402TokenResponse }, errors: [404],
      handler: async (c, { query }) => {
        const url = (query as { url: string }).url;
        const resource = normaliseResource(url);
        if (!resource) throw new AirlockError('invalid_request', 'url must be an absolute http(s) URL without credentials.');
        const airlock = A();
        const token = await airlock.store.findL402Token(agentOf(c).agent.id, resource.origin, Math.floor(airlock.deps.clock.now() / 1000), resource.resource);
        if (!token || !token.l402 || token.preimage === undefined) throw new AirlockError('not_found', 'No valid L402 credential for this origin.');
        return c.json({
          authorization: `${token.l402.scheme} ${token.l402.macaroon}:${token.preimage}`,
          paymentId: token.id,
          origin: resource.origin,
          ...(token.l402.expiresAt !== undefined ? { expiresAt: token.l402.expiresAt } : {}),
        });
      },
    },
  ];
}
