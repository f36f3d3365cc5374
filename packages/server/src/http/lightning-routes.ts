// Lightning payments for agents, and their records for operators (docs/lightning.md).
import type { z } from 'zod';
import type { LightningBackend, LightningPaymentRecord, LightningPaymentState } from '@airlock/core';
import type { AirlockHolder } from './holder.ts';
import type { RouteSpec } from './route-table.ts';
import { agentOf, IDEMPOTENCY_KEY_HEADER, idempotencyKeyOf } from './request-context.ts';
import * as L from './lightning-schemas.ts';
import * as S from './schemas.ts';

// Never throws: a time beyond what a Date holds (records stored before invoices' expiry was bounded) shows as the latest one.
const iso = (ms: number) => new Date(Number.isFinite(ms) ? Math.max(-8.64e15, Math.min(ms, 8.64e15)) : 8.64e15).toISOString();
/** How long `GET /v1/lightning/status` waits for the backend: an operator's command, not a payment (LND's own deadline is 15 s). */
const STATUS_PROBE_MS = 10_000;
// No preimage of it is known, so no node or wallet can hold a payment of this hash: a lookup answers "not found".
const UNPAYABLE_HASH = '0'.repeat(64);
// The code LightningBackendError carries (lnd-rest.ts): the backend gave no answer it can vouch for.
const UNAVAILABLE = 'lightning_backend_unavailable';

/** A payment as operators see it: no preimage and no macaroon (together they are an L402 credential). */
export function lightningPaymentJson(p: LightningPaymentRecord): z.output<typeof L.LightningPaymentRecordSchema> {
  return {
    id: p.id, agentId: p.agentId, sessionId: p.sessionId, auditSeq: p.auditSeq, backend: p.backend, network: p.network, paymentHash: p.paymentHash, payee: p.payee,
    amountMsat: p.amountMsat.toString(), maxFeeMsat: p.maxFeeMsat.toString(), state: p.state, expiresAt: iso(p.expiresAt * 1000), createdAt: iso(p.createdAt), updatedAt: iso(p.updatedAt),
    ...(p.feeMsat !== undefined ? { feeMsat: p.feeMsat.toString() } : {}),
    ...(p.failureReason !== undefined ? { failureReason: p.failureReason } : {}),
    ...(p.resource !== undefined ? { resource: p.resource } : {}),
    ...(p.origin !== undefined ? { origin: p.origin } : {}),
    ...(p.l402 ? { l402: { scheme: p.l402.scheme, ...(p.l402.expiresAt !== undefined ? { expiresAt: p.l402.expiresAt } : {}) } } : {}),
    ...(p.finishedSeq !== undefined ? { finishedSeq: p.finishedSeq } : {}),
  };
}

/**
 * Which backend is configured and whether it answers now. Its balance and a lookup of a hash nobody can have
 * paid are asked together: either answer shows the backend is there with a working credential (an NWC wallet
 * need not offer get_balance); when neither comes, the balance call's error says why (the backends' errors
 * carry no credential: lnd-rest.ts redacts the macaroon, NWC's never quote the connection string).
 */
export async function lightningStatus(backend: LightningBackend | undefined): Promise<z.output<typeof L.LightningStatusResponse>> {
  if (!backend) return { configured: false };
  const base = { configured: true, backend: backend.kind, network: backend.network, enforcesMaxFee: backend.enforcesMaxFee !== false };
  const [balance, lookup] = await Promise.allSettled([
    withDeadline(backend.balance ? backend.balance() : Promise.reject(new Error('no balance call')), STATUS_PROBE_MS),
    withDeadline(backend.lookup(UNPAYABLE_HASH), STATUS_PROBE_MS),
  ]);
  if (balance.status === 'fulfilled') return { ...base, reachable: true, balanceMsat: balance.value.msat.toString() };
  if (lookup.status === 'fulfilled') return { ...base, reachable: true };
  return { ...base, reachable: false, error: probeError(backend.balance ? balance.reason : lookup.reason) };
}

function withDeadline<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(Object.assign(new Error(`The backend did not answer within ${ms / 1000} s.`), { code: UNAVAILABLE })), ms);
  });
  promise.catch(() => undefined); // answered after the deadline: nobody is waiting
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/** A backend's error as the operator sees it: its stable code and message; anything else only as a code. */
function probeError(e: unknown): { code: string; message: string } {
  const code = (e as { code?: unknown })?.code;
  if (e instanceof Error && typeof code === 'string') return { code, message: e.message };
  return { code: UNAVAILABLE, message: 'The backend call failed.' };
}

export function buildLightningRoutes(holder: AirlockHolder): RouteSpec[] {
  const A = () => holder.get();
  return [
    {
      method: 'post', path: '/v1/lightning/pay', operationId: 'payLightningInvoice', summary: 'Pay a BOLT 11 invoice under policy: held, paid through the backend, charged what it cost', tag: 'lightning', auth: 'agent', rechecksCredentials: true,
      body: L.LightningPayRequest, headers: [IDEMPOTENCY_KEY_HEADER], responses: { 200: L.LightningPaymentResponse, 202: L.LightningAcceptedResponse, 403: S.PolicyDeniedResponse }, errors: [409, 502],
      handler: async (c, { body }) => {
        const out = await A().lightning.pay(agentOf(c), body as z.output<typeof L.LightningPayRequest>, idempotencyKeyOf(c));
        return c.json(out.body, out.status);
      },
    },
    {
      method: 'get', path: '/v1/lightning/payments/:id', operationId: 'getLightningPayment', summary: "One of the agent's Lightning payments (poll an in-flight one here)", tag: 'lightning', auth: 'agent',
      responses: { 200: L.LightningPaymentResponse, 202: L.LightningPaymentResponse }, errors: [404],
      handler: async (c) => {
        const out = await A().lightning.getPayment(c.req.param('id')!, agentOf(c).agent.id);
        return c.json(out.body, out.status);
      },
    },
    {
      method: 'get', path: '/v1/lightning/payments', operationId: 'listLightningPayments', summary: 'Lightning payments (newest first): in flight (held), succeeded, failed', tag: 'lightning', auth: 'admin', query: L.ListLightningPaymentsParams,
      responses: { 200: L.LightningPaymentListResponse }, errors: [404],
      handler: async (c, { query }) => {
        const q = query as { agent?: string; state?: LightningPaymentState; limit?: number };
        const agentId = q.agent ? (await A().operator.getAgent(q.agent)).id : undefined;
        const payments = await A().store.listLightningPayments({ ...(agentId ? { agentId } : {}), ...(q.state ? { state: q.state } : {}), limit: q.limit ?? 100 });
        return c.json({ payments: payments.map(lightningPaymentJson) });
      },
    },
    {
      method: 'post', path: '/v1/lightning/reconcile', operationId: 'reconcileLightningPayments', summary: 'Ask the backend about payments in flight now (a batch; rounds page through all of them); definite answers finish them', tag: 'lightning', auth: 'admin',
      responses: { 200: L.LightningReconcileResponse },
      handler: async (c) => c.json(await A().lightning.reconcile()),
    },
    {
      method: 'get', path: '/v1/lightning/status', operationId: 'getLightningStatus', summary: 'The configured Lightning backend, and whether it answers now (with its balance)', tag: 'lightning', auth: 'admin',
      responses: { 200: L.LightningStatusResponse },
      handler: async (c) => c.json(await lightningStatus(A().lightning.backend)),
    },
  ];
}
