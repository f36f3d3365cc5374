// Bitcoin for agents: PSBT signing and BIP-322 messages through the one signing path (docs/bitcoin.md).
import type { AirlockHolder } from './holder.ts';
import type { RouteSpec } from './route-table.ts';
import { agentOf, IDEMPOTENCY_KEY_HEADER, idempotencyKeyOf } from './request-context.ts';
import * as B from './bitcoin-schemas.ts';
import * as S from './schemas.ts';

export function buildBitcoinRoutes(holder: AirlockHolder): RouteSpec[] {
  const A = () => holder.get();
  // As the other signing routes: 403 a policy denial, 202 held for approval, 409 an Idempotency-Key conflict.
  const signing = { auth: 'agent', headers: [IDEMPOTENCY_KEY_HEADER], errors: [409], rechecksCredentials: true } as const;
  return [
    {
      method: 'post', path: '/v1/sign/psbt', operationId: 'signPsbt', summary: "Sign a PSBT's inputs that are the agent's, after every output, the change and the fee were checked against policy", tag: 'bitcoin', ...signing,
      body: B.SignPsbtRequest, responses: { 200: B.SignPsbtResponse, 202: S.PendingApprovalResponse, 403: S.PolicyDeniedResponse },
      handler: async (c, { body }) => {
        const out = await A().signing.sign(agentOf(c), 'bitcoin.psbt', body, idempotencyKeyOf(c));
        return c.json(out.body, out.status);
      },
    },
    {
      method: 'post', path: '/v1/sign/bitcoin-message', operationId: 'signBitcoinMessage', summary: 'Sign a BIP-322 message with one of the agent\'s addresses (denied unless a rule names the message)', tag: 'bitcoin', ...signing,
      body: B.SignBitcoinMessageRequest, responses: { 200: B.SignBitcoinMessageResponse, 202: S.PendingApprovalResponse, 403: S.PolicyDeniedResponse },
      handler: async (c, { body }) => {
        const out = await A().signing.sign(agentOf(c), 'bitcoin.message', body, idempotencyKeyOf(c));
        return c.json(out.body, out.status);
      },
    },
  ];
}
