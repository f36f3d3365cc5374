import type { Context } from 'hono';
import type { z } from 'zod';
import { decodePaymentRequiredHeader, decodePaymentResponseHeader } from '@x402/core/http';
import { AirlockError, checkJsonShape, checkWellFormedStrings, readPaymentRequired, type PaymentRecord, type PaymentRequired, type PaymentState } from '@airlock/core';
import type { AirlockHolder } from './holder.ts';
import type { RouteSpec } from './route-table.ts';
import { agentOf, IDEMPOTENCY_KEY_HEADER, idempotencyKeyOf } from './request-context.ts';
import * as S from './schemas.ts';

const iso = (ms: number) => new Date(ms).toISOString();

export function paymentJson(p: PaymentRecord): z.output<typeof S.PaymentSchema> {
  const { value, createdAt, updatedAt, asset, settledValue, ...rest } = p;
  return {
    ...rest, asset: `${p.network}/erc20:${asset}`, token: asset, value: value.toString(), createdAt: iso(createdAt), updatedAt: iso(updatedAt),
    ...(settledValue !== undefined ? { settledValue: settledValue.toString() } : {}),
  };
}

/**
 * Base64 headers are decoded with @x402/core's own helpers: what the reference client reads, Airlock
 * reads. The JSON inside is as untrusted as a body, so it gets the body's key and depth checks.
 */
function decodeHeader<T>(decode: (v: string) => T, value: string, name: string): T {
  let decoded: T;
  try {
    decoded = decode(value);
  } catch {
    throw new AirlockError('invalid_request', `${name} is not base64-encoded JSON.`);
  }
  checkJsonShape(decoded, { subject: `The ${name} header` });
  // As a body is (parseUntrustedJson): a lone surrogate has no UTF-8 form; PostgreSQL's jsonb refused a held
  // payment's requirement with a 500 (found by review).
  checkWellFormedStrings(decoded, `The ${name} header`);
  return decoded;
}

function paymentRequiredOf(body: S.X402PayInput): PaymentRequired {
  if (body.paymentRequired !== undefined) return readPaymentRequired(decodeHeader(decodePaymentRequiredHeader, body.paymentRequired, 'paymentRequired'), 'header');
  if (body.body !== undefined) return readPaymentRequired(body.body, 'body');
  return readPaymentRequired({ x402Version: body.x402Version, accepts: body.accepts, ...(body.resourceInfo ? { resource: body.resourceInfo } : {}), ...(body.extensions ? { extensions: body.extensions } : {}) }, 'accepts');
}

export function buildX402Routes(holder: AirlockHolder): RouteSpec[] {
  const A = () => holder.get();
  const agentIdOf = async (nameOrId: string | undefined) => (nameOrId ? (await A().operator.getAgent(nameOrId)).id : undefined);
  return [
    {
      method: 'post', path: '/v1/x402/pay', operationId: 'payX402', summary: 'Pay for an x402 resource: pick the first requirement policy allows, sign it, return the header to send', tag: 'x402', auth: 'agent', body: S.X402PayRequest,
      headers: [IDEMPOTENCY_KEY_HEADER], responses: { 200: S.X402PayResponse, 202: S.X402PendingApprovalResponse, 403: S.X402DeniedResponse }, errors: [409],
      handler: async (c: Context, { body }) => {
        const b = body as S.X402PayInput;
        const out = await A().x402.pay(agentOf(c), b.resource, paymentRequiredOf(b), idempotencyKeyOf(c));
        return c.json(out.body, out.status);
      },
    },
    {
      method: 'post', path: '/v1/x402/settlement', operationId: 'reportX402Settlement', summary: "Report the server's PAYMENT-RESPONSE: links the settlement transaction to the payment (audited)", tag: 'x402', auth: 'agent', body: S.X402SettlementRequest,
      responses: { 200: S.X402SettlementResponse }, errors: [404],
      handler: async (c, { body }) => {
        const b = body as { paymentId?: string; nonce?: string; paymentResponse: string };
        const response = decodeHeader(decodePaymentResponseHeader, b.paymentResponse, 'paymentResponse') as unknown;
        if (typeof response !== 'object' || response === null) throw new AirlockError('invalid_request', 'paymentResponse is not a JSON object.');
        return c.json(await A().x402.reportSettlement(agentOf(c), { ...(b.paymentId ? { paymentId: b.paymentId } : {}), ...(b.nonce ? { nonce: b.nonce } : {}), response: response as Record<string, unknown> }));
      },
    },
    {
      method: 'get', path: '/v1/x402/payments', operationId: 'listX402Payments', summary: 'Payment records (newest first)', tag: 'x402', auth: 'admin', query: S.ListPaymentsParams,
      responses: { 200: S.PaymentListResponse }, errors: [404],
      handler: async (c, { query }) => {
        const q = query as { agent?: string; state?: PaymentState; limit?: number };
        const agentId = await agentIdOf(q.agent);
        const payments = await A().store.listPayments({ ...(agentId ? { agentId } : {}), ...(q.state ? { state: q.state } : {}), limit: q.limit ?? 100 });
        return c.json({ payments: payments.map(paymentJson) });
      },
    },
    {
      method: 'get', path: '/v1/x402/summary', operationId: 'getX402Summary', summary: 'Reserved / settled / released totals per agent, per resource origin and asset', tag: 'x402', auth: 'admin', query: S.PaymentSummaryParams,
      responses: { 200: S.PaymentSummaryResponse }, errors: [404],
      handler: async (c, { query }) => {
        const agentId = await agentIdOf((query as { agent?: string }).agent);
        const rows = await A().store.paymentSummary(agentId ? { agentId } : {});
        const names = new Map<string, string>();
        for (const id of new Set(rows.map((r) => r.agentId))) {
          const agent = await A().store.getAgent(id);
          if (agent) names.set(id, agent.name);
        }
        const byAgent = new Map<string, { agentId: string; agentName?: string; asset: string; reserved: bigint; settled: bigint; released: bigint; count: number }>();
        for (const r of rows) {
          const key = `${r.agentId}\u0000${r.asset}`;
          const name = names.get(r.agentId);
          let t = byAgent.get(key);
          if (!t) byAgent.set(key, (t = { agentId: r.agentId, ...(name ? { agentName: name } : {}), asset: r.asset, reserved: 0n, settled: 0n, released: 0n, count: 0 }));
          t.reserved += r.reserved;
          t.settled += r.settled;
          t.released += r.released;
          t.count += r.count;
        }
        const str = <T extends { reserved: bigint; settled: bigint; released: bigint }>(t: T) => ({ ...t, reserved: t.reserved.toString(), settled: t.settled.toString(), released: t.released.toString() });
        return c.json({
          rows: rows.map((r) => {
            const name = names.get(r.agentId);
            return str({ ...r, ...(name ? { agentName: name } : {}) });
          }),
          agents: [...byAgent.values()].map(str),
        });
      },
    },
    {
      method: 'post', path: '/v1/x402/reconcile', operationId: 'reconcileX402Payments', summary: 'Run the payment reconciler now (settled on chain / expired unused / assumed settled without RPC)', tag: 'x402', auth: 'admin',
      responses: { 200: S.ReconcileResponse },
      handler: async (c) => c.json(await A().x402.reconcile()),
    },
  ];
}
