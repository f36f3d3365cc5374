import type { LightningPaymentRecord, LightningPaymentState } from '@airlock/core';
import type { Row } from './rows.ts';
import { toAmount, toInt, toOptionalInt, toOptionalString } from './values.ts';

/** The columns of `lightning_payments`, in insert order (both dialects). */
export const LIGHTNING_COLUMNS = [
  'id', 'agent_id', 'session_id', 'audit_seq', 'backend', 'network', 'payment_hash', 'payee', 'invoice', 'amount_msat', 'max_fee_msat',
  'fee_msat', 'state', 'failure_reason', 'preimage', 'expires_at', 'timeout_seconds', 'resource', 'origin', 'l402_scheme', 'l402_macaroon',
  'l402_expires_at', 'finished_seq', 'created_at', 'updated_at',
] as const;

/** A new record as insert values (amounts as decimal strings), in `LIGHTNING_COLUMNS` order. */
export function lightningInsertValues(p: LightningPaymentRecord): (string | number | null)[] {
  return [
    p.id, p.agentId, p.sessionId, p.auditSeq, p.backend, p.network, p.paymentHash.toLowerCase(), p.payee.toLowerCase(), p.invoice,
    p.amountMsat.toString(), p.maxFeeMsat.toString(), p.feeMsat?.toString() ?? null, p.state, p.failureReason ?? null, p.preimage ?? null,
    p.expiresAt, p.timeoutSeconds, p.resource ?? null, p.origin ?? null, p.l402?.scheme ?? null, p.l402?.macaroon ?? null,
    p.l402?.expiresAt ?? null, p.finishedSeq ?? null, p.createdAt, p.updatedAt,
  ];
}

export function lightningFromRow(r: Row): LightningPaymentRecord {
  const p: LightningPaymentRecord = {
    id: String(r.id),
    agentId: String(r.agent_id),
    sessionId: String(r.session_id),
    auditSeq: toInt(r.audit_seq),
    backend: String(r.backend),
    network: String(r.network),
    paymentHash: String(r.payment_hash),
    payee: String(r.payee),
    invoice: String(r.invoice),
    amountMsat: toAmount(r.amount_msat),
    maxFeeMsat: toAmount(r.max_fee_msat),
    state: String(r.state) as LightningPaymentState,
    expiresAt: toInt(r.expires_at),
    timeoutSeconds: toInt(r.timeout_seconds),
    createdAt: toInt(r.created_at),
    updatedAt: toInt(r.updated_at),
  };
  if (r.fee_msat !== null && r.fee_msat !== undefined) p.feeMsat = toAmount(r.fee_msat);
  const failureReason = toOptionalString(r.failure_reason);
  if (failureReason !== undefined) p.failureReason = failureReason;
  const preimage = toOptionalString(r.preimage);
  if (preimage !== undefined) p.preimage = preimage;
  const resource = toOptionalString(r.resource);
  if (resource !== undefined) p.resource = resource;
  const origin = toOptionalString(r.origin);
  if (origin !== undefined) p.origin = origin;
  const macaroon = toOptionalString(r.l402_macaroon);
  if (macaroon !== undefined) {
    const expiresAt = toOptionalInt(r.l402_expires_at);
    p.l402 = { scheme: String(r.l402_scheme) as 'L402' | 'LSAT', macaroon, ...(expiresAt !== undefined ? { expiresAt } : {}) };
  }
  const finishedSeq = toOptionalInt(r.finished_seq);
  if (finishedSeq !== undefined) p.finishedSeq = finishedSeq;
  return p;
}
