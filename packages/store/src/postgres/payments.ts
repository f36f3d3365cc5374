import { AirlockError, type LedgerWrite, type PaymentFilter, type PaymentRecord, type PaymentSummaryRow, type SettledTransfer } from '@airlock/core';
import { mergeLedgerWrites } from '../shared/ledger-writes.ts';
import { holdWrites, ledgerOnFinish, paymentFromRow, summarisePayments } from '../shared/rows.ts';
import { clampLimit } from '../shared/values.ts';
import { appendLedger, lockForWrites, type DeferredAppend } from './ledger.ts';
import type { TxLocks } from './tx-locks.ts';
import type { Q } from './pg-query.ts';

const COLUMNS = `id, agent_id, session_id, audit_seq, protocol, x402_version, network, asset, "from", "to", value::text AS value, nonce,
  valid_after, valid_before, resource, origin, state, settlement_tx, reported_tx, settled_value::text AS settled_value, settled_to, created_at, updated_at`;

export async function getPayment(q: Q, id: string, forUpdate = false): Promise<PaymentRecord | undefined> {
  const [row] = await q(`SELECT ${COLUMNS} FROM payments WHERE id = $1${forUpdate ? ' FOR UPDATE' : ''}`, [id]);
  return row && paymentFromRow(row);
}

export async function getPaymentByNonce(q: Q, network: string, asset: string, from: string, nonce: string): Promise<PaymentRecord | undefined> {
  const [row] = await q(`SELECT ${COLUMNS} FROM payments WHERE network = $1 AND asset = $2 AND "from" = $3 AND nonce = $4`, [network, asset.toLowerCase(), from.toLowerCase(), nonce.toLowerCase()]);
  return row && paymentFromRow(row);
}

export async function listPayments(q: Q, filter: PaymentFilter): Promise<PaymentRecord[]> {
  const rows = await q(
    `SELECT ${COLUMNS} FROM payments WHERE ($1::text IS NULL OR agent_id = $1) AND ($2::text IS NULL OR state = $2) AND ($4::text IS NULL OR nonce = $4)
     ORDER BY created_at DESC, id LIMIT $3`,
    [filter.agentId ?? null, filter.state ?? null, clampLimit(filter.limit), filter.nonce?.toLowerCase() ?? null],
  );
  return rows.map(paymentFromRow);
}

export async function paymentSummary(q: Q, filter: { agentId?: string }): Promise<PaymentSummaryRow[]> {
  const rows = await q('SELECT agent_id, origin, network, asset, state, value::text AS value, settled_value::text AS settled_value FROM payments WHERE ($1::text IS NULL OR agent_id = $1)', [filter.agentId ?? null]);
  return summarisePayments(rows);
}

export async function holdPayment(q: Q, locks: TxLocks, p: PaymentRecord, writes: LedgerWrite[]): Promise<void> {
  if (p.state !== 'reserved') throw new AirlockError('invalid_request', 'a new payment must be reserved');
  const merged = mergeLedgerWrites(writes);
  await lockForWrites(locks, merged);
  // The UNIQUE (network, asset, from, nonce) constraint turns a second reservation of one nonce into `conflict`.
  await q(
    `WITH p AS (
       INSERT INTO payments (id, agent_id, session_id, audit_seq, protocol, x402_version, network, asset, "from", "to", value, nonce,
         valid_after, valid_before, resource, origin, state, created_at, updated_at)
       VALUES ($1, $2, $3, $4, 'x402', $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, 'reserved', $16, $17) RETURNING id
     )
     INSERT INTO payment_holds (payment_id, series, asset, amount, count, at, state)
     SELECT p.id, w.series, w.asset, w.amount, w.count, $16, 'held'
     FROM p, unnest($18::text[], $19::text[], $20::numeric[], $21::bigint[]) AS w(series, asset, amount, count)`,
    [p.id, p.agentId, p.sessionId, p.auditSeq, p.x402Version ?? null, p.network, p.asset.toLowerCase(), p.from.toLowerCase(), p.to.toLowerCase(),
      p.value.toString(), p.nonce.toLowerCase(), p.validAfter, p.validBefore, p.resource ?? null, p.origin ?? null, p.createdAt, p.updatedAt,
      merged.map((w) => w.series), merged.map((w) => w.asset), merged.map((w) => w.amount.toString()), merged.map((w) => w.count)],
  );
}

export async function finishPayment(q: Q, locks: TxLocks, id: string, state: 'settled' | 'expired', now: number, auditSeq: number, settlementTx?: string, settled?: SettledTransfer, deferTo?: DeferredAppend): Promise<PaymentRecord> {
  const current = await getPayment(q, id, true);
  if (!current) throw new AirlockError('not_found', 'no such payment');
  if (current.state !== 'reserved') throw new AirlockError('conflict', `the payment is already ${current.state}`);
  const holds = holdWrites(await q(
    `UPDATE payment_holds SET state = $2 WHERE payment_id = $1 AND state = 'held' RETURNING series, asset, amount::text AS amount, count`,
    [id, state === 'settled' ? 'converted' : 'released'],
  ));
  await appendLedger(q, locks, ledgerOnFinish(holds, state, current, settled), now, auditSeq, deferTo);
  await q(
    'UPDATE payments SET state = $2, settlement_tx = COALESCE($3, settlement_tx), settled_value = $4, settled_to = $5, updated_at = $6 WHERE id = $1',
    [id, state, settlementTx ?? null, settled?.value.toString() ?? null, settled?.to.toLowerCase() ?? null, now],
  );
  return (await getPayment(q, id))!;
}

export async function reportPaymentSettlement(q: Q, id: string, txHash: string, now: number): Promise<PaymentRecord> {
  const rows = await q('UPDATE payments SET reported_tx = $2, updated_at = $3 WHERE id = $1 RETURNING id', [id, txHash, now]);
  if (rows.length === 0) throw new AirlockError('not_found', 'no such payment');
  return (await getPayment(q, id))!;
}

export async function reservedPayments(q: Q, limit: number, after?: { validBefore: number; id: string }): Promise<PaymentRecord[]> {
  const rows = after
    ? await q(`SELECT ${COLUMNS} FROM payments WHERE state = 'reserved' AND (valid_before, id) > ($2::bigint, $3::text) ORDER BY valid_before, id LIMIT $1`, [clampLimit(limit), after.validBefore, after.id])
    : await q(`SELECT ${COLUMNS} FROM payments WHERE state = 'reserved' ORDER BY valid_before, id LIMIT $1`, [clampLimit(limit)]);
  return rows.map(paymentFromRow);
}
